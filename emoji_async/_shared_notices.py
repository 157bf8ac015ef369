"""Task-finished notifications relayed between the account's processes through Redis.

EventBridge delivers an event to one replica of a web app; the task's waiter
may be in another process. Each event delivered to a process's hub is
published on the account's channel (``{namespace}:notices``), and every
other process subscribed there hands it to its own hub, without publishing
it again. It is also kept for a while under ``{namespace}:notice:{task_id}``
(:data:`RECALL_TTL_MS`), so that a waiter that starts a moment after the
event went by (in a process that was not yet listening) still finds it.

A relayed event is what another process of the account verified; like any
event, it only wakes a waiter, which confirms it with one query. A failure
of Redis here never fails a wait: a lost relay costs latency, as a lost
event does, and the subscription is made again after a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from typing import Any

from redis.exceptions import RedisError

from ._errors import SharedPacingError
from ._notice import MalformedEvent, TaskFinished
from ._notices import Notices
from ._shared_link import RedisLink

__all__ = ["RECALL_TTL_MS", "NoticeRelay"]

log = logging.getLogger("emoji_async")

#: How long an event is kept for a waiter that starts later (ms): longer than any
#: event's lateness, shorter than a day of tasks' keys left behind.
RECALL_TTL_MS = 15 * 60 * 1000
#: The pause before subscribing again after a failure (seconds), and the longest one.
_RETRY_FIRST = 0.1
_RETRY_MAX = 5.0
#: How long one read of the subscription waits for a message (seconds).
_READ_WAIT = 1.0


class NoticeRelay:
    """One process's side of the account's channel of notifications."""

    def __init__(self, link: RedisLink, namespace: str, identity: str) -> None:
        self._link = link
        self._channel = f"{namespace}:notices"
        self._key = f"{namespace}:notice:"
        # Says which process published a message: it skips its own.
        self._identity = identity
        self._listener: asyncio.Task[None] | None = None
        #: Whether the subscription is in place (for tests, and for whoever looks).
        self.subscribed = asyncio.Event()

    def publish(self, event: TaskFinished) -> bool:
        """Tell the other processes of ``event`` (in the background; a failure is logged).

        Whether it was sent (not once the link is closed).
        """
        if not self._link.connected:
            return False
        self._link.spawn(self._publish(event), "relay a task-finished notification")
        return True

    async def _publish(self, event: TaskFinished) -> None:
        payload = json.dumps({"from": self._identity, "event": event.to_json()})
        client = self._link.client
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(self._key + event.task_id, payload, px=RECALL_TTL_MS)
            pipe.publish(self._channel, payload)
            await self._link.call("relay a task-finished notification", pipe.execute())

    def listen(self, notices: Notices) -> None:
        """Hand ``notices`` every event the other processes publish, until :meth:`aclose`."""
        if self._listener is None and self._link.connected:
            self._listener = asyncio.create_task(self._listen(notices), name="emoji-shared-notices")

    async def _listen(self, notices: Notices) -> None:
        pause = _RETRY_FIRST
        this = asyncio.current_task()
        while True:
            try:
                await self._follow(notices, this)
            except (RedisError, OSError, SharedPacingError) as exc:
                # A subscription that was in place starts the pauses afresh.
                pause = _RETRY_FIRST if self.subscribed.is_set() else pause
                self.subscribed.clear()
                log.warning(
                    "notifications from the account's other processes: %s: %s; subscribing"
                    " again in %.1f s",
                    type(exc).__name__,
                    self._link.scrub(exc),
                    pause,
                )
                await asyncio.sleep(pause * random.uniform(0.75, 1.25))
                pause = min(_RETRY_MAX, pause * 2)

    async def _follow(self, notices: Notices, this: asyncio.Task[Any] | None) -> None:
        pubsub = self._link.client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            self.subscribed.set()
            while True:
                # See _shared.RedisBackend._keep_up: a cancel redis-py swallowed is honoured.
                if this is not None and this.cancelling():
                    raise asyncio.CancelledError
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=_READ_WAIT
                )
                if message is not None and message.get("type") == "message":
                    event = self._read(message.get("data"))
                    if event is not None:
                        notices.relayed(event)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    def _read(self, data: object) -> TaskFinished | None:
        """The event in a message another process published; ``None`` for ours or a bad one."""
        try:
            message = json.loads(data) if isinstance(data, str | bytes) else None
            if not isinstance(message, dict):
                raise MalformedEvent("a relayed message is not an object")
            if message.get("from") == self._identity:
                return None  # ours: the hub here has it already
            return TaskFinished.from_json(message.get("event"))
        except (ValueError, MalformedEvent) as exc:
            log.warning("a relayed notification was skipped: %s", exc)
            return None

    async def recall(self, task_id: str) -> TaskFinished | None:
        """The event another process published lately for ``task_id``; ``None`` if none, or
        if Redis cannot say (a failure is logged: the waiter's safety net covers it)."""
        if not self._link.connected:
            return None
        try:
            data = await self._link.call(
                "read a relayed notification", self._link.client.get(self._key + task_id)
            )
        except SharedPacingError as exc:
            log.warning("%s", exc)
            return None
        return None if data is None else self._read(data)

    async def aclose(self) -> None:
        """Stop listening."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        self.subscribed.clear()

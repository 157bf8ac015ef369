"""Pacing shared through Redis: every process of one account keeps under its limits together.

:class:`RedisBackend` is the :class:`~emoji_async._pacing.PacingBackend` whose
state is the account's: the request pacing of each endpoint group (the
in-process :class:`~emoji_async._pacer.Pacer`'s arithmetic, done by scripts
in Redis: a turn is reserved, then claimed when it is due), the submit lock
(:mod:`~emoji_async._shared_lock`: its waiters, every process's, served
by lane), the tasks submits created and the submits left unsettled, and the
leases of the tasks in flight with the account's queue. The keys and scripts
are :mod:`~emoji_async._shared_scripts`' and
:mod:`~emoji_async._shared_lock_scripts`'; the connection, and the
translation of its failures, :mod:`~emoji_async._shared_link`'s. This module,
the link and the lock are the only ones that import ``redis``.

Each process reads the account's queue every submit interval while it
follows tasks (:mod:`~emoji_async._shared_queue` keeps what it learns):
another process's task submitted earlier is ahead of ours on the
:class:`~emoji_async._task_board.TaskBoard`, so a task that cannot have
started is not polled, and the start of one that has is known; another
process's interactive task moves aside this process's bulk tasks queued
before it.

Task-finished notifications go between the processes on the account's
channel (:mod:`~emoji_async._shared_notices`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import secrets
import socket
from collections.abc import Callable, Collection, Coroutine
from typing import Any

from redis.exceptions import RedisError

from . import _shared_lock_scripts as lock_scripts
from . import _shared_scripts as scripts
from ._errors import SharedPacingError
from ._lanes import Lanes
from ._limits import RateLimits, group_of
from ._notice import TaskFinished
from ._notices import Notices
from ._pacer import FREE, Pacer, Turn
from ._pacing import PacingBackend
from ._shared_config import RedisPacing
from ._shared_link import RedisLink
from ._shared_lock import SubmitLock
from ._shared_notices import NoticeRelay
from ._shared_queue import QueueView
from ._task_board import TaskBoard
from ._values import Endpoint, Lane

__all__ = ["RedisBackend"]

log = logging.getLogger("emoji_async")

#: The fastest a waiting process looks at the lock or the count in flight (seconds).
_MIN_TICK = 0.002
#: How early a turn may be claimed (seconds): a claim's round trip varies by about as
#: much, and a turn claimed early is waited out here, trusting the loop to wake on time
#: for so short a wait. Without it, half the claims would come a little early and ask again.
_CLAIM_AHEAD = 0.002

_SCRIPTS = {
    "pace": scripts.PACE,
    "claim": scripts.CLAIM,
    "hold": scripts.HOLD,
    "stamp": scripts.STAMP,
    "occupy": scripts.OCCUPY,
    "renew": scripts.RENEW,
    "vacate": scripts.VACATE,
    "count": scripts.COUNT,
    "view": scripts.VIEW,
    "settle": scripts.SETTLE,
    "others": scripts.OTHERS,
    "announce": scripts.ANNOUNCE,
    "take": lock_scripts.TAKE,
    "unlock": lock_scripts.UNLOCK,
    "relock": lock_scripts.RELOCK,
    "leave": lock_scripts.LEAVE,
}


class RedisBackend(PacingBackend):
    """The account's pacing state in Redis, shared by every process configured alike."""

    def __init__(self, config: RedisPacing, limits: RateLimits | None) -> None:
        self.limits = limits
        self.board: TaskBoard | None = None
        self.config = config
        ns = config.namespace
        self._pace_key = f"{ns}:pace:"
        self._known_key = f"{ns}:submit:known"
        self._unsettled_key = f"{ns}:submit:unsettled"
        self._inflight_key = f"{ns}:inflight"
        self._queue_keys = [self._inflight_key, f"{ns}:queue", f"{ns}:queue:seq"]
        self._end_keys = [self._inflight_key, f"{ns}:queue", f"{ns}:queue:last_end"]
        self._interactive_key = f"{ns}:queue:interactive"
        # Not secret: says in Redis which process holds the lock, for whoever looks.
        self._identity = f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._serial = itertools.count()
        submit = limits.interval(Endpoint.SUBMIT) if limits is not None else 0.05
        #: How often a waiting process looks at the lock (a fifth of a submit's turn).
        self.tick = max(_MIN_TICK, submit / 5)
        self._link = RedisLink(config)
        self._lock = SubmitLock(self._link, ns, tick=self.tick)
        self._held_until: dict[str, float] = {}
        #: This process's own turns of each group: one out at a time, spaced by when
        #: they leave, before the account's turn is reserved in Redis.
        self._local: dict[str, Pacer] = {}
        #: Tasks this process counts in flight, with when each was counted (loop time).
        self._leases: dict[str, float] = {}
        #: Where this process's tasks stand in the account's queue, among the others'.
        self._queue = QueueView()
        self._renewer: asyncio.Task[None] | None = None
        #: The account's channel of task-finished notifications, as this process uses it.
        self.relayed = NoticeRelay(self._link, ns, self._identity)

    def attach(self, board: TaskBoard, lanes: Lanes) -> None:
        self.board = self._queue.board = board
        self._queue.lanes = lanes

    def batch_cap(self, default: int) -> int | None:
        # All processes' batches together keep what one batch would keep in flight.
        return self.config.max_in_flight or default

    # --- lifetime ------------------------------------------------------------

    async def open(self) -> None:
        """Connect and check the server; :class:`SharedPacingError` if it cannot be used."""
        await self._link.open(_SCRIPTS)
        self._renewer = asyncio.create_task(self._keep_up(), name="emoji-shared-pacing")

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        await self.relayed.aclose()
        await self._lock.aclose()
        await self._link.drain()
        if not self._link.connected:
            return
        if self._leases:
            # Ended here: the other processes need not wait for the leases to run out.
            with contextlib.suppress(RedisError, OSError):
                await self._link.client.zrem(self._queue_keys[0], *self._leases)
                await self._link.client.zrem(self._queue_keys[1], *self._leases)
        await self._link.close()
        self._leases.clear()

    # --- notifications -------------------------------------------------------

    def relay(self, event: TaskFinished) -> bool:
        return self.relayed.publish(event)

    def listen(self, notices: Notices) -> None:
        self.relayed.listen(notices)

    async def recall(self, task_id: str) -> TaskFinished | None:
        return await self.relayed.recall(task_id)

    # --- request pacing ------------------------------------------------------

    async def acquire(self, endpoint: Endpoint) -> Turn:
        """Wait for this caller's turn: this process's first, then the account's in Redis.

        In this process a group's turns go out one at a time, each spaced from
        when the previous request left (:class:`~emoji_async._pacer.Pacer`).
        The account's turn is then reserved in Redis and, if it must wait,
        claimed when it is due, not trusted: an event loop that stalls past a
        turn would otherwise send it with another process's. One round trip
        when the turn is free at once, two when it waits, one more each time
        the claim finds it moved later (a stall, here or elsewhere) or voided by
        a 429.
        """
        limits = self.limits
        if limits is None:
            return FREE
        group = group_of(endpoint)
        local = self._local.get(group)
        if local is None:
            local = self._local[group] = Pacer(limits.interval(endpoint), limits.window)
        turn = await local.acquire()
        try:
            await self._reserve(endpoint, limits)
        except BaseException:
            turn.end()
            raise
        return turn

    async def _reserve(self, endpoint: Endpoint, limits: RateLimits) -> None:
        """Reserve, and claim when due, the account's next turn of ``endpoint``'s group."""
        group = group_of(endpoint)
        key = self._pace_key + group
        interval = limits.interval(endpoint)
        # ``spread`` widens each window like ``jitter`` does: one turn a window gets
        # all of it, twenty turns a window a twentieth each.
        interval *= 1 + self.config.spread / (limits.window * (1 + limits.margin) + limits.jitter)
        interval_us = round(interval * 1e6)
        ahead_us = round(min(_CLAIM_AHEAD, interval / 4) * 1e6)
        loop = asyncio.get_running_loop()
        while True:
            held_here = max(0.0, self._held_until.get(group, 0.0) - loop.time())
            sent = loop.time()
            wait_us, turn, late = await self._link.values(
                "pace", [key], [interval_us, round(held_here * 1e6), scripts.IDLE_MS]
            )
            if wait_us <= 0:
                return
            claim = [interval_us, turn, late, ahead_us, scripts.IDLE_MS]
            lead = (loop.time() - sent) / 2
            if await self._claim(group, key, claim, wait_us, lead, ahead=ahead_us / 1e6):
                return

    async def _claim(
        self, group: str, key: str, claim: list[int], wait_us: int, lead: float, *, ahead: float
    ) -> bool:
        """Wait for a turn and claim it; ``False`` if a 429 voided it (take a new one).

        ``ahead``: how early (seconds) the claim may come, as the script is told in ``claim``.
        """
        loop = asyncio.get_running_loop()
        while True:
            # Woken half a round trip early, the claim reaches Redis when the turn is due.
            await asyncio.sleep(max(0.0, wait_us / 1e6 - min(lead, ahead)))
            # A 429 here while this caller slept voids its turn without asking Redis.
            if self._held_until.get(group, 0.0) > loop.time():
                return False
            sent = loop.time()
            status, wait_us = await self._link.values("claim", [key], claim)
            lead = (loop.time() - sent) / 2
            if status < 0:
                return False
            if status > 0:
                await asyncio.sleep(wait_us / 1e6)
                return True

    def hold(self, endpoint: Endpoint, seconds: float | None) -> float | None:
        limits = self.limits
        if limits is None:
            return None
        wait = limits.window if seconds is None or seconds <= 0 else seconds
        group = group_of(endpoint)
        until = asyncio.get_running_loop().time() + wait
        self._held_until[group] = max(self._held_until.get(group, 0.0), until)
        if (local := self._local.get(group)) is not None:
            local.hold(wait)
        self._link.spawn(
            self._held(self._pace_key + group, wait), f"hold back the account's {group} requests"
        )
        return wait

    async def _held(self, key: str, wait: float) -> None:
        await self._link.script("hold", [key], [round(wait * 1e6), scripts.IDLE_MS])

    # --- submits -------------------------------------------------------------

    def submit_lock(self, lane: Lane | None = None) -> contextlib.AbstractAsyncContextManager[None]:
        # Every waiter of every process queues in Redis, by lane (the in-process
        # LaneLock's order, kept for the whole account).
        return self._lock.held(self._token, lane)

    def _token(self) -> str:
        return f"{self._identity}:{next(self._serial)}"

    async def remember(self, task_ids: Collection[str]) -> None:
        if task_ids:
            await self._link.script(
                "stamp", [self._known_key], [0, "NX", scripts.KNOWN_MS, scripts.KNOWN_MS, *task_ids]
            )

    def remember_later(
        self, task_ids: Collection[str], spawn: Callable[[Coroutine[Any, Any, None]], None]
    ) -> None:
        if task_ids:
            spawn(self.remember(task_ids))

    def forget(self, task_id: str) -> None:
        self._link.spawn(self._forget(task_id), "forget a task")

    async def _forget(self, task_id: str) -> None:
        await self._link.call("forget a task", self._link.client.zrem(self._known_key, task_id))

    async def known(self, task_ids: Collection[str]) -> set[str]:
        ids = list(task_ids)
        if not ids:
            return set()
        scores = await self._link.call(
            "read the tasks known", self._link.client.zmscore(self._known_key, ids)
        )
        return {task_id for task_id, score in zip(ids, scores, strict=True) if score is not None}

    async def sending(self, digest: str) -> str:
        record = f"{digest}:{self._identity}:{next(self._serial)}"
        await self._link.script(
            "stamp", [self._unsettled_key], [0, "NX", scripts.KNOWN_MS, scripts.KNOWN_MS, record]
        )
        return record

    async def settled(self, name: str) -> None:
        await self._link.script("settle", [self._unsettled_key], [name])

    async def unsettled(self, digest: str, horizon: float) -> int:
        return await self._link.script(
            "others", [self._unsettled_key], [digest, round(horizon * 1000)]
        )

    # --- tasks in flight -----------------------------------------------------

    @property
    def _lease_ms(self) -> int:
        return round(self.config.lease_ttl * 1000)

    async def occupy(self, task_id: str) -> None:
        self._leases[task_id] = asyncio.get_running_loop().time()
        place = await self._link.script("occupy", self._queue_keys, [self._lease_ms, task_id])
        self._queue.placed(task_id, place)

    def vacate(self, task_id: str, ended: float | None) -> None:
        leased = self._leases.pop(task_id, None) is not None
        if leased or ended is not None:
            self._link.spawn(self._vacate(task_id, ended), "end a task's lease")

    async def _vacate(self, task_id: str, ended: float | None) -> None:
        end_ms = "" if ended is None else f"{ended * 1000:.0f}"
        await self._link.script("vacate", self._end_keys, [task_id, end_ms, scripts.KNOWN_MS])

    def announce(self, task_id: str) -> None:
        self._link.spawn(self._announce(task_id), "tell the other processes of an interactive task")

    async def _announce(self, task_id: str) -> None:
        keys = [self._queue_keys[1], self._interactive_key]
        await self._link.script("announce", keys, [self._lease_ms, task_id])

    async def in_flight(self) -> int:
        return await self._link.script("count", self._queue_keys[:2], [])

    async def room(self, cap: int) -> None:
        # A task ends every minute or so: a look every submit interval is prompt enough.
        while await self.in_flight() >= cap:  # noqa: ASYNC110  (other processes' ends)
            await asyncio.sleep(5 * self.tick * random.uniform(0.75, 1.25))

    async def _look(self) -> None:
        """Read the account's queue: the other processes' tasks in flight, the latest end
        any process saw, and the interactive tasks that overtake this process's."""
        if not self._link.connected:
            return
        queue, last_end, interactive = await self._link.script_any(
            "read the account's queue", "view", [*self._end_keys, self._interactive_key]
        )
        self._queue.seen(queue, last_end, interactive)

    async def _keep_up(self) -> None:
        """Renew the leases of the tasks followed here; follow the account's queue."""
        loop = asyncio.get_running_loop()
        this = asyncio.current_task()
        renewed = loop.time()
        while True:
            # Python 3.11's asyncio.wait_for (around each of redis-py's sends) swallows a
            # cancel that comes as the send completes; the task still counts it. Honour
            # it here, or aclose(), which cancels this loop, waits for it for ever.
            if this is not None and this.cancelling():
                raise asyncio.CancelledError
            # The queue as often as the gate looks; the leases every third of a lease.
            await asyncio.sleep(min(5 * self.tick, self.config.lease_ttl / 3))
            try:
                if self.board is not None and len(self.board):
                    await self._look()
                if loop.time() - renewed >= self.config.lease_ttl / 3:
                    renewed = loop.time()
                    await self._renew_leases(renewed)
            except SharedPacingError as exc:
                log.warning("shared pacing: %s", exc)

    async def _renew_leases(self, now: float) -> None:
        board = self.board
        for task_id, since in list(self._leases.items()):
            # Submitted but never followed (nobody waits for it): its lease runs out.
            if (board is None or task_id not in board) and now - since > self.config.lease_ttl:
                del self._leases[task_id]
        if self._leases:
            await self._link.script("renew", self._queue_keys, [self._lease_ms, *self._leases])

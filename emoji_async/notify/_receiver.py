"""The notification receiver: one delivery in, verified, read, deduplicated, handed on, answered.

What a delivery gets, in order::

    body over max_body (Content-Length, or read)   413  too-large (the rest is not read)
    signature refused (see Verifier)                401 / 403, 503 if the certificate is unreachable
    not JSON, or no type or source                  400  malformed
    another type or source                          200  ignored (a rule may route more events)
    a task-finished event it cannot read            400  malformed
    seen already (same event, or same task+status)  200  duplicate
    new: handed to sink.deliver(event)              200  accepted
      ... which fails                               500  (forgotten, so a retry is delivered)
      ... which is still running at the deadline    202  (it goes on; see below)
    reading and verifying past the deadline         503  deadline

The answer comes within ``deadline`` seconds (4 by default; EventBridge wants
one within 5). A sink that is slow past it is left to finish in the
background and the delivery is answered 202: the event is verified and
remembered, so a retry would only be answered "duplicate", and a 5xx would
make EventBridge send it again and again (up to a day of retries) to a sink
that is already holding it. Should the sink then fail, the event is
forgotten and lost; polling, the safety net, still finds the task's end.

Refusals are logged at warning with their reason and the event's and task's
ids when the body names them, never the body, the token or the signature.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

import attrs

from .._notice import EVENT_SOURCE, EVENT_TYPE, MalformedEvent, TaskFinished, parse_event
from .._notice_errors import NotificationRefusedError
from ._aiohttp import handle_aiohttp
from ._asgi import AsgiApp
from ._verify import Verifier, header_map

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["Answer", "BodyReader", "NoticeSink", "Receiver", "ReceiverStats"]

log = logging.getLogger("emoji_async")

#: Reads a delivery's body: all of it, or ``limit + 1`` bytes when it is longer (and no more).
BodyReader = Callable[[int], Awaitable[bytes]]


class NoticeSink(Protocol):
    """Where the receiver hands each verified, first-seen event (``EmojiClient.notices`` is one)."""

    async def deliver(self, event: TaskFinished) -> None:
        """Record ``event`` and wake whoever waits for its task."""


@attrs.frozen
class Answer:
    """The HTTP answer to a delivery: its status and a small JSON body."""

    status: int
    body: bytes

    @classmethod
    def saying(cls, status: int, /, **fields: str) -> Answer:
        """An answer with ``status`` and ``fields`` as its JSON body."""
        return cls(status, json.dumps(fields).encode())


@attrs.define
class ReceiverStats:
    """What became of the deliveries a receiver answered, counted.

    ``late``: accepted, still being delivered when answered (202);
    ``sink_failures``: the sink raised; ``refused``: by reason.
    """

    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    late: int = 0
    sink_failures: int = 0
    refused: collections.Counter[str] = attrs.field(factory=collections.Counter)


class _Remembered:
    """The keys of recent events, the oldest let go past ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: collections.OrderedDict[str, None] = collections.OrderedDict()

    def seen(self, keys: Iterable[str]) -> bool:
        found = False
        for key in keys:
            if key in self._keys:
                self._keys.move_to_end(key)
                found = True
        return found

    def add(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._keys[key] = None
            self._keys.move_to_end(key)
        while len(self._keys) > self.size:
            self._keys.popitem(last=False)

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._keys.pop(key, None)


def _keys(event: TaskFinished) -> tuple[str, str]:
    """The event's own key, and its task and status: the provider repeats either."""
    return f"event:{event.key}", f"task:{event.task_id}/{event.raw_status.upper()}"


class Receiver:
    """Receives EventBridge's task-finished deliveries and hands new ones to ``sink``.

    ``verifier``: checks each delivery (default: a :class:`Verifier` with the
    official certificate host and no token). ``public_url``: the URL
    EventBridge posts to, as the target is configured with; it is part of what
    is signed, so set it behind a proxy that changes the scheme, host or path
    (otherwise the request's own URL is used). ``max_body``: the largest body
    read (bytes). ``deadline``: seconds within which every delivery is
    answered. ``remember``: how many recent events (and task states) are
    kept to answer a repeated one "duplicate".

    Mount :meth:`aiohttp_handler` in an ``aiohttp.web`` app, or ``asgi`` (an
    ASGI 3 app) in FastAPI or Starlette; :meth:`handle` serves any other framework.
    """

    def __init__(
        self,
        sink: NoticeSink,
        *,
        verifier: Verifier | None = None,
        public_url: str | None = None,
        max_body: int = 256 * 1024,
        deadline: float = 4.0,
        remember: int = 4096,
    ) -> None:
        self.sink = sink
        self.verifier = Verifier() if verifier is None else verifier
        self.public_url = public_url
        self.max_body = max_body
        self.deadline = deadline
        #: The outcomes so far.
        self.stats = ReceiverStats()
        self._remembered = _Remembered(remember)
        self._late: set[asyncio.Task[None]] = set()
        #: The receiver as an ASGI 3 app (``http`` POST; 405 for other methods; ``lifespan``
        #: handled): ``uvicorn.run(receiver.asgi)``, or ``app.mount(path, receiver.asgi)``.
        self.asgi = AsgiApp(self)

    def __repr__(self) -> str:
        return f"Receiver(verifier={self.verifier!r}, public_url={self.public_url!r})"

    async def aiohttp_handler(self, request: web.Request) -> web.StreamResponse:
        """The handler to mount in an ``aiohttp.web`` app: ``app.router.add_post(path, ...)``."""
        return await handle_aiohttp(self, request)

    async def aclose(self) -> None:
        """Stop the deliveries still running past their answer (at shutdown)."""
        for task in list(self._late):
            task.cancel()
        await asyncio.gather(*self._late, return_exceptions=True)

    async def handle(
        self,
        url: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes | BodyReader,
    ) -> Answer:
        """Answer one delivery POSTed to ``url`` (see the module's table)."""
        started = time.monotonic()
        data: bytes | None = None
        try:
            signed = header_map(headers)
            async with asyncio.timeout(self.deadline):
                data = await self._body(signed, body)
                await self.verifier.verify(self.public_url or url, signed, data)
            event = _event(data)
        except TimeoutError:
            refusal = NotificationRefusedError(
                f"not read and verified within {self.deadline:g} s",
                reason="deadline",
                http_status=503,
            )
            return self._refused(refusal, data)
        except NotificationRefusedError as refusal:
            return self._refused(refusal, data)
        if event is None:
            self.stats.ignored += 1
            return Answer.saying(200, status="ignored")
        keys = _keys(event)
        if self._remembered.seen(keys):
            self.stats.duplicates += 1
            log.debug("notification for task %s (%s) again", event.task_id, event.raw_status)
            return Answer.saying(200, status="duplicate")
        self._remembered.add(keys)
        return await self._deliver(event, keys, self.deadline - (time.monotonic() - started))

    async def _body(self, signed: Mapping[str, str], body: bytes | BodyReader) -> bytes:
        declared = signed.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > self.max_body:
            raise _too_large(self.max_body)
        data = body if isinstance(body, bytes) else await body(self.max_body)
        if len(data) > self.max_body:
            raise _too_large(self.max_body)
        return data

    async def _deliver(self, event: TaskFinished, keys: tuple[str, str], left: float) -> Answer:
        task = asyncio.ensure_future(self.sink.deliver(event))
        try:
            done, _ = await asyncio.wait({task}, timeout=max(left, 0.0))
        except asyncio.CancelledError:
            # The answer is no longer wanted (the sender went away): the delivery goes on.
            self._adopt(task, event, keys)
            raise
        if not done:
            self.stats.late += 1
            log.warning(
                "notification for task %s: the sink took over %g s; answered, still delivering",
                event.task_id,
                self.deadline,
            )
            self._adopt(task, event, keys)
            return Answer.saying(202, status="accepted")
        if task.cancelled() or task.exception() is not None:
            self._sink_failed(task, event, keys)
            return Answer.saying(500, error="sink")
        self.stats.accepted += 1
        log.debug("notification for task %s (%s) delivered", event.task_id, event.raw_status)
        return Answer.saying(200, status="accepted")

    def _adopt(self, task: asyncio.Task[None], event: TaskFinished, keys: tuple[str, str]) -> None:
        self._late.add(task)
        task.add_done_callback(lambda late: self._finished_late(late, event, keys))

    def _finished_late(
        self, task: asyncio.Task[None], event: TaskFinished, keys: tuple[str, str]
    ) -> None:
        self._late.discard(task)
        if task.cancelled() or task.exception() is not None:
            self._sink_failed(task, event, keys)
        else:
            self.stats.accepted += 1

    def _sink_failed(
        self, task: asyncio.Task[None], event: TaskFinished, keys: tuple[str, str]
    ) -> None:
        # Forgotten, so that the provider's retry (after a 500) is delivered, not "duplicate".
        self._remembered.forget(keys)
        self.stats.sink_failures += 1
        error = "cancelled" if task.cancelled() else type(task.exception()).__name__
        log.warning(
            "notification for task %s (%s): the sink failed (%s)",
            event.task_id,
            event.raw_status,
            error,
        )

    def _refused(self, refusal: NotificationRefusedError, body: bytes | None) -> Answer:
        self.stats.refused[refusal.reason] += 1
        event_id, task_id = _ids(body)
        log.warning(
            "notification refused (%s, HTTP %d): %s; event %s, task %s",
            refusal.reason,
            refusal.http_status,
            refusal.message,
            event_id,
            task_id,
        )
        return Answer.saying(refusal.http_status, error=refusal.reason)


def _ids(body: bytes | None) -> tuple[str, str]:
    """The event's and task's ids as a refused body names them (quoted), for the log line."""
    if body is None:
        return "unknown", "unknown"
    try:
        event = parse_event(body)
    except MalformedEvent:
        return "unknown", "unknown"
    return repr(event.event_id), repr(event.task_id)


def _event(data: bytes) -> TaskFinished | None:
    """The task-finished event ``data`` holds, ``None`` for another type or source."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise _malformed("the body is not JSON") from None
    if not isinstance(document, dict):
        raise _malformed("the body is not a JSON object")
    kind, source = document.get("type"), document.get("source")
    if not isinstance(kind, str) or not isinstance(source, str):
        raise _malformed("type or source is missing")
    if kind != EVENT_TYPE or source != EVENT_SOURCE:
        log.debug("notification of another type or source ignored")
        return None
    try:
        return parse_event(data)
    except MalformedEvent as exc:
        raise _malformed(str(exc)) from None


def _too_large(limit: int) -> NotificationRefusedError:
    return NotificationRefusedError(
        f"the body is over {limit} bytes", reason="too-large", http_status=413
    )


def _malformed(message: str) -> NotificationRefusedError:
    return NotificationRefusedError(message, reason="malformed", http_status=400)

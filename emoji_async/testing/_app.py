"""The simulator as an aiohttp application: routes, and what wraps every request.

Each request goes through one pipeline, in the provider's order:

1. recording (a middleware: every request, whatever its fate);
2. authentication (API routes only): 401 ``InvalidApiKey``;
3. the request's fault, if any: a scripted one (``FaultBook``) or else a random
   one (``ChaosSource``, when ``SimulatorConfig.chaos`` is set), played here
   unless it comes after processing;
4. the rate limit (API routes only): 429 ``Throttling.RateQuota``, no state change;
5. the operation itself (``_service``): validation, state change, answer;
6. a fault that comes ``after_processing``, replacing, delaying, truncating,
   cutting short or stripping a field from that answer.

A ``late`` fault leaves the pipeline after step 4: the request, admitted by its
rate limit on arrival, is answered as failed at once and its operation (step 5)
runs later in a background task, whose answer nobody reads. The simulator keeps
those tasks and cancels them when the server shuts down.

A fault only ever changes what the client is told (and, for ``late``, when the
request takes effect): the tasks, uploads and bills stay what the operations
made them.

Every answer of the API carries a ``Date`` header on the service's clock (so
``SimulatorConfig.clock_skew`` shows there too); the storage and image hosts
leave theirs to aiohttp.

Besides the API (under ``api_prefix``), the application plays two storage hosts
(the upload host and the result videos) and a public image host serving the
sample portraits at ``/samples/{name}.png``, all without authentication or rate
limits. The application's startup opens the session that fetches loopback
images (``_fetch``); its cleanup closes it.

The fault machinery only asks a ``FaultSource`` for the request's fault, so
scripted and random faults play through the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import http
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable

import attrs
from aiohttp import BodyPartReader, web
from aiohttp.typedefs import Handler

from ._chaos import Chaos
from ._chaos_source import ChaosSource
from ._config import SimulatorConfig
from ._faces import Boxes
from ._faults import Fault, FaultBook, fault_label
from ._hostile import echo_reply, gzip_bomb, gzipped, is_json_object, padded, with_task_id
from ._images import MAX_IMAGE_BYTES, ImageFacts, examine
from ._optional import missing_extras
from ._records import RequestRecord, SimulatorStats
from ._results import RESULTS_PATH
from ._samples import SAMPLE_PORTRAITS, SAMPLES_PATH, sample_portrait, samples_available
from ._service import Service
from ._tasks import SimulatedTask
from ._video import PLACEHOLDER_HEADER, VideoStore
from ._wire import (
    BODY_INVALID,
    NO_API_KEY,
    RATE_LIMITED,
    WRONG_API_KEY,
    OssError,
    Reply,
    ServiceError,
    error_reply,
    fault_message,
    json_reply,
    oss_error_reply,
)

__all__ = ["UPLOAD_PATH", "Simulator"]

#: The simulator's stand-in for the OSS upload host, outside the API prefix.
UPLOAD_PATH = "/oss-upload"

Operation = Callable[[], Awaitable[Reply]]


#: Route names that are another spelling of an endpoint (names must be unique).
_ALIASES = {"query_slash": "query", "list_slash": "list"}
#: Endpoints served by the object-storage hosts: their errors are OSS's XML.
_STORAGE = frozenset({"upload", "download"})
#: Endpoints served by hosts other than the API's, which do not show the service's clock.
_OTHER_HOSTS = _STORAGE | {"sample"}

log = logging.getLogger("emoji_async.testing")

#: The labels of the faults played on the request being handled, for its record.
_PLAYED: contextvars.ContextVar[list[str]] = contextvars.ContextVar("emoji_simulator_played")


class _Dropped(web.Response):
    """Returned after the connection was dropped on purpose; never reaches the wire."""


def _seconds_text(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds when whole, else up to milliseconds."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def _odd_reply(status: int, path: str) -> Reply:
    """An answer no provider page lists (a 3xx, a 408): something in between sends it.

    A short plain-text body, not the provider's JSON envelope; a redirection
    points back at the request's own path, as a misconfigured gateway's would.
    """
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unexpected"
    body = b"" if status in (204, 304) else f"{status} {phrase}\n".encode()
    reply = Reply(status, body, content_type="text/plain")
    if 300 <= status < 400:
        reply = reply.with_headers(("Location", path))
    return reply


def _respond(reply: Reply) -> web.Response:
    headers = dict(reply.headers)
    if reply.body:
        headers["Content-Type"] = reply.content_type
    return web.Response(status=reply.status, body=reply.body or None, headers=headers)


def _drop(request: web.Request) -> _Dropped:
    """Drop the connection without an answer."""
    if request.transport is not None:
        request.transport.abort()
    return _Dropped(status=599)


def _kept(size: int, keep: float) -> int:
    """How many of ``size`` bytes a cut body keeps: at least one, and at least one lost."""
    return min(max(1, int(size * keep)), size - 1)


def _without(reply: Reply, field: str | None) -> Reply | None:
    """``reply`` without the JSON ``field`` (a dotted path); ``None`` if it has no such field."""
    if not reply.content_type.endswith("json"):
        return None
    try:
        payload = json.loads(reply.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    if field is None:
        others = [key for key in payload if key != "request_id"]
        field = "output" if "output" in payload else (others or ["request_id"])[0]
    *parents, name = field.split(".")
    container: object = payload
    for part in parents:
        container = container.get(part) if isinstance(container, dict) else None
    if not isinstance(container, dict) or name not in container:
        return None
    del container[name]
    return attrs.evolve(reply, body=json.dumps(payload, ensure_ascii=False).encode())


async def _cut(request: web.Request, reply: Reply, keep: float) -> web.StreamResponse:
    """Promise the whole body, send ``keep`` of it, and close the connection."""
    response = web.StreamResponse(status=reply.status, headers=dict(reply.headers))
    response.content_type = reply.content_type
    response.content_length = len(reply.body)
    try:
        await response.prepare(request)
        await response.write(reply.body[: _kept(len(reply.body), keep)])
    except ConnectionError:  # the client left first: there is nobody to cut short
        return _Dropped(status=599)
    if request.transport is not None:
        request.transport.close()  # sends what was written, then FIN: the rest never comes
    return response


async def _stream(
    request: web.Request,
    reply: Reply,
    chunks: Iterable[bytes],
    *,
    length: int | None,
    encoding: str | None = None,
) -> web.StreamResponse:
    """Send ``reply``'s status and headers, then ``chunks`` as its body, one write each.

    ``length`` is the ``Content-Length``; ``None`` sends the body chunked, its
    size unknown until it ends. aiohttp waits for each write to drain, so a
    client that reads slowly holds the simulator back instead of filling its
    memory.
    """
    response = web.StreamResponse(status=reply.status, headers=dict(reply.headers))
    response.content_type = reply.content_type
    if encoding is not None:
        response.headers["Content-Encoding"] = encoding
    if length is None:
        response.enable_chunked_encoding()
    else:
        response.content_length = length
    try:
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
    except ConnectionError:  # the client hung up: nobody is reading any more
        return _Dropped(status=599)
    return response


async def _json_body(request: web.Request) -> object:
    raw = await request.read()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ServiceError(400, "InvalidParameter", BODY_INVALID) from None


async def _read_form(request: web.Request) -> tuple[dict[str, str], bytes | None, int]:
    """The text fields of an upload form, and its ``file``'s bytes and size.

    The bytes are kept only up to the largest input image: a larger file is
    measured, not kept (``None``).
    """
    if not request.content_type.startswith("multipart/form-data"):
        raise OssError(
            400,
            "MalformedPOSTRequest",
            "The body of your POST request is not well-formed multipart/form-data.",
        )
    fields: dict[str, str] = {}
    chunks: list[bytes] | None = []
    size, seen = 0, False
    async for part in await request.multipart():
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.name == "file":
            seen = True
            while chunk := await part.read_chunk():
                size += len(chunk)
                if chunks is not None:
                    chunks.append(chunk)
                    if size > MAX_IMAGE_BYTES:
                        chunks = None
            break  # OSS ignores whatever follows the file
        fields[part.name] = await part.text()
    if not seen:
        raise OssError(400, "InvalidArgument", "The form field file is required.")
    return fields, None if chunks is None else b"".join(chunks), size


class Simulator:
    """A simulated DashScope Emoji account, served by ``app`` (an aiohttp application).

    Mount ``app`` anywhere (``serve`` runs it on loopback). The attributes are the
    simulator's ground truth, for assertions: ``requests`` (every request, in
    arrival order, the simulator's own fetches of its sample portraits included;
    the newest ``config.keep_requests`` of them), ``stats`` (with
    ``faults_by_kind``), ``tasks_created``, ``task(task_id)``, ``tasks()``,
    ``task_states()``, ``boxes_for(image_url)``, ``faults`` to script failures,
    and ``set_chaos`` to change the random ones.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self.faults = FaultBook()
        self._chaos = self._chaos_source(self.config.chaos)
        self.requests: list[RequestRecord] = []
        self._stats = SimulatorStats()
        self._service = Service(self.config, self._stats)
        self._videos = VideoStore(render=self.config.render_videos)
        self._closing = asyncio.Event()
        self._late_requests: set[asyncio.Task[None]] = set()
        self.app = self._build_app()

    # -- ground truth --------------------------------------------------------------

    @property
    def stats(self) -> SimulatorStats:
        """The live counters, with the task clock brought up to date first."""
        self._service.board.advance(self._service.clock.now())
        return self._stats

    @property
    def tasks_created(self) -> int:
        """How many tasks submits have created (throttled or refused ones create none)."""
        return self._stats.tasks_created

    @property
    def renders_videos(self) -> bool:
        """Whether downloads are real MP4s (else placeholders)."""
        return self._videos.real

    @property
    def startup_warning(self) -> str | None:
        """What this simulator cannot do here (PyAV or numpy missing), as logged when it starts.

        ``None`` when it has everything it needs.
        """
        return missing_extras(render_videos=self.config.render_videos)

    @property
    def uploads_by_model(self) -> dict[str, int]:
        """How many files the upload host stored, per model the policy was for."""
        return dict(self._service.uploads.stored_by_model)

    def task(self, task_id: str) -> SimulatedTask | None:
        """The true record of a task as of now; ``None`` if unknown or expired."""
        return self._service.task(task_id)

    def tasks(self) -> tuple[SimulatedTask, ...]:
        """Every task still retained, the most recently submitted first."""
        return tuple(self._service.board.newest_first(self._service.clock.now()))

    def task_states(self) -> dict[str, str]:
        """``{task_id: status}`` of every retained task as of now, oldest submission first.

        The truth whatever the clients were told: a task whose submit was
        answered 500, reset or cut short is here all the same. Its length equals
        ``tasks_created`` until tasks pass the 24 h (scaled) retention.
        """
        return {task.task_id: task.status for task in reversed(self.tasks())}

    def set_chaos(self, chaos: Chaos | None) -> None:
        """Play ``chaos`` from the next request on (``None``: no random faults any more).

        ``config.chaos`` follows; the dice start afresh from the new seed.
        """
        self.config = attrs.evolve(self.config, chaos=chaos)
        self._chaos = self._chaos_source(chaos)

    def _chaos_source(self, chaos: Chaos | None) -> ChaosSource | None:
        if chaos is None:
            return None
        return ChaosSource(chaos, time_scale=self.config.time_scale)

    def boxes_for(self, image_url: str) -> Boxes:
        """``(face_bbox, ext_bbox)`` as detection returns them for ``image_url``.

        A loopback URL's boxes come from its image, so they are known only once a
        detection or a submit has fetched it: before that, ``LookupError``.
        """
        return self._service.images.boxes_for(image_url)

    # -- the application -------------------------------------------------------------

    def _build_app(self) -> web.Application:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self._record(request, handler)

        app = web.Application(middlewares=[record])
        prefix = self.config.api_prefix
        add = app.router.add_route
        add("POST", f"{prefix}/services/aigc/image2video/face-detect", self._detect, name="detect")
        add(
            "POST",
            f"{prefix}/services/aigc/image2video/video-synthesis",
            self._submit,
            name="submit",
        )
        add("GET", f"{prefix}/tasks", self._list, name="list")
        # The provider's page writes ``/tasks/``, the official SDK sends ``/tasks``.
        add("GET", f"{prefix}/tasks/", self._list, name="list_slash")
        add("GET", f"{prefix}/tasks/{{task_id}}", self._query, name="query")
        # The official SDK 1.x asks for ``/tasks/{id}/``: the gateway answers both forms.
        add("GET", f"{prefix}/tasks/{{task_id}}/", self._query, name="query_slash")
        add("POST", f"{prefix}/tasks/{{task_id}}/cancel", self._cancel, name="cancel")
        add("GET", f"{prefix}/uploads", self._upload_policy, name="upload_policy")
        add("POST", UPLOAD_PATH, self._upload, name="upload")
        app.router.add_get(f"{RESULTS_PATH}/{{name}}", self._download, name="download")
        app.router.add_get(f"{SAMPLES_PATH}/{{name}}", self._sample, name="sample")
        add("*", f"{prefix}/{{tail:.*}}", self._other, name="other")
        app.on_startup.append(self._startup)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, app: web.Application) -> None:
        warning = self.startup_warning
        if warning is not None:  # said at every start: nobody should find it out from a file
            log.warning("emoji-async simulator: %s", warning)
        self._closing.clear()
        await self._service.images.fetcher.start()

    async def _shutdown(self, app: web.Application) -> None:
        self._closing.set()  # cut scripted delays short: nobody waits for them any more
        await self._cancel_late()

    async def _cleanup(self, app: web.Application) -> None:
        await self._cancel_late()  # any a request still in flight at shutdown started
        await self._service.images.fetcher.aclose()
        await self._videos.aclose()

    async def _cancel_late(self) -> None:
        """Cancel the late requests not yet processed, and wait until they are gone."""
        pending = list(self._late_requests)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _schedule_late(self, operation: Operation, delay: float) -> None:
        """Run ``operation`` ``delay`` real seconds from now, in the background."""
        if self._closing.is_set():
            return  # the server is going away: nothing will be processed any more
        task = asyncio.get_running_loop().create_task(self._process_late(operation, delay))
        self._late_requests.add(task)
        task.add_done_callback(self._late_done)

    async def _process_late(self, operation: Operation, delay: float) -> None:
        await asyncio.sleep(delay)
        # A refusal (a 400 of validation, say) changes nothing, and nobody reads it.
        with contextlib.suppress(ServiceError, OssError):
            await operation()

    def _late_done(self, task: asyncio.Task[None]) -> None:
        self._late_requests.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # a bug of the simulator: say so now, not at garbage collection
            task.get_loop().call_exception_handler(
                {"message": "a late request of the simulator failed", "exception": error}
            )

    async def _sleep(self, seconds: float) -> None:
        """Sleep, unless the server shuts down first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # Listed on arrival (status 0, "no answer yet"), so a request still in flight
        # (a scripted delay, say) is visible; its status is filled in when it ends.
        route = request.match_info.route.name
        endpoint = _ALIASES.get(route, route) if route is not None else "other"
        arrived = RequestRecord(request.method, request.path, endpoint, 0, time.monotonic())
        self.requests.append(arrived)
        keep = self.config.keep_requests
        if keep is not None and len(self.requests) > keep:
            # A quarter at a time, so forgetting costs O(1) per request on average.
            del self.requests[: len(self.requests) - (keep - keep // 4)]
        counts = self._stats.requests_by_endpoint
        counts[endpoint] = counts.get(endpoint, 0) + 1
        played: list[str] = []
        token = _PLAYED.set(played)
        status = 500
        try:
            response = await handler(request)
            status = 0 if isinstance(response, _Dropped) else response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 0  # shut down mid-request: nothing was answered
            raise
        finally:
            _PLAYED.reset(token)
            self._settle(arrived, status, played[-1] if played else None)

    def _settle(self, arrived: RequestRecord, status: int, fault: str | None) -> None:
        """Replace the arrival record with the final one (unless it was forgotten since)."""
        for index in range(len(self.requests) - 1, -1, -1):
            if self.requests[index] is arrived:
                self.requests[index] = attrs.evolve(arrived, status=status, fault=fault)
                break
        if status == 429:
            self._stats.throttled += 1
            throttled = self._stats.throttled_by_endpoint
            throttled[arrived.endpoint] = throttled.get(arrived.endpoint, 0) + 1

    def _authenticate(self, request: web.Request) -> Reply | None:
        header = request.headers.get("Authorization", "").strip()
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if not header or (scheme.lower() == "bearer" and not key):
            return error_reply(401, "InvalidApiKey", NO_API_KEY)
        if scheme.lower() != "bearer" or key not in self.config.api_keys:
            return error_reply(401, "InvalidApiKey", WRONG_API_KEY)
        return None

    def _throttle(self, endpoint: str) -> Reply | None:
        wait = self._service.limiter.admit(endpoint, self._service.clock.now())
        if wait is None:
            return None
        reply = error_reply(429, "Throttling.RateQuota", RATE_LIMITED)
        if self.config.retry_after:
            # At the provider's own pace a server says whole seconds; on a compressed
            # clock, the scaled wait itself, so a client honouring it waits what a
            # real one would (one real second would be 100 s at time_scale 0.01).
            text = (
                str(max(1, math.ceil(wait))) if self.config.time_scale == 1 else _seconds_text(wait)
            )
            reply = reply.with_headers(("Retry-After", text))
        return reply

    def _take_fault(self, endpoint: str) -> Fault | None:
        """The request's fault: a scripted one first, else a random one.

        Chaos rolls its dice for every request all the same, so its faults
        depend only on how many requests each endpoint has had.
        """
        scripted = self.faults.take(endpoint)
        drawn = self._chaos.take(endpoint) if self._chaos is not None else None
        return scripted if scripted is not None else drawn

    def _played(self, fault: Fault, endpoint: str) -> None:
        label = fault_label(fault, endpoint)
        counts = self._stats.faults_by_kind
        counts[label] = counts.get(label, 0) + 1
        played = _PLAYED.get(None)
        if played is not None:
            played.append(label)

    def _dated(self, reply: Reply, endpoint: str) -> Reply:
        """``reply`` with a ``Date`` on the service's clock, if it is an API answer."""
        if endpoint in _OTHER_HOSTS:
            return reply
        clock = self._service.clock
        return reply.with_headers(("Date", clock.http_date(clock.now())))

    def _send(self, reply: Reply, endpoint: str) -> web.Response:
        return _respond(self._dated(reply, endpoint))

    def _error(self, fault: Fault, endpoint: str, request: web.Request) -> Reply:
        message = fault_message(fault.code)
        if fault.status < 400 or fault.status == 408:
            reply = _odd_reply(fault.status, request.path_qs)
        elif endpoint in _STORAGE:
            reply = oss_error_reply(fault.status, fault.code, message)
        else:
            reply = error_reply(fault.status, fault.code, message)
        if fault.retry_after is not None:
            reply = reply.with_headers(("Retry-After", _seconds_text(fault.retry_after)))
        return reply

    async def _fault_before(
        self, request: web.Request, endpoint: str, fault: Fault
    ) -> web.Response | None:
        """Play ``fault`` before processing: an answer instead of the normal one, or ``None``."""
        self._played(fault, endpoint)
        if fault.kind == "delay":
            await self._sleep(fault.delay)
            return None
        if fault.kind == "reset":
            return _drop(request)
        if fault.kind == "echo_key":
            return self._send(self._echo(fault, request), endpoint)
        return self._send(self._error(fault, endpoint, request), endpoint)

    def _echo(self, fault: Fault, request: web.Request) -> Reply:
        return echo_reply(
            fault.status, fault.code, request.method, request.path_qs, request.headers
        )

    async def _play_late(
        self, request: web.Request, endpoint: str, fault: Fault, operation: Operation
    ) -> web.Response:
        """Admit on arrival, answer as failed now, and process ``fault.delay`` seconds later."""
        throttled = self._throttle(endpoint)
        if throttled is not None:
            return self._send(throttled, endpoint)  # refused: there is nothing to process later
        self._played(fault, endpoint)
        self._schedule_late(operation, fault.delay)
        if fault.status == 0:
            return _drop(request)
        return self._send(self._error(fault, endpoint, request), endpoint)

    async def _fault_after(
        self, request: web.Request, endpoint: str, fault: Fault, reply: Reply
    ) -> web.StreamResponse:
        """Play ``fault`` on the answer ``reply`` of a request already processed."""
        if fault.kind == "drop_field":
            stripped = _without(reply, fault.field)
            if stripped is None:
                return self._send(reply, endpoint)
            self._played(fault, endpoint)
            return self._send(stripped, endpoint)
        if fault.kind == "odd_task_id":
            renamed = with_task_id(reply, ".." if fault.task_id is None else fault.task_id)
            if renamed is None:
                return self._send(reply, endpoint)
            self._played(fault, endpoint)
            return self._send(renamed, endpoint)
        if fault.kind in ("truncate", "cut") and len(reply.body) < 2:
            return self._send(reply, endpoint)  # nothing to cut
        if fault.kind in ("huge", "gzip_bomb") and not is_json_object(reply):
            return self._send(reply, endpoint)  # no JSON to pad
        if fault.kind in ("drip", "gzip") and not reply.body:
            return self._send(reply, endpoint)  # nothing to drip or compress
        self._played(fault, endpoint)
        if fault.kind in ("huge", "gzip_bomb", "drip", "gzip"):
            return await self._hostile_answer(request, self._dated(reply, endpoint), fault)
        if fault.kind == "echo_key":
            return self._send(self._echo(fault, request), endpoint)
        if fault.kind == "delay":
            await self._sleep(fault.delay)
            return self._send(reply, endpoint)
        if fault.kind == "reset":
            return _drop(request)
        if fault.kind == "truncate":
            kept = reply.body[: _kept(len(reply.body), fault.keep)]
            return self._send(attrs.evolve(reply, body=kept), endpoint)
        if fault.kind == "cut":
            return await _cut(request, self._dated(reply, endpoint), fault.keep)
        return self._send(self._error(fault, endpoint, request), endpoint)

    async def _hostile_answer(
        self, request: web.Request, reply: Reply, fault: Fault
    ) -> web.StreamResponse:
        """Send ``reply`` (a dated one) huge, as a gzip bomb, dripping, or gzip-encoded."""
        if fault.kind == "huge":
            size, chunks = padded(reply.body, fault.size)
            return await _stream(request, reply, chunks, length=None if fault.chunked else size)
        if fault.kind == "gzip_bomb":
            bomb = await asyncio.to_thread(gzip_bomb, reply.body, fault.size)
            return await _stream(
                request,
                reply,
                bomb.chunks(),
                length=None if fault.chunked else bomb.length,
                encoding="gzip",
            )
        if fault.kind == "gzip":
            body = await asyncio.to_thread(gzipped, reply.body)
            return await _stream(request, reply, [body], length=len(body), encoding="gzip")
        return await self._drip(request, reply, fault)

    async def _drip(self, request: web.Request, reply: Reply, fault: Fault) -> web.StreamResponse:
        """Headers now, then one byte every ``fault.interval`` s; the rest after ``fault.delay``.

        Ends sooner when the client hangs up (a write fails) or the server shuts
        down (the connection is dropped).
        """
        response = web.StreamResponse(status=reply.status, headers=dict(reply.headers))
        response.content_type = reply.content_type
        body = reply.body
        response.content_length = len(body)
        until = time.monotonic() + fault.delay
        try:
            await response.prepare(request)
            sent = 0
            while sent < len(body):
                left = until - time.monotonic()
                if left <= 0:
                    await response.write(body[sent:])
                    break
                await response.write(body[sent : sent + 1])
                sent += 1
                if sent < len(body):
                    await self._sleep(min(fault.interval, left))
                    if self._closing.is_set():
                        return _drop(request)
            await response.write_eof()
        except ConnectionError:  # the client hung up: the drip ends with it
            return _Dropped(status=599)
        return response

    async def _pipeline(
        self, request: web.Request, endpoint: str, operation: Operation, *, api: bool = True
    ) -> web.StreamResponse:
        if api:
            if (denied := self._authenticate(request)) is not None:
                return self._send(denied, endpoint)
            try:
                await request.read()  # the whole request has arrived before anything happens
            except ConnectionResetError:
                return _Dropped(status=599)
        fault = self._take_fault(endpoint)
        if fault is not None and fault.kind == "late":
            return await self._play_late(request, endpoint, fault, operation)
        if fault is not None and not fault.after_processing:
            answer = await self._fault_before(request, endpoint, fault)
            if answer is not None:
                return answer
        reply = self._throttle(endpoint) if api else None
        if reply is None:
            try:
                reply = await operation()
            except ServiceError as exc:
                reply = error_reply(exc.status, exc.code, exc.message)
            except OssError as exc:
                reply = oss_error_reply(exc.status, exc.code, exc.message)
            except ConnectionResetError:  # an upload whose client gave up mid-body
                return _Dropped(status=599)
        if fault is not None and fault.after_processing:
            return await self._fault_after(request, endpoint, fault, reply)
        return self._send(reply, endpoint)

    # -- handlers --------------------------------------------------------------------

    async def _detect(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            body = await _json_body(request)
            return json_reply(await self._service.detect(body, request.headers))

        return await self._pipeline(request, "detect", operation)

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            body = await _json_body(request)
            return json_reply(await self._service.submit(body, request.headers))

        return await self._pipeline(request, "submit", operation)

    async def _query(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            origin = str(request.url.origin())
            return json_reply(self._service.query(request.match_info["task_id"], origin))

        return await self._pipeline(request, "query", operation)

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            return json_reply(self._service.cancel(request.match_info["task_id"]))

        return await self._pipeline(request, "cancel", operation)

    async def _list(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            return json_reply(self._service.list_tasks(request.query))

        return await self._pipeline(request, "list", operation)

    async def _upload_policy(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            upload_host = f"{request.url.origin()}{UPLOAD_PATH}"
            return json_reply(self._service.upload_policy(request.query, upload_host))

        return await self._pipeline(request, "upload_policy", operation)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            fields, data, size = await _read_form(request)
            facts: ImageFacts = await asyncio.to_thread(examine, data, size)
            self._service.upload(fields, facts, data)
            status = fields.get("success_action_status", "204")
            if status == "200":
                return Reply(200, b"")
            if status == "201":
                key = fields["key"]
                body = f"<PostResponse><Key>{key}</Key></PostResponse>".encode()
                return Reply(201, body, content_type="application/xml")
            return Reply(204, b"")

        return await self._pipeline(request, "upload", operation, api=False)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            name = request.match_info["name"]
            if not name.endswith(".mp4"):
                raise OssError(404, "NoSuchKey", "The specified key does not exist.")
            result = self._service.result(
                name.removesuffix(".mp4"),
                request.query.get("Expires", ""),
                request.query.get("Signature", ""),
            )
            video = await self._videos.get(
                result.task_id,
                result.driven_id,
                result.video_seconds,
                self._service.images.portrait_of(result.task_id),
            )
            headers = (PLACEHOLDER_HEADER,) if video.placeholder else ()
            return Reply(200, video.body, content_type=video.content_type, headers=headers)

        return await self._pipeline(request, "download", operation, api=False)

    async def _sample(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            name = request.match_info["name"].removesuffix(".png")
            if not request.match_info["name"].endswith(".png") or name not in SAMPLE_PORTRAITS:
                raise OssError(404, "NoSuchKey", "The specified key does not exist.")
            if not samples_available():
                raise OssError(
                    501,
                    "NotImplemented",
                    "Sample portraits need numpy and PyAV: pip install 'emoji-async[video]'.",
                )
            body = await asyncio.to_thread(sample_portrait, name)
            return Reply(200, body, content_type="image/png")

        return await self._pipeline(request, "sample", operation, api=False)

    async def _other(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            return error_reply(
                404, "NotFound", "The requested resource does not exist, please check the url."
            )

        return await self._pipeline(request, "other", operation)

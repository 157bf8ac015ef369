"""One HTTP exchange with the service: with its errors module, all that touches aiohttp.

It builds the client's session (:func:`open_session`), sends one request and
returns the decoded JSON of a 2xx answer, or raises the most specific project
error. aiohttp's exceptions are translated by :mod:`~emoji_async._transport_errors`
and nowhere else, sorted by the one question a paid call needs answered: did the
request leave this machine? The client's own session also tells when a request's
headers are written (:func:`noting_sent`): a deadline that passes before that
ends a call that sent nothing.

What an answer holds is read by :mod:`~emoji_async._answers` (bounded,
inflated, decoded), and a download is written to disk by
:mod:`~emoji_async._saving`, which translates its file system errors (a full
disk, no permission, a name too long) into :class:`DownloadError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import attrs

from ._answers import (
    ACCEPT_ENCODING,
    MAX_ANSWER_BYTES,
    Inflater,
    Response,
    TooLarge,
    decode_answer,
    parse_retry_after,
    read_capped,
    storage_error,
)
from ._checks import number
from ._errors import (
    ConfigurationError,
    DownloadError,
    UnexpectedResponseError,
)
from ._saving import discard, move_into_place, on_disk, part_path, stream_to, video_exists
from ._transport_errors import translated
from ._values import Endpoint, Secret
from ._version import VERSION
from ._wire import task_id_in

__all__ = [
    "MAX_VIDEO_BYTES",
    "Session",
    "Timeouts",
    "Transport",
    "noting_sent",
    "open_session",
]

log = logging.getLogger("emoji_async")

#: One encoder for every body: ``json.dumps`` with options builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":")).encode

#: The largest result video a download accepts (a 5 s 512x512 clip is well under
#: 5 MB; anything far bigger is not a result of this service).
MAX_VIDEO_BYTES = 64 * 1024 * 1024

_USER_AGENT = (
    f"emoji-async/{VERSION} aiohttp/{aiohttp.__version__} "
    f"python/{sys.version_info.major}.{sys.version_info.minor}"
)


#: A limit of :class:`Timeouts`.
_seconds = number("a finite number of seconds > 0", lambda value: value > 0)


@attrs.frozen(kw_only=True)
class Timeouts:
    """Per-request limits in seconds: making the connection, and each read of the answer."""

    connect: float = attrs.field(default=10.0, validator=_seconds)
    read: float = attrs.field(default=60.0, validator=_seconds)

    def scaled(self, factor: float) -> Timeouts:
        """The same limits multiplied by ``factor``."""
        return Timeouts(connect=self.connect * factor, read=self.read * factor)


#: The HTTP session a client sends through: one, pooled, for the client's whole life.
#: A caller may lend its own (``EmojiClient(session=...)``); it is then never closed here.
Session = aiohttp.ClientSession

#: The connections one session keeps open at most: requests beyond them wait their
#: turn in :class:`Transport` (its gate), not inside aiohttp.
_POOL_SIZE = 100


#: What to call once the running request's headers are written, set around one
#: attempt by :func:`noting_sent`: until then nothing of it has left this machine.
_on_sent: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "emoji_async_on_sent", default=None
)


async def _headers_sent(
    session: aiohttp.ClientSession,
    context: Any,
    params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    mark = _on_sent.get()
    if mark is not None:
        mark()


#: The hook of the sessions :func:`open_session` builds. A lent session has none,
#: so a request through it counts as sent as soon as it is tried.
_SENT_TRACE = aiohttp.TraceConfig()
_SENT_TRACE.on_request_headers_sent.append(_headers_sent)
_SENT_TRACE.freeze()


def open_session() -> Session:
    """A new pooled session for one client, which closes it (``await session.close()``).

    It takes no proxy or credentials from the environment (``trust_env=False``):
    the API key goes only to the base URL the client was given.
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=_POOL_SIZE),
        trust_env=False,
        trace_configs=[_SENT_TRACE],
    )


@contextlib.contextmanager
def noting_sent(session: Session, mark: Callable[[], None]) -> Iterator[None]:
    """Within the block, ``mark()`` is called once a request's headers are written.

    A call whose deadline passes before that (while it waited for a connection,
    or connected) sent nothing: its error can say so. Through a session that
    cannot tell (one lent by the caller), ``mark()`` is called at once.
    """
    if _SENT_TRACE not in session.trace_configs:
        mark()
        yield
        return
    token = _on_sent.set(mark)
    try:
        yield
    finally:
        _on_sent.reset(token)


class Transport:
    """Sends requests to one base URL with one key, over a session it may or may not own."""

    def __init__(
        self,
        session: Session,
        *,
        base_url: str,
        api_key: Secret,
        workspace: str | None,
        timeouts: Timeouts,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._workspace = workspace
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=timeouts.read
        )
        # Requests beyond the pool's connections wait here, as a bare future,
        # not inside aiohttp as a built request with its timers: with thousands
        # of tasks in flight that is most of the client's memory.
        limit = session.connector.limit if session.connector is not None else 0
        self._gate: asyncio.Semaphore | None = asyncio.Semaphore(limit) if limit else None

    def __repr__(self) -> str:
        return f"Transport(base_url={self._base_url!r})"

    def noting_sent(self, mark: Callable[[], None]) -> contextlib.AbstractContextManager[None]:
        """:func:`noting_sent` for this transport's session."""
        return noting_sent(self._session, mark)

    def _headers(self, extra: Mapping[str, str], has_body: bool) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self._api_key.reveal()}",
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        if has_body:
            headers["Content-Type"] = "application/json"
        if self._workspace:
            headers["X-DashScope-WorkSpace"] = self._workspace
        headers.update(extra)
        return headers

    async def send(
        self,
        method: str,
        path: str,
        *,
        endpoint: Endpoint,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request to ``base_url + path``; return a 2xx answer or raise a project error."""
        url = self._base_url + path
        data = None if json_body is None else _encode(json_body)
        async with self._gate or contextlib.nullcontext():
            return await self._exchange(method, url, data, params, headers, endpoint)

    async def _exchange(
        self,
        method: str,
        url: str,
        data: str | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        endpoint: Endpoint,
    ) -> Response:
        with translated(endpoint.value, ConfigurationError):
            async with self._session.request(
                method,
                url,
                data=data,
                params=params,
                headers=self._headers(headers or {}, data is not None),
                timeout=self._timeout,
                allow_redirects=False,
                raise_for_status=False,
                auto_decompress=False,
            ) as resp:
                status = resp.status
                header_request_id = resp.headers.get("x-request-id")
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                try:
                    raw = await read_capped(
                        resp.content, resp.headers.get("Content-Encoding"), MAX_ANSWER_BYTES
                    )
                except TooLarge as exc:
                    seen, complete = (
                        task_id_in(exc.head) if endpoint is Endpoint.SUBMIT else (None, False)
                    )
                    raise UnexpectedResponseError(
                        f"the {endpoint.value} answer (HTTP {status}) is over"
                        f" {MAX_ANSWER_BYTES} bytes: not read further",
                        http_status=status,
                        request_id=header_request_id,
                        task_id_seen=seen,
                        task_id_complete=complete,
                    ) from None
                except ValueError as exc:
                    raise UnexpectedResponseError(
                        f"the {endpoint.value} answer (HTTP {status}) cannot be decoded: {exc}",
                        http_status=status,
                        request_id=header_request_id,
                    ) from None
        log.debug("%s %s -> %d", method, url, status)
        return decode_answer(status, raw, header_request_id, retry_after, endpoint)

    async def upload(
        self,
        url: str,
        fields: Sequence[tuple[str, str]],
        *,
        file_name: str,
        data: bytes,
        content_type: str,
    ) -> None:
        """POST a multipart form (``fields`` in order, then ``file``) to an upload host.

        The host is not the API's: the form's signature is the credential
        there, so neither the API key nor the workspace is sent. An error
        answer (OSS's XML) becomes the matching :class:`APIError`.
        """
        form = aiohttp.FormData()
        for name, value in fields:
            form.add_field(name, value)
        form.add_field("file", data, filename=file_name, content_type=content_type)
        # The upload host comes from the service's answer: a bad one is the answer's fault.
        async with self._gate or contextlib.nullcontext():
            with translated("upload", UnexpectedResponseError):
                async with self._session.post(
                    url,
                    data=form,
                    headers={"User-Agent": _USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
                    timeout=self._timeout,
                    allow_redirects=False,
                    raise_for_status=False,
                    auto_decompress=False,
                ) as resp:
                    status = resp.status
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    try:
                        raw = await read_capped(
                            resp.content, resp.headers.get("Content-Encoding"), MAX_ANSWER_BYTES
                        )
                    except TooLarge:
                        raise UnexpectedResponseError(
                            f"the upload host's answer (HTTP {status}) is over"
                            f" {MAX_ANSWER_BYTES} bytes: not read further",
                            http_status=status,
                        ) from None
                    except ValueError as exc:
                        raise UnexpectedResponseError(
                            f"the upload host's answer (HTTP {status}) cannot be decoded: {exc}",
                            http_status=status,
                        ) from None
        log.debug("POST %s -> %d", url, status)
        if 200 <= status < 300:
            return
        raise storage_error(status, raw, retry_after)

    async def download(self, url: str, dest: Path, *, max_bytes: int, replace: bool) -> int:
        """Stream ``url`` to ``dest`` through a temporary file; return the size written.

        The result URL is a signed link on another host: it is fetched
        without the API key. The file appears under ``dest`` only complete,
        with the length the server announced, and never larger than ``max_bytes``.
        Unless ``replace``, an existing ``dest`` is never written over: it is
        refused before anything is fetched, and a file that appears there
        meanwhile is not replaced either (:func:`video_exists`).
        When the file cannot be written (a full disk, no permission, a name
        too long, a directory in the way), the error is a
        :class:`DownloadError` naming ``dest`` that is not retried, and no
        temporary file is left behind.
        """
        if not replace and await on_disk(dest, os.path.lexists, dest):
            raise video_exists(dest)
        part = part_path(dest)
        try:
            try:
                # Not inflated by aiohttp: the announced length counts the bytes as sent
                # (compressed, if the host compressed them), and the client inflates them
                # itself, so that the file holds the video and its size is checked as it grows.
                async with self._session.get(
                    url,
                    headers={"User-Agent": _USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
                    timeout=self._timeout,
                    raise_for_status=False,
                    auto_decompress=False,
                ) as resp:
                    if resp.status != 200:
                        raise DownloadError("the video was refused", http_status=resp.status)
                    expected = resp.content_length
                    encoding = resp.headers.get("Content-Encoding")
                    try:
                        inflater = Inflater(encoding)
                    except ValueError as exc:
                        raise DownloadError(
                            f"the video cannot be read: {exc}", transient=False
                        ) from None
                    if encoding is None and expected is not None and expected > max_bytes:
                        raise DownloadError(
                            f"the video is {expected} bytes, over {max_bytes}", transient=False
                        )
                    received, written = await stream_to(
                        resp.content, inflater, part, dest, max_bytes
                    )
            except aiohttp.InvalidURL as exc:
                raise DownloadError(
                    f"the video URL cannot be fetched: {exc}", transient=False
                ) from exc
            except aiohttp.ClientError as exc:
                raise DownloadError(f"the download broke off: {type(exc).__name__}: {exc}") from exc
            if expected is not None and received != expected:
                raise DownloadError(f"the video was cut short: {received} of {expected} bytes")
            if not await on_disk(dest, move_into_place, part, dest, replace=replace):
                raise video_exists(dest)
            return written
        finally:
            await discard(part)

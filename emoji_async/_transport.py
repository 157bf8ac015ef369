"""One HTTP exchange with the service: the only module that touches aiohttp.

It sends one request and returns the decoded JSON of a 2xx answer, or raises
the most specific project error. aiohttp's exceptions are translated here and
nowhere else, sorted by the one question a paid call needs answered: did the
request leave this machine? A refused or timed-out connection proves it did
not (:class:`ConnectError`); anything after that (a reset, a read timeout, a
truncated body) may have reached the service (:class:`ResponseLostError`).
A download's file system errors (a full disk, no permission, a name too long)
are translated here too, into :class:`DownloadError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import errno
import html
import json
import logging
import math
import os
import re
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._errors import (
    ConfigurationError,
    ConnectError,
    DownloadError,
    EmojiError,
    ResponseLostError,
    UnexpectedResponseError,
    api_error,
)
from ._redact import redact, redact_error
from ._validation import number
from ._values import Endpoint, Secret
from ._wire import parse_error_body, task_id_in

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_RETRY_AFTER",
    "MAX_VIDEO_BYTES",
    "Response",
    "Session",
    "Timeouts",
    "Transport",
    "open_session",
    "video_exists",
]

log = logging.getLogger("emoji_async")

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: One encoder for every body: ``json.dumps`` with options builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":")).encode

#: The largest result video a download accepts (a 5 s 512x512 clip is well under
#: 5 MB; anything far bigger is not a result of this service).
MAX_VIDEO_BYTES = 64 * 1024 * 1024

#: The largest API answer the client reads, decompressed, in bytes. A task's answer is
#: under 4 KB and a page of the task list (at most 100 rows) under 100 KB, so 1 MiB is
#: ten times the largest answer the service has reason to send; past it the answer is
#: an :class:`UnexpectedResponseError`, read no further, so a service (or a gateway)
#: that sends a huge or a hugely inflating body never costs more memory than this.
MAX_ANSWER_BYTES = 1024 * 1024

#: The encodings the client can undo, and asks for: it inflates them itself, piece by
#: piece, so that a small compressed body is never inflated whole before it is measured.
_ACCEPT_ENCODING = "gzip, deflate"
#: The most one step of inflating produces, in bytes.
_INFLATE_STEP = 64 * 1024

_USER_AGENT = (
    f"emoji-async/0.1.0 aiohttp/{aiohttp.__version__} "
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


def open_session() -> Session:
    """A new pooled session for one client, which closes it (``await session.close()``).

    It takes no proxy or credentials from the environment (``trust_env=False``):
    the API key goes only to the base URL the client was given.
    """
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=_POOL_SIZE), trust_env=False)


@contextlib.contextmanager
def _translated(what: str, bad_url: Callable[[str], EmojiError]) -> Iterator[None]:
    """aiohttp's errors of one exchange with ``what``, as the project's.

    Never connected: :class:`ConnectError` (nothing was sent). Sent, no
    answer: :class:`ResponseLostError` (it may have been processed). A URL
    aiohttp refuses: ``bad_url`` (whose fault that is depends on where it
    came from). aiohttp's error stays the cause, :func:`_scrubbed` first.
    """
    try:
        yield
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
        raise ConnectError(f"could not connect for {what}: {_told(exc)}") from _scrubbed(exc)
    except aiohttp.InvalidURL as exc:
        raise bad_url(redact(f"invalid URL for {what}: {exc}")) from _scrubbed(exc)
    except aiohttp.ClientError as exc:
        raise ResponseLostError(
            f"no answer to {what} after it was sent: {_told(exc)}"
        ) from _scrubbed(exc)


def _told(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")


#: An empty header table, for a request kept in an error without its headers.
_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


def _scrubbed(exc: BaseException) -> BaseException:
    """``exc`` and every error it holds, changed in place to hold no credential.

    aiohttp's :class:`~aiohttp.ClientResponseError` keeps the request in
    ``request_info``, its headers (the API key) included: the method and URLs
    stay, the headers go, and ``history`` (earlier answers, each holding its
    request) is emptied. A malformed answer's errors quote what the server
    sent, which may echo the key: those texts are redacted. aiohttp's frames
    are dropped (``__traceback__``): their local variables hold the headers.
    """
    return redact_error(exc, _without_request_headers)


def _without_request_headers(err: BaseException) -> None:
    if not isinstance(err, EmojiError):
        # aiohttp's frames hold the headers as local variables, which a traceback
        # printed with its locals shows: the cause keeps its type and texts, not them.
        err.__traceback__ = None
    if not isinstance(err, aiohttp.ClientResponseError):
        return
    info = err.request_info
    err.request_info = aiohttp.RequestInfo(info.url, info.method, _NO_HEADERS, info.real_url)
    err.history = ()
    err.args = (err.request_info, err.history)
    if err.headers is not None:
        err.headers = CIMultiDictProxy(
            CIMultiDict((name, redact(value)) for name, value in err.headers.items())
        )


@attrs.frozen
class Response:
    """A 2xx answer: its status, decoded JSON body and request id."""

    status: int
    body: Any
    request_id: str | None


#: The longest wait a ``Retry-After`` header can impose, in seconds.
MAX_RETRY_AFTER = 3600.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date).

    ``None`` when the header is absent or unreadable, including ``NaN`` and an
    infinite value (``inf``, ``1e999``). A wait is at least 0 and at most
    :data:`MAX_RETRY_AFTER` (one hour): a 429 holds back its whole endpoint
    group, so an absurd value must not stop that group for good.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


class _Inflater:
    """Undoes a body's ``Content-Encoding`` (none, gzip or deflate) in bounded pieces.

    Each piece is at most :data:`_INFLATE_STEP` bytes, however much the input
    inflates, so the caller measures what it keeps as it goes. A body whose
    encoding is another one, or whose compressed data is damaged, raises
    :class:`ValueError` (the caller says whose fault that is).
    """

    def __init__(self, encoding: str | None) -> None:
        coding = (encoding or "identity").strip().lower()
        if coding in ("", "identity"):
            self._wbits: int | None = None
        elif coding in ("gzip", "x-gzip"):
            self._wbits = 16 + zlib.MAX_WBITS
        elif coding == "deflate":
            self._wbits = zlib.MAX_WBITS  # zlib's wrapper; a bare stream is sniffed below
        else:
            raise ValueError(f"an encoding the client did not ask for: {coding[:40]!r}")
        self._inflate: Any = None

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        """The inflated bytes of ``chunk``, in pieces of at most :data:`_INFLATE_STEP`."""
        if self._wbits is None:
            yield chunk
            return
        try:
            while chunk:
                if self._inflate is None:
                    wbits = self._wbits
                    if wbits == zlib.MAX_WBITS and chunk[0] & 0x0F != 8:
                        wbits = -zlib.MAX_WBITS  # deflate sent without zlib's header
                    self._inflate = zlib.decompressobj(wbits)
                piece = self._inflate.decompress(chunk, _INFLATE_STEP)
                if piece:
                    yield piece
                if self._inflate.unconsumed_tail:
                    chunk = self._inflate.unconsumed_tail
                elif self._inflate.eof:
                    # Another gzip member may follow (a valid, if rare, way to send one body).
                    chunk = self._inflate.unused_data
                    self._inflate = None
                else:
                    chunk = b""
        except zlib.error as exc:
            kind = "gzip" if self._wbits > zlib.MAX_WBITS else "deflate"
            raise ValueError(f"damaged {kind} data") from exc

    def finish(self) -> None:
        """Raise :class:`ValueError` if the compressed data stopped before its end."""
        if self._inflate is not None and not self._inflate.eof:
            raise ValueError("the compressed data stops before its end")


class _TooLarge(Exception):
    """An answer passed :data:`MAX_ANSWER_BYTES`; ``head`` is its start."""

    def __init__(self, head: bytes) -> None:
        super().__init__()
        self.head = head


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body of ``resp``, inflated, if it is at most ``cap`` bytes; else :class:`_TooLarge`.

    Read in pieces and left unread past the cap, so neither a huge body nor a
    small one that inflates hugely is ever held whole.
    """
    body = bytearray()
    inflater = _Inflater(resp.headers.get("Content-Encoding"))
    async for chunk in resp.content.iter_chunked(_INFLATE_STEP):
        for piece in inflater.feed(chunk):
            if len(body) + len(piece) > cap:
                raise _TooLarge(bytes(body[:4096]))
            body += piece
    inflater.finish()
    return bytes(body)


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

    def _headers(self, extra: Mapping[str, str], has_body: bool) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self._api_key.reveal()}",
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": _ACCEPT_ENCODING,
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
        with _translated(endpoint.value, ConfigurationError):
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
                    raw = await _read_capped(resp, MAX_ANSWER_BYTES)
                except _TooLarge as exc:
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
        return _decode(status, raw, header_request_id, retry_after, endpoint)

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
            with _translated("upload", UnexpectedResponseError):
                async with self._session.post(
                    url,
                    data=form,
                    headers={"User-Agent": _USER_AGENT, "Accept-Encoding": _ACCEPT_ENCODING},
                    timeout=self._timeout,
                    allow_redirects=False,
                    raise_for_status=False,
                    auto_decompress=False,
                ) as resp:
                    status = resp.status
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    try:
                        raw = await _read_capped(resp, MAX_ANSWER_BYTES)
                    except _TooLarge:
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
        text = raw[:2000].decode("utf-8", "replace")
        code, message, request_id = (_xml_text(text, tag) for tag in _OSS_ERROR_TAGS)
        raise api_error(
            status,
            code,
            message or text[:200].strip() or "(empty answer)",
            request_id=request_id,
            retry_after=retry_after,
            storage=True,
        )

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
        if not replace and await _on_disk(dest, os.path.lexists, dest):
            raise video_exists(dest)
        part = _part_path(dest)
        try:
            try:
                # Not inflated by aiohttp: the announced length counts the bytes as sent
                # (compressed, if the host compressed them), and the client inflates them
                # itself, so that the file holds the video and its size is checked as it grows.
                async with self._session.get(
                    url,
                    headers={"User-Agent": _USER_AGENT, "Accept-Encoding": _ACCEPT_ENCODING},
                    timeout=self._timeout,
                    raise_for_status=False,
                    auto_decompress=False,
                ) as resp:
                    if resp.status != 200:
                        raise DownloadError("the video was refused", http_status=resp.status)
                    expected = resp.content_length
                    encoding = resp.headers.get("Content-Encoding")
                    try:
                        inflater = _Inflater(encoding)
                    except ValueError as exc:
                        raise DownloadError(
                            f"the video cannot be read: {exc}", transient=False
                        ) from None
                    if encoding is None and expected is not None and expected > max_bytes:
                        raise DownloadError(
                            f"the video is {expected} bytes, over {max_bytes}", transient=False
                        )
                    received, written = await _stream_to(
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
            if not await _on_disk(dest, _move_into_place, part, dest, replace=replace):
                raise video_exists(dest)
            return written
        finally:
            await _discard(part)


def video_exists(dest: Path) -> DownloadError:
    """The error for a download whose file is already there: it is left as it is."""
    return DownloadError(
        f"{str(dest)!r} exists already; a video is never written over another "
        "(choose another name, remove the file, or pass overwrite=True)",
        transient=False,
    )


#: What ``link()`` says on a file system without hard links.
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS})


def _move_into_place(part: Path, dest: Path, *, replace: bool) -> bool:
    """Give the complete ``part`` its name; ``False`` if the name is taken and not ``replace``.

    A hard link to the new name fails if the name exists, in one step, so a
    file that appeared since the download began is never replaced. Where the
    file system has no hard links, a check just before the rename stands in
    (a file created in between would be lost: a narrow window, on rare systems).
    """
    if replace:
        os.replace(part, dest)
        return True
    try:
        os.link(part, dest)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if os.path.lexists(dest):
            return False
        os.replace(part, dest)
        return True
    os.unlink(part)
    return True


#: The longest file name most file systems take, in bytes.
_NAME_MAX = 255


def _part_path(dest: Path) -> Path:
    """Where ``dest`` is written until it is complete: a hidden name beside it, for this attempt."""
    tag = uuid.uuid4().hex[:8]
    name = f".{dest.name}.{tag}.part"
    if len(name.encode("utf-8", "surrogatepass")) > _NAME_MAX:
        name = f".{tag}.part"  # a name that just fits must not fail for its temporary one
    return dest.with_name(name)


async def _on_disk(dest: Path, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``call`` in a worker thread: a file system error becomes a :class:`DownloadError`.

    Writing again would meet the same disk, so it is not transient. Only the
    path the caller chose is named, never the URL or a header.
    """
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except (OSError, ValueError) as exc:  # ValueError: a name holding a NUL character
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DownloadError(
            f"the video could not be saved to {str(dest)!r}: {reason or type(exc).__name__}",
            transient=False,
        ) from exc


async def _discard(part: Path) -> None:
    """Remove a download's temporary file, if it exists; never masks the download's own error."""
    try:
        await asyncio.to_thread(part.unlink, missing_ok=True)
    except ValueError:
        pass  # a name holding a NUL character: it was never created
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ENAMETOOLONG):  # else never created
            log.warning("could not remove the partial download %s: %s", part, exc.strerror or exc)


async def _stream_to(
    content: aiohttp.StreamReader, inflater: _Inflater, part: Path, dest: Path, max_bytes: int
) -> tuple[int, int]:
    """Write the body to ``part``, inflated; the bytes received and the bytes written."""
    received = written = 0
    handle = await _on_disk(dest, part.open, "wb")
    try:
        try:
            async for chunk in content.iter_chunked(256 * 1024):
                received += len(chunk)
                for piece in inflater.feed(chunk):
                    written += len(piece)
                    if written > max_bytes:
                        raise DownloadError(f"the video is over {max_bytes} bytes", transient=False)
                    await _on_disk(dest, handle.write, piece)
            inflater.finish()
        except ValueError as exc:  # damaged or cut-short compressed data
            raise DownloadError(f"the video arrived damaged: {exc}") from exc
    finally:
        await _on_disk(dest, handle.close)
    return received, written


def _decode(
    status: int,
    raw: bytes,
    header_request_id: str | None,
    retry_after: float | None,
    endpoint: Endpoint,
) -> Response:
    try:
        body: Any = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        body = None
        decoded = False
    else:
        decoded = True
    if header_request_id is not None:
        header_request_id = redact(header_request_id)
    if 200 <= status < 300:
        if not decoded or body is None:
            excerpt = _excerpt(raw, 120)
            seen, complete = task_id_in(raw) if endpoint is Endpoint.SUBMIT else (None, False)
            raise UnexpectedResponseError(
                f"the {endpoint.value} answer is not JSON: {excerpt!r}",
                http_status=status,
                request_id=header_request_id,
                task_id_seen=seen,
                task_id_complete=complete,
            )
        request_id = body.get("request_id") if isinstance(body, dict) else None
        if not isinstance(request_id, str):
            request_id = header_request_id
        return Response(status, body, request_id)
    code, message, request_id = parse_error_body(body)
    if message is None:
        message = _excerpt(raw, 200).strip() or "(empty answer)"
    raise api_error(
        status,
        code,
        message,
        request_id=request_id or header_request_id,
        retry_after=retry_after,
    )


def _excerpt(raw: bytes, limit: int) -> str:
    """The first ``limit`` characters of an answer, :func:`redact`-ed before it is cut.

    Cut first, a key across the cut would survive in part.
    """
    return redact(raw[: 4 * limit + 4096].decode("utf-8", "replace"))[:limit]


#: The elements of an OSS error answer: ``<Error><Code/><Message/><RequestId/></Error>``.
_OSS_ERROR_TAGS = ("Code", "Message", "RequestId")


def _xml_text(text: str, tag: str) -> str | None:
    """The text of the first ``<tag>`` in a small XML answer (not parsed as XML: never trusted)."""
    found = re.search(rf"<{tag}>([^<]*)</{tag}>", text)
    if found is None:
        return None
    return redact(html.unescape(found.group(1))).strip() or None

"""What an answer holds, read safely: bounded, inflated, decoded, its errors named.

The transport hands over what came back (a status, headers, the body's chunks)
and this module reads it without trusting it: a body is inflated by the client
itself (:class:`Inflater`), piece by piece, and never held past
:data:`MAX_ANSWER_BYTES` (:func:`read_capped`); a 2xx JSON body becomes a
:class:`Response`, anything else the most specific project error
(:func:`decode_answer`, :func:`storage_error`); a ``Retry-After`` header a
bounded number of seconds (:func:`parse_retry_after`). Every text quoted from
an answer is :func:`~emoji_async._redact.redact`-ed first. Nothing here knows
aiohttp: a body is anything with ``iter_chunked`` (:class:`Chunked`).
"""

from __future__ import annotations

import email.utils
import html
import json
import math
import re
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import attrs

from ._api_errors import api_error
from ._errors import APIError, UnexpectedResponseError
from ._redact import redact
from ._values import Endpoint
from ._wire import parse_error_body, task_id_in

__all__ = [
    "ACCEPT_ENCODING",
    "INFLATE_STEP",
    "MAX_ANSWER_BYTES",
    "MAX_RETRY_AFTER",
    "Chunked",
    "Inflater",
    "Response",
    "TooLarge",
    "decode_answer",
    "parse_retry_after",
    "read_capped",
    "storage_error",
]

#: The largest API answer the client reads, decompressed, in bytes. A task's answer is
#: under 4 KB and a page of the task list (at most 100 rows) under 100 KB, so 1 MiB is
#: ten times the largest answer the service has reason to send; past it the answer is
#: an :class:`UnexpectedResponseError`, read no further, so a service (or a gateway)
#: that sends a huge or a hugely inflating body never costs more memory than this.
MAX_ANSWER_BYTES = 1024 * 1024

#: The encodings the client can undo, and asks for: it inflates them itself, piece by
#: piece, so that a small compressed body is never inflated whole before it is measured.
ACCEPT_ENCODING = "gzip, deflate"
#: The most one step of inflating produces, in bytes.
INFLATE_STEP = 64 * 1024


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


class Chunked(Protocol):
    """A body read in chunks (aiohttp's ``StreamReader`` is one)."""

    def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        """The body's bytes, in chunks of at most ``n``."""
        ...


class Inflater:
    """Undoes a body's ``Content-Encoding`` (none, gzip or deflate) in bounded pieces.

    Each piece is at most :data:`INFLATE_STEP` bytes, however much the input
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
        """The inflated bytes of ``chunk``, in pieces of at most :data:`INFLATE_STEP`."""
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
                piece = self._inflate.decompress(chunk, INFLATE_STEP)
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


class TooLarge(Exception):
    """An answer passed :data:`MAX_ANSWER_BYTES`; ``head`` is its start."""

    def __init__(self, head: bytes) -> None:
        super().__init__()
        self.head = head


async def read_capped(content: Chunked, encoding: str | None, cap: int) -> bytes:
    """The body sent with ``encoding``, inflated, if at most ``cap`` bytes; else :class:`TooLarge`.

    Read in pieces and left unread past the cap, so neither a huge body nor a
    small one that inflates hugely is ever held whole.
    """
    body = bytearray()
    inflater = Inflater(encoding)
    async for chunk in content.iter_chunked(INFLATE_STEP):
        for piece in inflater.feed(chunk):
            if len(body) + len(piece) > cap:
                raise TooLarge(bytes(body[:4096]))
            body += piece
    inflater.finish()
    return bytes(body)


def decode_answer(
    status: int,
    raw: bytes,
    header_request_id: str | None,
    retry_after: float | None,
    endpoint: Endpoint,
) -> Response:
    """A 2xx JSON answer as a :class:`Response`; else the project error it amounts to.

    A 2xx that is not JSON is an :class:`UnexpectedResponseError` (a submit's
    names the task id its bytes still hold); any other status, the
    :class:`APIError` its body's code names (:func:`~emoji_async._api_errors.api_error`).
    """
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


def storage_error(
    status: int, raw: bytes, retry_after: float | None
) -> APIError | UnexpectedResponseError:
    """The error an upload host's error answer (OSS's XML) names, read from its start."""
    text = raw[:2000].decode("utf-8", "replace")
    code, message, request_id = (_xml_text(text, tag) for tag in _OSS_ERROR_TAGS)
    return api_error(
        status,
        code,
        message or text[:200].strip() or "(empty answer)",
        request_id=request_id,
        retry_after=retry_after,
        storage=True,
    )

"""The bodies of hostile answers: huge, a gzip bomb, gzip, an echoed key, an odd task id.

Nothing here knows about HTTP frameworks; ``_responses`` sends what these build. A
large body is an iterator of chunks, never bytes built whole: a huge answer of
any size costs one 64 KiB block of spaces, and a gzip bomb one compressed block
of a mebibyte of spaces (about 1 KiB) repeated, so a bomb that inflates to
1 GiB costs the simulator about 1 MiB to send and nothing to hold.

Both pad the real JSON answer with *leading* whitespace, which JSON allows:
the body is the same answer once read whole, so what a client does with it
tells only of how it bounds what it reads.

A gzip member is a header, raw deflate data and a trailer (CRC-32 and length
of the inflated bytes). Deflate data may be the concatenation of pieces
compressed separately, as long as every piece but the last ends on a byte
boundary without the final-block bit (``Z_FULL_FLUSH`` does both) and none
refers back past its own start (a fresh compressor per piece). The CRC-32 of
``k`` blocks of spaces is kept as it is first computed.
"""

from __future__ import annotations

import gzip
import http
import struct
import threading
import zlib
from collections.abc import Iterator, Mapping

import attrs

from ._wire import Reply, error_reply, fault_message

__all__ = [
    "Bomb",
    "echo_reply",
    "gzip_bomb",
    "gzipped",
    "is_json_object",
    "padded",
    "with_task_id",
]

_SPACES = b" " * 65536
#: How many spaces one compressed block of a bomb inflates to.
_BLOCK = 1 << 20
#: Blocks sent per write: about 64 KiB on the wire.
_BLOCKS_PER_WRITE = 64
#: Magic, deflate, no flags, mtime 0, maximum compression, unknown OS (RFC 1952).
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"


def padded(answer: bytes, size: int) -> tuple[int, Iterator[bytes]]:
    """``answer`` after enough spaces to make ``size`` bytes in all: (length, chunks).

    An answer already ``size`` bytes or longer is sent alone.
    """
    pad = max(0, size - len(answer))

    def chunks() -> Iterator[bytes]:
        left = pad
        while left >= len(_SPACES):
            yield _SPACES
            left -= len(_SPACES)
        if left:
            yield _SPACES[:left]
        yield answer

    return pad + len(answer), chunks()


def _deflated(data: bytes, *, last: bool) -> bytes:
    """``data`` as a self-contained piece of raw deflate data (the last one, or not)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(
        zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH
    )


class _Blocks:
    """The compressed block of ``_BLOCK`` spaces, and the CRC-32 of ``k`` of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block: bytes | None = None
        self._crcs = [0]  # the CRC-32 of 0, 1, 2... blocks

    def block(self) -> bytes:
        with self._lock:
            if self._block is None:
                self._block = _deflated(b" " * _BLOCK, last=False)
            return self._block

    def crc(self, count: int) -> int:
        with self._lock:
            if count >= len(self._crcs):
                spaces = b" " * _BLOCK
                crc = self._crcs[-1]
                for _ in range(count - len(self._crcs) + 1):
                    crc = zlib.crc32(spaces, crc)
                    self._crcs.append(crc)
            return self._crcs[count]


_blocks = _Blocks()


@attrs.frozen
class Bomb:
    """A gzip body that inflates to ``inflated`` bytes: spaces, then the answer."""

    inflated: int
    blocks: int
    rest: bytes
    tail: bytes

    @property
    def length(self) -> int:
        """The compressed size: what ``Content-Length`` says."""
        block = _blocks.block()
        return len(_GZIP_HEADER) + self.blocks * len(block) + len(self.rest) + len(self.tail)

    def chunks(self) -> Iterator[bytes]:
        """The compressed body, about 64 KiB at a time."""
        block = _blocks.block()
        yield _GZIP_HEADER
        groups, single = divmod(self.blocks, _BLOCKS_PER_WRITE)
        if groups:
            group = block * _BLOCKS_PER_WRITE
            for _ in range(groups):
                yield group
        for _ in range(single):
            yield block
        if self.rest:
            yield self.rest
        yield self.tail


def gzip_bomb(answer: bytes, size: int) -> Bomb:
    """``answer`` after spaces to ``size`` bytes in all, gzip-compressed in pieces.

    The first bomb of a size computes the CRC-32 of its spaces (about 0.3 s a
    GiB): call it in a thread.
    """
    pad = max(0, size - len(answer))
    blocks, left = divmod(pad, _BLOCK)
    crc = _blocks.crc(blocks)
    rest = b""
    if left:
        spaces = b" " * left
        rest = _deflated(spaces, last=False)
        crc = zlib.crc32(spaces, crc)
    crc = zlib.crc32(answer, crc)
    inflated = pad + len(answer)
    trailer = struct.pack("<II", crc, inflated & 0xFFFFFFFF)
    return Bomb(inflated, blocks, rest, _deflated(answer, last=True) + trailer)


def gzipped(body: bytes) -> bytes:
    """``body`` as one gzip member (no file name, mtime 0: the same bytes every time)."""
    return gzip.compress(body, mtime=0)


def with_task_id(reply: Reply, task_id: str) -> Reply | None:
    """``reply`` with ``output.task_id`` replaced by ``task_id`` (``{task_id}``: the real one).

    ``None`` if the answer is not a JSON object with an ``output.task_id``.
    """
    payload = reply.json_object()
    if payload is None:
        return None
    output = payload.get("output")
    if not isinstance(output, dict) or not isinstance(output.get("task_id"), str):
        return None
    output["task_id"] = task_id.replace("{task_id}", output["task_id"])
    return reply.with_json(payload)


def is_json_object(reply: Reply) -> bool:
    """Whether ``reply`` is a JSON answer whose body is an object (what ``padded`` needs)."""
    return reply.content_type.endswith("json") and reply.body.lstrip().startswith(b"{")


def echo_reply(status: int, code: str, method: str, path: str, headers: Mapping[str, str]) -> Reply:
    """An error answer that repeats the request's ``Authorization`` header.

    From 500 up, a gateway's plain-text page quoting the request line and every
    header; below, the provider's JSON envelope, its message quoting the header
    (a 401 is ``InvalidApiKey``).
    """
    authorization = headers.get("Authorization", "")
    if status >= 500:
        quoted = "".join(f"{name}: {value}\n" for name, value in headers.items())
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        body = (
            f"{status} {phrase}\n"
            "The upstream server did not answer this request:\n"
            f"{method} {path}\n{quoted}"
        )
        return Reply(status, body.encode(), content_type="text/plain")
    if status == 401:
        return error_reply(
            401, "InvalidApiKey", f"Invalid API-key provided: {authorization!r} is not valid."
        )
    return error_reply(status, code, f"{fault_message(code)} (Authorization: {authorization})")

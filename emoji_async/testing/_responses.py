"""Sending a ``Reply`` over aiohttp: whole, cut short, streamed, dripped, or not at all.

The only module of the fault machinery that writes to a connection. A
``Dropped`` response stands for a connection closed without an answer (on
purpose, or because the client left first): it never reaches the wire, and the
request's record shows status 0.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiohttp import web

from ._faults import Fault
from ._hostile import gzip_bomb, gzipped, padded
from ._lifetime import Lifetime
from ._replies import kept
from ._wire import Reply

__all__ = ["Dropped", "cut", "drop", "hostile_answer", "respond", "stream"]


class Dropped(web.Response):
    """Returned after the connection was dropped on purpose; never reaches the wire."""


def respond(reply: Reply) -> web.Response:
    headers = dict(reply.headers)
    if reply.body:
        headers["Content-Type"] = reply.content_type
    return web.Response(status=reply.status, body=reply.body or None, headers=headers)


def drop(request: web.Request) -> Dropped:
    """Drop the connection without an answer."""
    if request.transport is not None:
        request.transport.abort()
    return Dropped(status=599)


async def cut(request: web.Request, reply: Reply, keep: float) -> web.StreamResponse:
    """Promise the whole body, send ``keep`` of it, and close the connection."""
    response = web.StreamResponse(status=reply.status, headers=dict(reply.headers))
    response.content_type = reply.content_type
    response.content_length = len(reply.body)
    try:
        await response.prepare(request)
        await response.write(reply.body[: kept(len(reply.body), keep)])
    except ConnectionError:  # the client left first: there is nobody to cut short
        return Dropped(status=599)
    if request.transport is not None:
        request.transport.close()  # sends what was written, then FIN: the rest never comes
    return response


async def stream(
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
        return Dropped(status=599)
    return response


async def hostile_answer(
    request: web.Request, reply: Reply, fault: Fault, lifetime: Lifetime
) -> web.StreamResponse:
    """Send ``reply`` (a dated one) huge, as a gzip bomb, dripping, or gzip-encoded."""
    if fault.kind == "huge":
        size, chunks = padded(reply.body, fault.size)
        return await stream(request, reply, chunks, length=None if fault.chunked else size)
    if fault.kind == "gzip_bomb":
        bomb = await asyncio.to_thread(gzip_bomb, reply.body, fault.size)
        return await stream(
            request,
            reply,
            bomb.chunks(),
            length=None if fault.chunked else bomb.length,
            encoding="gzip",
        )
    if fault.kind == "gzip":
        body = await asyncio.to_thread(gzipped, reply.body)
        return await stream(request, reply, [body], length=len(body), encoding="gzip")
    return await _drip(request, reply, fault, lifetime)


async def _drip(
    request: web.Request, reply: Reply, fault: Fault, lifetime: Lifetime
) -> web.StreamResponse:
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
                await lifetime.sleep(min(fault.interval, left))
                if lifetime.closing:
                    return drop(request)
        await response.write_eof()
    except ConnectionError:  # the client hung up: the drip ends with it
        return Dropped(status=599)
    return response

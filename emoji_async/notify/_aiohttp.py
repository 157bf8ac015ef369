"""The receiver as an ``aiohttp.web`` handler, mounted with ``app.router.add_post(path, ...)``.

The request's URL (scheme, ``Host``, path and query, as aiohttp reads them) is
what the signature is checked against, unless the receiver has a
``public_url``. The body is read in pieces up to the receiver's cap, so a body
over it is refused without reading the rest (aiohttp's own ``client_max_size``
does not apply: the body is never read whole by aiohttp).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ._receiver import Receiver

__all__ = ["handle_aiohttp"]

#: The piece read at a time.
_PIECE = 64 * 1024


async def handle_aiohttp(receiver: Receiver, request: web.Request) -> web.Response:
    """Answer one delivery ``request`` with ``receiver``."""
    if request.method != "POST":
        return web.json_response({"error": "method"}, status=405, headers={"Allow": "POST"})

    async def read(limit: int) -> bytes:
        data = bytearray()
        while len(data) <= limit:
            piece = await request.content.read(min(_PIECE, limit + 1 - len(data)))
            if not piece:
                break
            data += piece
        return bytes(data)

    answer = await receiver.handle(str(request.url), request.headers.items(), read)
    return web.Response(status=answer.status, body=answer.body, content_type="application/json")

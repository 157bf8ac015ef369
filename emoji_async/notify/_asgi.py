"""The receiver as a plain ASGI 3 app, with no framework: mount ``receiver.asgi`` anywhere.

``http``: a POST is a delivery; any other method is answered 405. ``lifespan``:
startup is acknowledged, shutdown stops the deliveries still running past
their answer. A framework that mounts the app as a sub-app (Starlette's
``Mount``, FastAPI's ``app.mount``) sends it no lifespan: nothing is lost,
the receiver holds nothing that needs closing.

The URL checked against the signature is built from the scope (scheme,
``Host``, the raw path, the query string) unless the receiver has a
``public_url``: behind a proxy that rewrites any of them, set it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._receiver import Answer, Receiver

__all__ = ["AsgiApp", "Receive", "Scope", "Send", "serve_asgi"]

#: ASGI's types, as Starlette spells them, so the app mounts without a cast.
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class AsgiApp:
    """A receiver as an ASGI 3 app (``receiver.asgi``).

    An object whose ``__call__`` is a coroutine function, not a bound method:
    servers that tell ASGI 3 from ASGI 2 by looking (uvicorn does) take a
    bound method for ASGI 2.
    """

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def __repr__(self) -> str:
        return f"<ASGI app of {self.receiver!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_asgi(self.receiver, scope, receive, send)


class _Disconnected(Exception):
    """The sender went away before its body came whole: there is no one to answer."""


async def serve_asgi(receiver: Receiver, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one ASGI connection scope with ``receiver``."""
    kind = scope["type"]
    if kind == "lifespan":
        await _lifespan(receiver, receive, send)
        return
    if kind != "http":
        raise ValueError(f"the notification receiver serves HTTP, not {kind!r}")
    if scope["method"] != "POST":
        await _answer(send, 405, b'{"error": "method"}', allow=True)
        return
    headers = [
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
    ]

    async def read(limit: int) -> bytes:
        data = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            data += message.get("body", b"")
            if len(data) > limit or not message.get("more_body", False):
                return bytes(data)

    try:
        answer: Answer = await receiver.handle(_url(scope, headers), headers, read)
    except _Disconnected:
        return
    await _answer(send, answer.status, answer.body)


def _url(scope: Scope, headers: list[tuple[str, str]]) -> str:
    """The URL the request was sent to, as the sender wrote it."""
    host = next((value for name, value in headers if name.lower() == "host"), None)
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope.get("root_path", "") + scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}{path}" + (f"?{query}" if query else "")


async def _answer(send: Send, status: int, body: bytes, *, allow: bool = False) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if allow:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receiver: Receiver, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await receiver.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return

"""The answers the simulator makes around an operation's own, as ``Reply`` values.

What a fault or the gate answers instead of (or on top of) the operation's
reply: an error in the envelope of the host it plays on (the API's JSON, the
storage hosts' XML), an odd status no provider page lists, a reply cut short
or missing a field, a ``Retry-After`` value, a ``Date`` on the service's clock.
Nothing here knows about aiohttp: ``_responses`` sends what these build.
"""

from __future__ import annotations

import http

from ._clock import Clock
from ._faults import Fault
from ._wire import Reply, error_reply, fault_message, oss_error_reply

__all__ = [
    "OTHER_HOSTS",
    "STORAGE",
    "dated",
    "fault_reply",
    "kept",
    "odd_reply",
    "seconds_text",
    "without",
]

#: Endpoints served by the object-storage hosts: their errors are OSS's XML.
STORAGE = frozenset({"upload", "download"})
#: Endpoints served by hosts other than the API's, which do not show the service's clock.
OTHER_HOSTS = STORAGE | {"sample"}


def seconds_text(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds when whole, else up to milliseconds."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def odd_reply(status: int, path: str) -> Reply:
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


def fault_reply(fault: Fault, endpoint: str, path: str) -> Reply:
    """The error ``fault`` answers on ``endpoint`` (``path``: the request's, for a redirect)."""
    message = fault_message(fault.code)
    if fault.status < 400 or fault.status == 408:
        reply = odd_reply(fault.status, path)
    elif endpoint in STORAGE:
        reply = oss_error_reply(fault.status, fault.code, message)
    else:
        reply = error_reply(fault.status, fault.code, message)
    if fault.retry_after is not None:
        reply = reply.with_headers(("Retry-After", seconds_text(fault.retry_after)))
    return reply


def dated(reply: Reply, endpoint: str, clock: Clock) -> Reply:
    """``reply`` with a ``Date`` on the service's clock, if it is an API answer."""
    if endpoint in OTHER_HOSTS:
        return reply
    return reply.with_headers(("Date", clock.http_date(clock.now())))


def kept(size: int, keep: float) -> int:
    """How many of ``size`` bytes a cut body keeps: at least one, and at least one lost."""
    return min(max(1, int(size * keep)), size - 1)


def without(reply: Reply, field: str | None) -> Reply | None:
    """``reply`` without the JSON ``field`` (a dotted path); ``None`` if it has no such field."""
    payload = reply.json_object()
    if payload is None:
        return None
    if field is None:
        others = [key for key in payload if key != "request_id"]
        field = "output" if "output" in payload else (others or ["request_id"])[0]
    *parents, name = field.split(".")
    container: object = payload
    for part in parents:
        container = _item(container, part)
    if not isinstance(container, dict) or name not in container:
        return None
    del container[name]
    return reply.with_json(payload)


def _item(container: object, part: str) -> object:
    """``container[part]``: a key of an object, or a number picking an item of a list (a row)."""
    if isinstance(container, dict):
        return container.get(part)
    if isinstance(container, list) and part.isdigit() and int(part) < len(container):
        return container[int(part)]
    return None

"""aiohttp's errors of one exchange, as the project's, and holding no credential.

The one question a paid call needs answered is whether its request left this
machine: a refused or timed-out connection proves it did not
(:class:`ConnectError`); anything after that may have reached the service
(:class:`ResponseLostError`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from ._errors import ConnectError, EmojiError, ResponseLostError
from ._redact import redact, redact_error

__all__ = ["translated"]


@contextlib.contextmanager
def translated(what: str, bad_url: Callable[[str], EmojiError]) -> Iterator[None]:
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

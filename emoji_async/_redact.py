"""Credentials taken out of the service's texts before the client repeats them.

A gateway in front of the service may echo the request's ``Authorization``
header in its answer: in an error message, a plain-text 502 page, a task's
failure message, or a malformed status or header line. Whatever the client
repeats of an answer (in an error's message or attributes, a log line, a
journal, the command line's output) first passes through :func:`redact`,
which replaces, in this order:

1. every API key this process holds (each :class:`~emoji_async._values.Secret`
   still alive), wherever it appears, with or without ``Bearer`` before it;
2. any ``Bearer`` credential: the word (any case), white space, and the
   token that follows (RFC 6750's token characters);
3. anything that looks like a DashScope key: ``sk-`` at the start of a word
   followed by at least 8 letters, digits, ``_`` or ``-``.

Each is replaced by :data:`MASK` (``Bearer`` itself is kept, so the message
still says what was there). Rules 2 and 3 catch a key this process does not
hold (another key of the account, a key cut short); rule 1 catches the
client's own key in any form.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["MASK", "redact", "redact_error", "remember"]

#: What stands in for a credential taken out of a text.
MASK = "********"


class _Revealing(Protocol):
    def reveal(self) -> str: ...


#: The values of the secrets alive, by the id of their ``Secret``: an entry
#: goes when its ``Secret`` does (:func:`remember`), so a key is not kept for
#: longer than the client that holds it.
_held: dict[int, str] = {}
#: The same values, deduplicated: read by :func:`redact` without a copy.
_keys: tuple[str, ...] = ()

_BEARER = re.compile(r"\b(bearer)\s+[A-Za-z0-9._~+/-]+=*", re.IGNORECASE)
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_-]{8,}")


def remember(secret: _Revealing) -> None:
    """Take ``secret``'s value out of every text :func:`redact` sees while it lives."""
    value = secret.reveal()
    if not value:
        return
    ident = id(secret)
    _held[ident] = value
    _publish()
    weakref.finalize(secret, _forget, ident)


def _forget(ident: int) -> None:
    _held.pop(ident, None)
    _publish()


def _publish() -> None:
    global _keys
    # dict() copies without running Python code, so a finalizer run by the garbage
    # collector meanwhile cannot change the table under the iteration.
    _keys = tuple(dict.fromkeys(dict(_held).values()))


def redact(text: str) -> str:
    """``text`` without a credential (the rules are in this module's docstring)."""
    for value in _keys:
        if value in text:
            text = text.replace(value, MASK)
    if "bearer" in text.lower():
        text = _BEARER.sub(rf"\1 {MASK}", text)
    if "sk-" in text:
        text = _KEY_LIKE.sub(MASK, text)
    return text


def redact_error(
    exc: BaseException, strip: Callable[[BaseException], None] | None = None
) -> BaseException:
    """``exc`` and every error it holds, changed in place to show no credential; ``exc``.

    Every error reachable from ``exc`` (its ``__cause__`` and ``__context__``,
    an exception group's members, an error kept in an attribute or an
    argument) is first given to ``strip``, which removes what it knows of;
    then each of its texts (arguments and attributes) is :func:`redact`-ed, and
    any other value whose ``repr`` would show a credential is replaced by that
    ``repr``, redacted. In place, not copied: an error raised from ``exc`` also
    holds it as its ``__context__``, so a copy would leave the original there.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if strip is not None:
            strip(err)
        err.args = tuple(_clean(arg) for arg in err.args)
        attributes = vars(err) if hasattr(err, "__dict__") else {}
        for name, value in list(attributes.items()):
            cleaned = _clean(value)
            if cleaned is not value:
                setattr(err, name, cleaned)
        held = [*err.args, *attributes.values()]
        if isinstance(err, BaseExceptionGroup):
            held += err.exceptions
        todo += [err.__cause__, err.__context__]
        todo += [value for value in held if isinstance(value, BaseException)]
    return exc


def _clean(value: object) -> object:
    """A text redacted; another value whose repr shows a credential, that repr redacted."""
    if isinstance(value, str):
        cleaned = redact(value)
        return value if cleaned == value else cleaned
    if value is None or isinstance(value, int | float | BaseException):
        return value  # an error is visited on its own
    try:
        shown = repr(value)
    except Exception:  # whatever it holds, it cannot show it
        return value
    cleaned = redact(shown)
    return value if cleaned == shown else cleaned

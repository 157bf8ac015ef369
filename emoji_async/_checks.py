"""The building blocks of every check on what callers pass, composed as ``attr.validators``.

:func:`number`, :func:`whole` and :func:`instance_of` make a :class:`Check`
from what it allows and a test, and :func:`optional` lets ``None`` through
one. On them stand the ranges the configuration values ask for
(:func:`positive`, :func:`at_least`, :func:`in_range`, :func:`count`), and the
choices (:func:`member_of`, :func:`matches`). A :class:`Check` is an attrs validator
(the field is the attribute's name) and checks an argument too
(:meth:`Check.validate`), so a value object declares each field's check in the
field's own line. A failure is a :class:`ValidationError` that names the field
and what it allows.

It imports only the error tree, so the models below every other module check
their values with it too.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from typing import Any, TypeGuard

import attrs

from ._errors import ValidationError

__all__ = [
    "Check",
    "at_least",
    "count",
    "in_range",
    "instance_of",
    "is_finite_number",
    "matches",
    "member_of",
    "number",
    "optional",
    "positive",
    "whole",
]


def is_finite_number(value: object) -> TypeGuard[float]:
    """Whether ``value`` is an int or float (not a bool) with a finite value.

    Checked before any comparison, so a string, ``None`` or a ``Decimal``
    never reaches one (where it would raise ``TypeError`` or
    ``InvalidOperation``). Infinity is refused: a wait of ``inf`` never ends.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float: no use as seconds or a rate
        return False


@attrs.frozen
class Check:
    """One rule for a value: ``test`` passes it, or :class:`ValidationError` says ``allowed``.

    Called as an attrs validator, the field is the attribute's name.
    """

    allowed: str
    test: Callable[[Any], bool]
    #: What the error shows of a value that fails: the value itself, unless
    #: showing it could give away what it holds (a URL with a password).
    shown: Callable[[Any], object] = attrs.field(default=lambda value: value, kw_only=True)

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        self.validate(value, field=attribute.name)

    def validate(self, value: object, *, field: str) -> None:
        """Raise :class:`ValidationError` on ``field`` unless ``value`` passes."""
        if not self.test(value):
            raise ValidationError(field, self.allowed, self.shown(value))


def _always(value: Any) -> bool:
    return True


def number(allowed: str, test: Callable[[float], bool] = _always) -> Check:
    """A finite int or float (:func:`is_finite_number`) that passes ``test``."""
    return Check(allowed, lambda value: is_finite_number(value) and test(value))


def whole(allowed: str, test: Callable[[int], bool] = _always) -> Check:
    """An ``int`` (not a bool, nor a subclass) that passes ``test``."""
    return Check(allowed, lambda value: type(value) is int and test(value))


def instance_of(kind: type | tuple[type, ...], allowed: str) -> Check:
    """An instance of ``kind``."""
    return Check(allowed, lambda value: isinstance(value, kind))


def optional(check: Check, allowed: str | None = None) -> Check:
    """``None``, or a value ``check`` passes; ``allowed`` says both.

    By default it is ``check``'s, then ``, or None``.
    """
    if allowed is None:
        allowed = f"{check.allowed}, or None"
    return Check(allowed, lambda value: value is None or check.test(value))


def positive(allowed: str = "a finite number > 0") -> Check:
    """A finite number above zero: a wait, a rate, a deadline."""
    return number(allowed, lambda value: value > 0)


def at_least(least: float, allowed: str | None = None) -> Check:
    """A finite number ``>= least`` (by default, it says so: ``a finite number >= 1``)."""
    return number(allowed or f"a finite number >= {least:g}", lambda value: value >= least)


def in_range(
    low: float, high: float, allowed: str | None = None, *, high_open: bool = False
) -> Check:
    """A finite number from ``low`` to ``high``, ``high`` itself left out if ``high_open``.

    By default it says ``a number from 0 to 1``, or ``a number in [0, 1)`` when
    ``high`` is left out.
    """
    if high_open:
        return number(
            allowed or f"a number in [{low:g}, {high:g})", lambda value: low <= value < high
        )
    return number(
        allowed or f"a number from {low:g} to {high:g}", lambda value: low <= value <= high
    )


def count(least: int, allowed: str | None = None) -> Check:
    """An ``int`` (:func:`whole`) ``>= least``: slots, entries (by default ``an int >= 1``)."""
    return whole(allowed or f"an int >= {least}", lambda value: value >= least)


def member_of(choices: type[enum.Enum]) -> Check:
    """A member of the enum ``choices``, which it names (``one of Kind.A, Kind.B``)."""
    names = ", ".join(f"{choices.__name__}.{member.name}" for member in choices)
    return instance_of(choices, f"one of {names}")


def matches(pattern: re.Pattern[str], allowed: str) -> Check:
    """A ``str`` that ``pattern`` matches whole."""
    return Check(
        allowed, lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None
    )

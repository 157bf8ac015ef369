"""The simulated EventBridge's settings: their types, defaults and checks.

``SimulatorConfig``'s ``notify_*`` fields use these converters and validators,
so a mistake (a target that is no http(s) URL, a latency range upside down, a
probability of 2) is refused when the configuration is made, naming the field,
not found out when the first task ends.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from .._notice_signing import SignForm

__all__ = [
    "NOTIFY_LATENCY",
    "RETRY_STRATEGIES",
    "RetryStrategy",
    "check_latency",
    "check_probability",
    "check_sign_form",
    "check_targets",
    "check_timeout",
    "check_token",
    "latency",
    "one_of_strategies",
    "targets",
]

#: How the simulated EventBridge retries a delivery that failed (EventBridge's names).
RetryStrategy = Literal["BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY"]
RETRY_STRATEGIES: tuple[RetryStrategy, ...] = typing.get_args(RetryStrategy)

#: An event's latency, in provider seconds: "usually about 1-90 s", the provider says.
NOTIFY_LATENCY = (1.0, 90.0)


def targets(value: str | Iterable[str]) -> tuple[str, ...]:
    """The targets as a tuple; one URL given alone is one target, not its characters."""
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def check_targets(_: object, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
    for url in value:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{attribute.name} must be http(s) URLs such as 'http://127.0.0.1:8080/events', "
                f"got {url!r}"
            )


def latency(value: Iterable[float]) -> tuple[float, float]:
    """``(min, max)`` as two floats (a list or any pair of numbers is accepted)."""
    pair = tuple(value)
    if len(pair) != 2:
        raise ValueError(f"notify_latency must be (min, max) provider seconds, got {value!r}")
    return float(pair[0]), float(pair[1])


def check_latency(_: object, __: attrs.Attribute[Any], value: tuple[float, float]) -> None:
    low, high = value
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
        raise ValueError(
            f"notify_latency must be (min, max) provider seconds with 0 <= min <= max, "
            f"got {value!r}"
        )


def check_probability(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be a probability from 0 to 1, got {value!r}")


def check_token(_: object, __: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value or not value.isprintable() or value != value.strip():
        raise ValueError(
            "notify_token must be None or printable text without surrounding spaces (it is "
            "sent as a header)"
        )


def check_sign_form(_: object, __: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, SignForm):
        raise TypeError(f"notify_sign_form must be a SignForm (one of SIGN_FORMS), got {value!r}")


def check_timeout(_: object, __: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"notify_timeout must be a positive number of seconds, got {value!r}")


def one_of_strategies(_: object, __: attrs.Attribute[Any], value: Any) -> None:
    if value not in RETRY_STRATEGIES:
        allowed = ", ".join(repr(name) for name in RETRY_STRATEGIES)
        raise ValueError(f"notify_retry must be one of {allowed}, got {value!r}")

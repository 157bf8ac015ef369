"""The setting of pacing shared through Redis: which server, which account, how long locks live.

A plain value, checked when made: it imports nothing of ``redis``, so a
client is configured (and its setting shown) without the extra installed.
The backend that uses it is :mod:`~emoji_async._shared`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs

from ._errors import ValidationError
from ._urls import is_redis_url, redis_origin
from ._validation import is_finite_number

__all__ = ["RedisPacing"]


def _seconds_at_least(least: float) -> Callable[[object, attrs.Attribute[float], object], None]:
    def check(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
        if not (is_finite_number(value) and value >= least):
            raise ValidationError(attribute.name, f"a number of seconds >= {least:g}", value)

    return check


def _optional_slots(
    instance: object, attribute: attrs.Attribute[int | None], value: object
) -> None:
    if value is not None and (type(value) is not int or value < 1):
        raise ValidationError(attribute.name, "None or an int >= 1", value)


def _flag(instance: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError(attribute.name, "True or False", value)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _key_part(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValidationError(
            attribute.name, "1 to 64 of A-Z a-z 0-9 _ . - (starting with a letter or digit)", value
        )


def _redis_url(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    allowed = "a redis://, rediss:// or unix:// URL"
    if not isinstance(value, str):
        raise ValidationError(attribute.name, allowed, type(value).__name__)
    if not is_redis_url(value):
        raise ValidationError(attribute.name, allowed, redis_origin(value))


@attrs.frozen
class RedisPacing:
    """Pacing shared through Redis by every process of one account.

    ``url`` names the Redis server (``redis://host:6379/0``; ``rediss://`` for
    TLS; a password in it is used, never shown). ``account`` is a name of your
    choosing, the same in every process of one DashScope account and different
    for another account: it namespaces the keys (``{prefix}:{account}:...``),
    so it must not be secret. The API key never goes to Redis.

    ``spread`` (seconds, real time) widens each rate window further, like
    :class:`RateLimits`' ``jitter``: requests of different processes or
    machines reach the service by different paths, and each process wakes
    for its turn on its own schedule (1.125 s between submits by default).
    ``lock_ttl``: seconds the submit lock outlives a holder that stopped
    answering (it is renewed every third of that while held). ``lease_ttl``:
    the same for each task counted in flight. ``max_in_flight``: the account's
    tasks in flight a batch keeps at most (``None``: a batch's default
    concurrency on one account). ``fallback``: if Redis cannot be reached
    when the client opens, pace in this process alone with a logged warning
    instead of raising :class:`SharedPacingError`. Needs the ``redis`` extra
    (``pip install 'emoji-async[redis]'``).
    """

    url: str = attrs.field(validator=_redis_url, repr=redis_origin)
    account: str = attrs.field(kw_only=True, validator=_key_part)
    prefix: str = attrs.field(default="emoji_async", kw_only=True, validator=_key_part)
    spread: float = attrs.field(default=0.02, kw_only=True, validator=_seconds_at_least(0))
    lock_ttl: float = attrs.field(default=10.0, kw_only=True, validator=_seconds_at_least(0.1))
    lease_ttl: float = attrs.field(default=60.0, kw_only=True, validator=_seconds_at_least(0.1))
    max_in_flight: int | None = attrs.field(default=None, kw_only=True, validator=_optional_slots)
    fallback: bool = attrs.field(default=False, kw_only=True, validator=_flag)
    connect_timeout: float = attrs.field(
        default=5.0, kw_only=True, validator=_seconds_at_least(0.01)
    )

    @property
    def namespace(self) -> str:
        """The prefix of every key this account's processes share."""
        return f"{self.prefix}:{self.account}"

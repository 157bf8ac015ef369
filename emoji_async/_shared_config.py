"""The setting of pacing shared through Redis: which server, which account, how long locks live.

A plain value, checked when made: it imports nothing of ``redis``, so a
client is configured (and its setting shown) without the extra installed.
The backend that uses it is :mod:`~emoji_async._shared`.
"""

from __future__ import annotations

import re

import attrs

from ._checks import Check, at_least, count, instance_of, matches, optional
from ._urls import is_redis_url, redis_origin

__all__ = ["RedisPacing"]


def _seconds_at_least(least: float) -> Check:
    return at_least(least, f"a number of seconds >= {least:g}")


def _shown_url(value: object) -> object:
    # Only the origin of a URL is shown, never a password in it; of anything
    # else only its type, which can hold nothing secret.
    return redis_origin(value) if isinstance(value, str) else type(value).__name__


_SLOTS_OR_NONE = optional(count(1), "None or an int >= 1")
_FLAG = instance_of(bool, "True or False")
_KEY_PART = matches(
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"),
    "1 to 64 of A-Z a-z 0-9 _ . - (starting with a letter or digit)",
)
_REDIS_URL = Check(
    "a redis://, rediss:// or unix:// URL",
    lambda value: isinstance(value, str) and is_redis_url(value),
    shown=_shown_url,
)


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

    url: str = attrs.field(validator=_REDIS_URL, repr=redis_origin)
    account: str = attrs.field(kw_only=True, validator=_KEY_PART)
    prefix: str = attrs.field(default="emoji_async", kw_only=True, validator=_KEY_PART)
    spread: float = attrs.field(default=0.02, kw_only=True, validator=_seconds_at_least(0))
    lock_ttl: float = attrs.field(default=10.0, kw_only=True, validator=_seconds_at_least(0.1))
    lease_ttl: float = attrs.field(default=60.0, kw_only=True, validator=_seconds_at_least(0.1))
    max_in_flight: int | None = attrs.field(default=None, kw_only=True, validator=_SLOTS_OR_NONE)
    fallback: bool = attrs.field(default=False, kw_only=True, validator=_FLAG)
    connect_timeout: float = attrs.field(
        default=5.0, kw_only=True, validator=_seconds_at_least(0.01)
    )

    @property
    def namespace(self) -> str:
        """The prefix of every key this account's processes share."""
        return f"{self.prefix}:{self.account}"

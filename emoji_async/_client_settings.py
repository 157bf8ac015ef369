"""An :class:`EmojiClient`'s settings: checked when it is made, and put on its clock.

The settings that nothing else checks (where pacing is kept, the clock, the
notifications) are checked before anything opens (:func:`check_settings`).
Every policy then runs on the client's clock (:func:`on_clock`: ``time_scale``
compresses it for tests against a faster simulator), and a call's hard
deadline is never shorter than the network needs (:func:`least_call_time`).
:class:`Settings` is what the client's lifetime reads of them.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from ._checks import instance_of, optional, positive
from ._limits import RateLimits
from ._notify_policy import NotifyPolicy
from ._policy import PollPolicy, RetryPolicy
from ._shared_config import RedisPacing
from ._transport import Timeouts

__all__ = [
    "LEAST_CALL_TIME",
    "Settings",
    "check_settings",
    "least_call_time",
    "on_clock",
]

_PACING = optional(
    instance_of(RedisPacing, "a RedisPacing"), "None (this process) or a RedisPacing"
)
_TIME_SCALE = positive("a factor > 0 (0.01: a clock 100 times as fast)")
_NOTIFY = optional(instance_of(NotifyPolicy, "a NotifyPolicy"), "None (off) or a NotifyPolicy")


def check_settings(pacing: object, time_scale: object, notifications: object = None) -> None:
    """The client's arguments that are checked when it is made, before anything opens."""
    _PACING.validate(pacing, field="pacing")
    _TIME_SCALE.validate(time_scale, field="time_scale")
    _NOTIFY.validate(notifications, field="notifications")


_Policy = TypeVar("_Policy", PollPolicy, RetryPolicy, RateLimits, NotifyPolicy)


def on_clock(policy: _Policy, time_scale: float) -> _Policy:
    """``policy`` on a clock ``1 / time_scale`` times as fast as the service's."""
    return policy if time_scale == 1 else policy.scaled(time_scale)


#: On a compressed clock, the least time a call is given before its hard deadline, in
#: real seconds: requests and answers take as long as on the real one.
LEAST_CALL_TIME = 10.0


def least_call_time(retry: RetryPolicy, time_scale: float) -> float:
    """The shortest hard deadline of a call: none on the service's own clock.

    On a faster clock a call's retries stop on that clock, but it is never cut
    off sooner than :data:`LEAST_CALL_TIME` real seconds (or its own deadline,
    if that is shorter): a detection the simulator decodes an image for can
    take longer than 120 s x 0.002.
    """
    return 0.0 if time_scale >= 1 else min(retry.deadline, LEAST_CALL_TIME)


class Settings(Protocol):
    """The client's settings its lifetime reads: the policies as given, and its clock."""

    @property
    def poll(self) -> PollPolicy: ...

    @property
    def timeouts(self) -> Timeouts: ...

    @property
    def retry(self) -> RetryPolicy: ...

    @property
    def limits(self) -> RateLimits | None: ...

    @property
    def pacing(self) -> RedisPacing | None: ...

    @property
    def notifications(self) -> NotifyPolicy | None: ...

    @property
    def time_scale(self) -> float: ...

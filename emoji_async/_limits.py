"""The account's limits: the value that holds them, and the spacing they ask for.

The provider allows, per account: 1 detection/s, 1 submit/s, 20 task queries/s
(queries, lists and cancels; counted together here, which keeps under the
limit whether the provider counts them together or apart), and runs **one
task at a time**, queueing the others as PENDING.

:class:`RateLimits` holds those numbers and the safety kept below them;
:meth:`RateLimits.interval` is the spacing of request starts it asks for, and
:func:`group_of` the endpoint group a request counts in. How a client keeps to
them is :mod:`~emoji_async._pacing`'s.
"""

from __future__ import annotations

import attrs

from ._errors import ValidationError
from ._validation import is_finite_number
from ._values import Endpoint

__all__ = ["RateLimits", "group_of"]


def _positive(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    if not (is_finite_number(value) and value > 0):
        raise ValidationError(attribute.name, "a finite number > 0", value)


def _slots(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 1:
        raise ValidationError(attribute.name, "an int >= 1", value)


def _margin(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    if not (is_finite_number(value) and 0 <= value <= 1):
        raise ValidationError(attribute.name, "a number from 0 to 1", value)


@attrs.frozen(kw_only=True)
class RateLimits:
    """The account's limits (requests per second, counted over ``window`` seconds).

    ``margin`` (a fraction of the window) and ``jitter`` (seconds, never
    scaled) are the safety kept below each limit. ``max_hold`` (seconds) is
    the longest a 429's ``Retry-After`` holds back later requests of its
    group: the provider says throttling usually clears within a minute.
    """

    detect_per_second: float = attrs.field(default=1.0, validator=_positive)
    submit_per_second: float = attrs.field(default=1.0, validator=_positive)
    query_per_second: float = attrs.field(default=20.0, validator=_positive)
    upload_policy_per_second: float = attrs.field(default=100.0, validator=_positive)
    running_tasks: int = attrs.field(default=1, validator=_slots)
    window: float = attrs.field(default=1.0, validator=_positive)
    margin: float = attrs.field(default=0.1, validator=_margin)
    jitter: float = attrs.field(default=0.005, validator=_margin)
    max_hold: float = attrs.field(default=60.0, validator=_positive)

    def scaled(self, factor: float) -> RateLimits:
        """The same limits on a clock ``1 / factor`` times faster (a compressed simulator).

        ``jitter`` stays as it is: network delays do not compress.
        """
        return attrs.evolve(
            self,
            detect_per_second=self.detect_per_second / factor,
            submit_per_second=self.submit_per_second / factor,
            query_per_second=self.query_per_second / factor,
            upload_policy_per_second=self.upload_policy_per_second / factor,
            window=self.window * factor,
            max_hold=self.max_hold * factor,
        )

    def interval(self, endpoint: Endpoint) -> float:
        """Seconds between two request starts to ``endpoint``'s group."""
        rate = {
            Endpoint.DETECT: self.detect_per_second,
            Endpoint.SUBMIT: self.submit_per_second,
            Endpoint.UPLOAD_POLICY: self.upload_policy_per_second,
        }.get(endpoint, self.query_per_second)
        return (self.window * (1 + self.margin) + self.jitter) / (rate * self.window)


def group_of(endpoint: Endpoint) -> str:
    """The rate limit group of ``endpoint``: queries, lists and cancels count together."""
    if endpoint in (Endpoint.QUERY, Endpoint.LIST, Endpoint.CANCEL):
        return "query"
    return str(endpoint.value)

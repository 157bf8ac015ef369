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

from ._checks import count, in_range, positive
from ._values import Endpoint

__all__ = ["RateLimits", "group_of"]


_POSITIVE = positive()
_SLOTS = count(1)
_MARGIN = in_range(0, 1)


@attrs.frozen(kw_only=True)
class RateLimits:
    """The account's limits (requests per second, counted over ``window`` seconds).

    ``margin`` (a fraction of the window) and ``jitter`` (seconds, never
    scaled) are the safety kept below each limit. ``max_hold`` (seconds) is
    the longest a 429's ``Retry-After`` holds back later requests of its
    group: the provider says throttling usually clears within a minute.
    """

    detect_per_second: float = attrs.field(default=1.0, validator=_POSITIVE)
    submit_per_second: float = attrs.field(default=1.0, validator=_POSITIVE)
    query_per_second: float = attrs.field(default=20.0, validator=_POSITIVE)
    upload_policy_per_second: float = attrs.field(default=100.0, validator=_POSITIVE)
    running_tasks: int = attrs.field(default=1, validator=_SLOTS)
    window: float = attrs.field(default=1.0, validator=_POSITIVE)
    margin: float = attrs.field(default=0.1, validator=_MARGIN)
    jitter: float = attrs.field(default=0.005, validator=_MARGIN)
    max_hold: float = attrs.field(default=60.0, validator=_POSITIVE)

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

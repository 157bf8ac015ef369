"""The account's limits, and how the client keeps under them.

The provider allows, per account: 1 detection/s, 1 submit/s, 20 task queries/s
(queries, lists and cancels; counted together here, which keeps under the
limit whether the provider counts them together or apart), and runs **one
task at a time**, queueing the others as PENDING.

Two mechanisms, both client-wide (shared by every task of one client):

* :class:`Pacer`, one per endpoint group, spaces the *starts* of requests
  ``(window * (1 + margin) + jitter) / (rate * window)`` seconds apart (1.105 s
  for 1/s): the relative margin and the absolute ``jitter`` absorb the
  difference in delay between two requests on their way there. The jitter is
  real time: it does not shrink on a compressed clock, where it matters most.
  A 429 on any request of the group pushes every later request of the group
  back by the ``Retry-After`` the service asked for (one rate window when it
  did not say), so a throttled account slows down as a whole instead of each
  task retrying on its own.
* :class:`TaskBoard` knows the client's own live tasks in submission order.
  A task queued behind others of ours cannot start before they end, so its
  watcher sleeps until one of them ends instead of polling a queue where
  only the head can move.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time

import attrs

from ._adaptive import DurationModel
from ._errors import ValidationError
from ._policy import is_finite_number
from ._transport import Endpoint

__all__ = ["Pacer", "Pacing", "RateLimits", "TaskBoard"]


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
    scaled) are the safety kept below each limit.
    """

    detect_per_second: float = attrs.field(default=1.0, validator=_positive)
    submit_per_second: float = attrs.field(default=1.0, validator=_positive)
    query_per_second: float = attrs.field(default=20.0, validator=_positive)
    upload_policy_per_second: float = attrs.field(default=100.0, validator=_positive)
    running_tasks: int = attrs.field(default=1, validator=_slots)
    window: float = attrs.field(default=1.0, validator=_positive)
    margin: float = attrs.field(default=0.1, validator=_margin)
    jitter: float = attrs.field(default=0.005, validator=_margin)

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
        )

    def interval(self, endpoint: Endpoint) -> float:
        """Seconds between two request starts to ``endpoint``'s group."""
        rate = {
            Endpoint.DETECT: self.detect_per_second,
            Endpoint.SUBMIT: self.submit_per_second,
            Endpoint.UPLOAD_POLICY: self.upload_policy_per_second,
        }.get(endpoint, self.query_per_second)
        return (self.window * (1 + self.margin) + self.jitter) / (rate * self.window)


class Pacer:
    """Spaces request starts ``interval`` apart; a 429 holds back every later request."""

    def __init__(self, interval: float, window: float) -> None:
        self.interval = interval
        self.window = window
        self._next = 0.0
        self._held_until = 0.0

    async def acquire(self) -> None:
        """Wait for this caller's turn. Turns are taken in arrival order."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            start = max(now, self._next, self._held_until)
            self._next = start + self.interval
            if start <= now:
                return
            await asyncio.sleep(start - now)
            if self._held_until <= loop.time():
                return
            # A 429 arrived while this caller slept: its turn is void, take a new one.

    def hold(self, seconds: float | None) -> float:
        """After a 429: no request of the group starts for ``seconds`` (default one window)."""
        wait = self.window if seconds is None or seconds <= 0 else seconds
        self._held_until = max(self._held_until, asyncio.get_running_loop().time() + wait)
        return wait


class TaskBoard:
    """The client's live, watched tasks in submission order.

    Kept as a sorted list, so counting the tasks ahead of one is a binary
    search: ten thousand tasks in flight cost no more per poll than ten.
    """

    def __init__(self) -> None:
        # (submission time in epoch seconds, registration number): ties keep arrival order.
        self._keys: dict[str, tuple[float, int]] = {}
        self._sorted: list[tuple[float, int]] = []
        self._seq = itertools.count()
        self._ended = asyncio.Event()
        self.last_end: float | None = None

    def watch(self, task_id: str, submitted: float | None) -> None:
        """Follow ``task_id``, ordered by ``submitted`` (epoch seconds; now if unknown)."""
        if task_id not in self._keys:
            key = (submitted or time.time(), next(self._seq))
            self._keys[task_id] = key
            bisect.insort(self._sorted, key)

    def release(self, task_id: str, ended: float | None = None) -> None:
        """The task ended (at ``ended``, epoch seconds, if known) or nobody follows it any more.

        The tasks behind it move up; the latest end seen is kept in ``last_end``,
        which is when the next queued task started on a one-slot account.
        """
        if ended is not None and (self.last_end is None or ended > self.last_end):
            self.last_end = ended
        key = self._keys.pop(task_id, None)
        if key is not None:
            del self._sorted[bisect.bisect_left(self._sorted, key)]
            self._ended.set()
            self._ended = asyncio.Event()

    def ahead(self, task_id: str) -> int:
        """How many of the client's live tasks were submitted before ``task_id``."""
        key = self._keys.get(task_id)
        return 0 if key is None else bisect.bisect_left(self._sorted, key)

    async def next_release(self) -> None:
        """Return when any followed task ends or is let go."""
        await self._ended.wait()


class Pacing:
    """What one client knows of its account: pacers, its task board, and learned run times."""

    def __init__(self, limits: RateLimits | None) -> None:
        self.limits = limits
        self.board = TaskBoard()
        self.durations = DurationModel()
        self._pacers: dict[Endpoint, Pacer] = {}
        if limits is not None:
            query = Pacer(limits.interval(Endpoint.QUERY), limits.window)
            for endpoint in Endpoint:
                self._pacers[endpoint] = (
                    query
                    if endpoint in (Endpoint.QUERY, Endpoint.LIST, Endpoint.CANCEL)
                    else Pacer(limits.interval(endpoint), limits.window)
                )

    async def acquire(self, endpoint: Endpoint) -> None:
        """Wait until a request to ``endpoint`` may start."""
        pacer = self._pacers.get(endpoint)
        if pacer is not None:
            await pacer.acquire()

    def hold(self, endpoint: Endpoint, seconds: float | None) -> float | None:
        """Hold back ``endpoint``'s group after a 429; the wait imposed, or ``None`` if unpaced."""
        pacer = self._pacers.get(endpoint)
        return None if pacer is None else pacer.hold(seconds)

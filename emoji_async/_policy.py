"""How long to wait between polls and between retries: the only user of ``backoff``.

Both policies share one formula. The n-th wait (n = 0, 1, 2, ...) is::

    wait(n) = min(wait_max, wait_first * wait_factor ** n)
              * uniform(1 - wait_jitter, 1 + wait_jitter)

and a retry never waits less than the ``Retry-After`` the service asked for;
a wait asked for that would end past the call's deadline ends the retries at
once instead (the call fails with that error, ``retry_after`` on it).

Why the poll defaults are what they are (docs/wire.md, "Tasks"):

* ``wait_first=5`` s: a task takes 1 to 5 minutes to run, so the first
  seconds after a submit never hold a result; 5 s still catches a task that
  fails validation at once.
* ``wait_factor=1.5``: reaches the cap in three steps (5, 7.5, 11.25, 15),
  about 24 s after the submit.
* ``wait_max=15`` s: the interval the provider suggests. A result shows up
  at most ~15 s late (5 % to 25 % of a task's run time) for about
  ``3 + (T - 24) / 15`` polls over a task of T seconds: 6 for 60 s, 21 for 300 s.
* ``wait_jitter=0.1``: many tasks submitted together drift apart instead
  of polling in lockstep against a 20 queries/s limit.
* ``deadline=3 h 5 min``: the provider fails any task itself after 3 h, so
  a wait that outlives that can only be waiting on a lost answer. Pass a
  shorter ``timeout`` to ``Task.wait()`` where a caller cannot wait that long.

A compressed simulator (``time_scale``) is matched with :meth:`PollPolicy.scaled`
and :meth:`RetryPolicy.scaled`, so a fast test makes the same decisions as a
real run.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Generator, Iterator
from typing import Any, ParamSpec, Self, TypeVar

import attrs
import backoff

from ._checks import (
    Check,
    at_least,
    in_range,
    is_finite_number,
    member_of,
    optional,
    positive,
)

__all__ = [
    "PollPolicy",
    "PollSchedule",
    "RetryPolicy",
    "retries_end_at",
    "retrying",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

log = logging.getLogger("emoji_async")


_POSITIVE = positive()
_POSITIVE_OR_NONE = optional(_POSITIVE)
_NON_NEGATIVE = at_least(0)
_GROWTH = at_least(1)
_FRACTION = in_range(0, 1, high_open=True)


def _waits(first: float, factor: float, cap: float, jitter: float) -> Iterator[float]:
    """The formula of the module docstring, driven by ``backoff.expo``."""
    expo = backoff.expo(base=factor, factor=first, max_value=cap)
    next(expo)  # backoff's generators start with a bare yield
    for base in expo:
        yield base * random.uniform(1 - jitter, 1 + jitter)


class _Scalable:
    wait_first: float
    wait_max: float
    deadline: float

    def scaled(self, factor: float) -> Self:
        """The same policy with every duration multiplied by ``factor`` (not the growth)."""
        return attrs.evolve(
            self,  # type: ignore[misc]  # every subclass is an attrs class
            wait_first=self.wait_first * factor,
            wait_max=self.wait_max * factor,
            deadline=self.deadline * factor,
        )


class PollSchedule(enum.Enum):
    """How polls are placed (see :mod:`emoji_async._adaptive` for the two that learn)."""

    #: The exponential waits of the formula above; knows nothing of the task.
    BACKOFF = "backoff"
    #: No poll before a task can plausibly be done, then one within ``lag`` of its
    #: running time: learned per template from the tasks the client saw succeed.
    ADAPTIVE = "adaptive"
    #: One poll when a task is surely done: in a batch, lag costs no throughput.
    BATCH = "batch"


def _is_run_time(value: object) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and is_finite_number(value[0])
        and is_finite_number(value[1])
        and 0 < value[0] < value[1]
    )


_RUN_TIME = Check("a pair (lo, hi) of finite seconds with 0 < lo < hi", _is_run_time)
_SCHEDULE = member_of(PollSchedule)


@attrs.frozen(kw_only=True)
class PollPolicy(_Scalable):
    """When to poll a task, under one deadline (seconds).

    ``schedule`` picks the placement: the exponential ``wait_*`` series
    (``BACKOFF``, the default), or a learned one (``ADAPTIVE``, ``BATCH``).
    The learned ones start from ``run_time``, the provider's documented range
    of run times, and aim for a detection lag of at most ``lag`` times a
    task's running time; past every plausible end they poll every ``wait_max``.
    """

    wait_first: float = attrs.field(default=5.0, validator=_POSITIVE)
    wait_factor: float = attrs.field(default=1.5, validator=_GROWTH)
    wait_max: float = attrs.field(default=15.0, validator=_POSITIVE)
    wait_jitter: float = attrs.field(default=0.1, validator=_FRACTION)
    deadline: float = attrs.field(default=3 * 3600.0 + 300.0, validator=_POSITIVE)
    schedule: PollSchedule = attrs.field(default=PollSchedule.BACKOFF, validator=_SCHEDULE)
    lag: float = attrs.field(default=0.05, validator=_POSITIVE)
    run_time: tuple[float, float] = attrs.field(default=(60.0, 300.0), validator=_RUN_TIME)

    def adaptive(self, *, lag: float | None = None) -> PollPolicy:
        """This policy, placing polls by learned run times (``lag``: 5 % by default)."""
        return attrs.evolve(
            self, schedule=PollSchedule.ADAPTIVE, lag=self.lag if lag is None else lag
        )

    def scaled(self, factor: float) -> PollPolicy:
        """The same policy with every duration multiplied by ``factor`` (not the growth)."""
        lo, hi = self.run_time
        return attrs.evolve(super().scaled(factor), run_time=(lo * factor, hi * factor))

    def for_batches(self) -> PollPolicy:
        """The policy a batch polls with: ``BATCH`` placement, waits 3x (first) and 4x (cap).

        In a batch the provider starts the next queued task by itself the
        moment one ends, so noticing the end later costs no throughput as long
        as enough tasks wait behind it (the batch's default concurrency sees to
        that). A task is polled once, when it is surely done; one that runs
        longer than every task seen before is polled every ``4 * wait_max``.
        Pass ``poll=`` to ``generate_many`` for another schedule.
        """
        return attrs.evolve(
            self,
            schedule=PollSchedule.BATCH,
            wait_first=self.wait_first * 3,
            wait_max=self.wait_max * 4,
        )

    def waits(self) -> Iterator[float]:
        """The waits between polls, one per poll, forever."""
        return _waits(self.wait_first, self.wait_factor, self.wait_max, self.wait_jitter)


@attrs.frozen(kw_only=True)
class RetryPolicy(_Scalable):
    """When to retry one request after a transient failure (429, 5xx, a lost answer).

    ``deadline`` bounds the retries of one call made on its own (a detect, a
    ``refresh()``); inside ``Task.wait()`` the wait's own deadline governs.

    ``reconcile_window``: after a submit whose answer was lost, how long (from
    the attempt) the client watches the task list for the task it may have
    created before taking its absence as proof that none was, and sending the
    submit again (see :mod:`emoji_async._reconcile`). ``None`` turns that off:
    such a submit raises :class:`SubmissionUncertainError` at once.

    ``orphan_sweep``: while a submit sent again after a lost answer (a *ghost*)
    may still be processed late, the task list is read this often, so that a
    task it makes is cancelled while it is still PENDING (``None``: never).
    ``orphan_linger``: a batch goes on watching for such tasks until its
    youngest ghost is this old before it returns (a task processed later than
    that after its submit is no longer caught by the batch).
    """

    wait_first: float = attrs.field(default=1.0, validator=_POSITIVE)
    wait_factor: float = attrs.field(default=2.0, validator=_GROWTH)
    wait_max: float = attrs.field(default=30.0, validator=_POSITIVE)
    wait_jitter: float = attrs.field(default=0.5, validator=_FRACTION)
    deadline: float = attrs.field(default=120.0, validator=_POSITIVE)
    reconcile_window: float | None = attrs.field(default=120.0, validator=_POSITIVE_OR_NONE)
    orphan_sweep: float | None = attrs.field(default=10.0, validator=_POSITIVE_OR_NONE)
    orphan_linger: float = attrs.field(default=300.0, validator=_NON_NEGATIVE)

    def scaled(self, factor: float) -> Self:
        """The same policy with every duration multiplied by ``factor`` (not the growth)."""
        window, sweep = self.reconcile_window, self.orphan_sweep
        return attrs.evolve(
            super().scaled(factor),
            reconcile_window=None if window is None else window * factor,
            orphan_sweep=None if sweep is None else sweep * factor,
            orphan_linger=self.orphan_linger * factor,
        )


def _retry_waits(policy: RetryPolicy) -> Generator[float, Any, None]:
    # backoff sends each caught exception into the wait generator; a
    # ``retry_after`` on it (seconds the service asked for) is a floor.
    waits = _waits(policy.wait_first, policy.wait_factor, policy.wait_max, policy.wait_jitter)
    exc = yield 0.0
    for wait in waits:
        asked = getattr(exc, "retry_after", None)
        if isinstance(asked, int | float) and asked > 0:
            wait = max(wait, asked)
        exc = yield wait


def retrying(
    policy: RetryPolicy,
    *,
    retry_on: Callable[[Exception], bool],
    deadline: float | None,
    on_retry: Callable[[Exception, float, int, tuple[Any, ...]], None] | None = None,
) -> Callable[[Callable[_P, Awaitable[_R]]], Callable[_P, Awaitable[_R]]]:
    """A decorator that retries an async call while ``retry_on(exc)`` holds.

    Built per client (each keeps its own policy), once per rule, not per call:
    the decorated function takes what varies as arguments, and ``on_retry``
    receives them with the error, the wait and the attempt number.
    ``deadline`` (seconds, soft: callers that need a hard bound wrap the call
    in ``asyncio.timeout``) ends the retries; ``None`` leaves that to the
    caller. A failure whose ``retry_after`` ends past it ends them at once.
    The last exception is re-raised when retrying stops.
    """

    def backoff_hook(details: Any) -> None:
        exc = details["exception"]
        log.info(
            "retrying in %.2f s after %s (attempt %d)",
            details["wait"],
            type(exc).__name__,
            details["tries"],
        )
        if on_retry is not None:
            on_retry(exc, details["wait"], details["tries"], details["args"])

    def giveup(exc: Exception) -> bool:
        if not retry_on(exc):
            return True
        # A wait the service asked for that ends past the deadline: no retry can be in time.
        asked = getattr(exc, "retry_after", None)
        ends = _ends_at.get()
        return (
            ends is not None
            and is_finite_number(asked)
            and asyncio.get_running_loop().time() + asked > ends
        )

    retry: Callable[[Callable[_P, Awaitable[_R]]], Callable[_P, Awaitable[_R]]]
    retry = backoff.on_exception(
        _retry_waits,
        Exception,
        max_time=deadline,
        giveup=giveup,
        jitter=None,
        on_backoff=backoff_hook,
        logger=None,
        policy=policy,
    )

    def decorator(call: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]:
        retried = retry(call)
        if deadline is None:
            return retried

        @functools.wraps(call)
        async def bounded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            token = _ends_at.set(asyncio.get_running_loop().time() + deadline)
            try:
                return await retried(*args, **kwargs)
            finally:
                _ends_at.reset(token)

        return bounded

    return decorator


#: When the retries of the call running in this context end (loop time), if they do.
_ends_at: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "emoji_async_retries_end_at", default=None
)


@contextlib.contextmanager
def retries_end_at(when: float) -> Iterator[None]:
    """Within the block, retries with no deadline of their own end at ``when`` (loop time).

    For a caller that bounds them itself (``Task.wait``): a failure whose
    ``retry_after`` ends past ``when`` is raised at once, not slept on.
    """
    token = _ends_at.set(when)
    try:
        yield
    finally:
        _ends_at.reset(token)

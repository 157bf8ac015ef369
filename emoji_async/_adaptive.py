"""What the client learns about run times, and when it polls a task because of it.

Polling trades requests for detection lag, and the only way to need fewer
requests at the same lag is to know more. A task's snapshot says when it
started running (``scheduled_time``), and every task that succeeds says how
long it ran (``end_time - scheduled_time``). :class:`DurationModel` keeps
those run times, per template, so the client knows when a task can plausibly
be done, and :func:`next_poll` places the polls:

* ``ADAPTIVE`` (a caller waiting for one result): each poll within ``lag``
  (5 %) of the time the task has been running, so a result is seen at most
  5 % of its run time late. A task that ends at ``d >= lo`` is seen in time by
  a poll at ``(1 + lag) * lo``, so that is the first once ``lo`` is learned
  (before, a poll at ``lo`` itself); then each poll follows the previous one
  by the factor ``1 + lag``. That is the fewest polls any
  schedule can make for that bound: a geometric series of ratio ``1 + lag``.
* ``BATCH``: one poll at the latest plausible end ``hi``. In a batch the
  provider starts the next queued task by itself, so a result seen late costs
  no throughput as long as enough tasks wait in the queue (see
  :func:`batch_concurrency`). That bet is made only on a range the client has
  seen: until it has learned a few run times, a batch polls from the earliest
  plausible end, each poll within 25 % of the running time, so a workload
  shorter than the documented range still keeps the queue fed.

Until it has seen enough tasks, the model answers with the provider's
documented range (1 to 5 minutes), scaled like every other policy time.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["DurationModel", "batch_concurrency", "next_poll"]

#: Run times kept per template, and overall: enough for a stable range, bounded memory.
_KEEP = 200
#: Samples before the overall range replaces the documented one.
_MIN_OVERALL = 5
#: Template samples with a sibling (two or more of one template) before the
#: spread between runs of one template is trusted.
_MIN_SPREAD = 8
#: Widening of every learned range: a range seen is not quite the range there is.
_SLACK = 0.03


class DurationModel:
    """Run times of the tasks this client saw succeed, in seconds, per template."""

    def __init__(self) -> None:
        self._by_template: dict[str, deque[float]] = {}
        self._overall: deque[float] = deque(maxlen=_KEEP)
        self._spread_cache: float | None = None
        self._spread_stale = False

    def observe(self, template: str | None, seconds: float) -> None:
        """Record one succeeded task's run time (end minus start, on the service's clock)."""
        if not seconds > 0 or math.isinf(seconds):
            return
        self._overall.append(seconds)
        if template is not None:
            self._by_template.setdefault(template, deque(maxlen=_KEEP)).append(seconds)
            self._spread_stale = True

    @property
    def observed(self) -> int:
        """How many run times the model holds (overall, bounded)."""
        return len(self._overall)

    @property
    def learned(self) -> bool:
        """Whether the ranges come from runs seen, rather than from the documented one."""
        return len(self._overall) >= _MIN_OVERALL

    def _spread(self) -> float | None:
        """How far apart two runs of one template can be: the largest ratio seen."""
        if self._spread_stale:
            self._spread_cache = self._measure_spread()
            self._spread_stale = False
        return self._spread_cache

    def _measure_spread(self) -> float | None:
        siblings = [samples for samples in self._by_template.values() if len(samples) >= 2]
        if sum(len(samples) for samples in siblings) < _MIN_SPREAD:
            return None
        return max(max(samples) / min(samples) for samples in siblings)

    def bounds(self, template: str | None, prior: tuple[float, float]) -> tuple[float, float]:
        """``(lo, hi)``: the earliest and latest a task of ``template`` plausibly ends.

        A template's own runs, with the spread its siblings show, give the
        narrowest range; then every run seen; then ``prior``. A range is never
        wider than the overall one it would replace.

        If any two runs of one template are at most a ratio ``R`` apart, the
        next run of a template lies within ``R`` of *every* earlier run of it:
        above ``longest / R`` and below ``shortest * R``. One run seen leaves a
        range of ``R**2``; as runs accumulate, the range closes in on the
        template's own spread ``R``.
        """
        overall: tuple[float, float] | None = None
        if len(self._overall) >= _MIN_OVERALL:
            overall = (min(self._overall) * (1 - _SLACK), max(self._overall) * (1 + _SLACK))
        own = self._by_template.get(template) if template is not None else None
        spread = self._spread()
        if own and spread is not None:
            reach = spread * (1 + _SLACK)
            lo, hi = max(own) / reach, min(own) * reach
            if overall is not None:
                lo, hi = max(lo, overall[0]), min(hi, overall[1])
            if lo < hi:
                return lo, hi
        return overall if overall is not None else prior


#: A batch's lag, as a fraction of running time, while its ranges are not yet learned.
COLD_BATCH_LAG = 0.25


def next_poll(
    elapsed: float,
    lo: float,
    hi: float,
    *,
    batch: bool,
    learned: bool,
    lag: float,
    cap: float,
) -> float:
    """Seconds from now until the next poll of a task that has run ``elapsed`` seconds.

    ``lo``/``hi`` bound the plausible run time (``learned``: from runs seen);
    ``cap`` is the longest wait once a task has outlived every plausible end (it
    may be slow, or stuck: the provider fails a task itself after 3 h).
    """
    within = COLD_BATCH_LAG if batch else lag
    if batch and learned:
        target = hi if elapsed < hi else elapsed + cap
    elif elapsed < lo:
        # A learned ``lo`` is an end seen: none comes before it, and an end between
        # it and this poll is seen in time. The documented range is only a prior.
        target = lo * (1 + within) if learned else lo
    else:
        target = elapsed + min(elapsed * within, cap)
    return max(0.0, target - elapsed)


def batch_concurrency(running_tasks: int, lo: float, hi: float) -> int:
    """Jobs in flight for a batch that polls each task once, at its latest plausible end.

    A task's end is then seen up to ``hi - lo`` late. The account's slot stays
    busy meanwhile only if that many seconds of work wait in the queue: at
    least ``(hi - lo) / lo`` tasks of the shortest length, plus one job
    preparing its submit.
    """
    queued = math.ceil((hi - lo) / lo) if lo > 0 else 1
    return running_tasks + max(1, queued) + 1

"""Where a task's polls go: one strategy object per :class:`PollSchedule`, built from the policy.

A :class:`PollPolicy`'s ``schedule`` says which of its other fields mean
anything; :func:`placement_for` turns the policy into the strategy that uses
them, so a watcher and a batch ask the strategy instead of asking which
schedule they have:

* :class:`Backoff` places polls on the exponential ``wait_*`` series and
  knows nothing of the task; a task woken because the one ahead of it ended
  is looked at at once.
* :class:`Adaptive` places them by the run times learned per template
  (``run_time`` and ``lag``; :mod:`emoji_async._adaptive`), falling back on
  the series while the task's start is unknown.
* :class:`Batch` does the same, aiming for one poll when a task is surely
  done, and asks a batch for enough jobs in flight that noticing an end late
  costs no throughput (:func:`~emoji_async._adaptive.batch_concurrency`).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Iterator
from typing import ClassVar

import attrs

from ._adaptive import DurationModel, batch_concurrency, next_poll
from ._policy import PollPolicy, PollSchedule

__all__ = ["Adaptive", "Backoff", "Batch", "PollPlacement", "placement_for"]


@attrs.frozen
class PollPlacement(abc.ABC):
    """How one policy places the polls of a task, and what it asks of a batch."""

    policy: PollPolicy

    @abc.abstractmethod
    def next_wait(
        self,
        waits: Iterator[float],
        *,
        woken: bool,
        started: Callable[[], float | None],
        durations: DurationModel,
        template: str | None,
    ) -> float:
        """Seconds until the next poll.

        ``waits`` is the policy's series; ``woken`` says the task ahead of this
        one just ended; ``started()`` is when the task started running (epoch
        seconds), if known; ``durations`` the run times learned, by ``template``.
        """

    def concurrency(self, usual: int, slots: int, durations: DurationModel) -> int:
        """Jobs a batch keeps in flight by default; ``usual`` is the slots plus two."""
        return usual


@attrs.frozen
class Backoff(PollPlacement):
    """The exponential waits of the policy's series; knows nothing of the task."""

    def next_wait(
        self,
        waits: Iterator[float],
        *,
        woken: bool,
        started: Callable[[], float | None],
        durations: DurationModel,
        template: str | None,
    ) -> float:
        # Woken because the task ahead ended: this one has just started; look now.
        return 0.0 if woken else next(waits)


@attrs.frozen
class Adaptive(PollPlacement):
    """No poll before a task can plausibly be done, then one within ``lag`` of its running time."""

    #: Whether the placement bets on one poll at the latest plausible end.
    batch: ClassVar[bool] = False

    def next_wait(
        self,
        waits: Iterator[float],
        *,
        woken: bool,
        started: Callable[[], float | None],
        durations: DurationModel,
        template: str | None,
    ) -> float:
        start = started()
        if start is None:
            return next(waits)
        lo, hi = durations.bounds(template, self.policy.run_time)
        return next_poll(
            max(0.0, time.time() - start),
            lo,
            hi,
            batch=self.batch,
            learned=durations.learned,
            lag=self.policy.lag,
            cap=self.policy.wait_max,
        )


@attrs.frozen
class Batch(Adaptive):
    """One poll when a task is surely done: in a batch, lag costs no throughput."""

    batch: ClassVar[bool] = True

    def concurrency(self, usual: int, slots: int, durations: DurationModel) -> int:
        lo, hi = durations.bounds(None, self.policy.run_time)
        return batch_concurrency(slots, lo, hi)


_PLACEMENTS: dict[PollSchedule, type[PollPlacement]] = {
    PollSchedule.BACKOFF: Backoff,
    PollSchedule.ADAPTIVE: Adaptive,
    PollSchedule.BATCH: Batch,
}


def placement_for(policy: PollPolicy) -> PollPlacement:
    """The strategy ``policy``'s schedule names, built from the policy."""
    return _PLACEMENTS[policy.schedule](policy)

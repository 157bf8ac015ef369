"""What a batch spends: each job's share held against the budget, and each bill as it comes.

A job starts only if the most it can still cost fits what is left of the
budget; otherwise it is skipped (:class:`SkippedForBudget`), never failed.
What earlier runs of the batch spent, as their journal recorded it, counts
against the same budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._budget import Budget, Ledger, Reservation, Spending
from ._jobs import EmojiJob
from ._journal import JobState, JournalEntry
from ._reporting import report
from .events import Billed

__all__ = ["BatchSpending", "SkippedForBudget"]


class SkippedForBudget(Exception):  # not an EmojiError: the job was not started
    """A job the budget could not cover: reported as skipped, never as failed."""


def _spent_in(entries: Sequence[JournalEntry], bills: Mapping[str, int]) -> Spending:
    """What the jobs a journal recorded were billed, with the detections no entry counts."""
    return Spending(
        videos=sum(1 for e in entries if e.video is not None),
        video_seconds=sum(e.video_seconds for e in entries),
        detections=sum(e.detections for e in entries) + sum(bills.values()),
    )


def _may_cost(
    job: EmojiJob, entry: JournalEntry | None, *, seconds: int, detected: bool
) -> tuple[int, int, bool]:
    """What a job may still be billed: detections, video seconds, and whether it must go on.

    ``seconds``: what its template's video is reserved; ``detected``: its boxes
    are known from earlier in this run. A job whose task may already exist goes
    on whatever the budget says: the task bills all the same, so it is
    counted, not skipped.
    """
    state = None if entry is None else entry.state
    if state is JobState.SUCCEEDED:
        return 0, 0, True  # billed already; only its download is left
    if state in (JobState.SUBMITTED, JobState.SUBMITTING, JobState.UNCERTAIN):
        return 0, seconds, True
    boxed = (
        (job.face_bbox is not None and job.ext_bbox is not None)
        or state is JobState.DETECTED
        or detected
    )
    return (0 if boxed else 1), seconds, False


class BatchSpending:
    """The batch's :class:`Ledger`, and what each job in flight holds against it."""

    def __init__(self, budget: Budget | None) -> None:
        self._budget = budget
        self.ledger = Ledger(budget)
        #: What each job in flight still holds against the budget.
        self._held: dict[str, Reservation] = {}

    def restore(self, entries: Sequence[JournalEntry], bills: Mapping[str, int]) -> None:
        """Count what earlier runs were billed, as their journal recorded it.

        ``bills``: the detections billed that no entry counts, by job
        (:meth:`Journal.bills`): a detection whose answers were lost, then failed.
        """
        # What earlier runs spent counts against the same budget, and the
        # lengths their videos were billed are what those templates reserve.
        self.ledger = Ledger(
            self._budget,
            _spent_in(entries, bills),
            billed_before=[(e.driven_id, e.video_seconds) for e in entries if e.video],
        )

    def reserve(
        self, job: EmojiJob, key: str, entry: JournalEntry | None, *, detected: bool
    ) -> None:
        """Hold what the job may cost against the budget, or skip it."""
        detections, seconds, forced = _may_cost(
            job,
            entry,
            seconds=self.ledger.video_seconds_for(job.driven_id),
            detected=detected,
        )
        held = self.ledger.reserve(detections=detections, video_seconds=seconds, forced=forced)
        if held is None:
            raise SkippedForBudget(
                f"the budget's remainder cannot cover {detections} detection(s) and"
                f" {seconds} s of video (spent so far: {self.ledger.spent})"
            )
        self._held[key] = held

    def bill(
        self,
        key: str,
        *,
        detections: int = 0,
        video_seconds: int = 0,
        driven_id: str | None = None,
    ) -> None:
        """The job was billed: counted against what it holds, and told as :class:`Billed`."""
        held = self._held.get(key)
        if detections:
            self.ledger.detected(held, detections)
        if video_seconds:
            self.ledger.video(held, video_seconds, driven_id=driven_id)
        report(
            lambda key: Billed(
                key=key, detections=detections, video_seconds=video_seconds, spent=self.ledger.spent
            )
        )

    def release(self, key: str) -> None:
        """The job ended: what it still held is free for the others."""
        self.ledger.release(self._held.pop(key, None))

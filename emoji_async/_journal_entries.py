"""What the journal holds of a job: where it stands, its entry, and its paid attempts.

Plain values: the rules (:mod:`._journal_rules`) say how one entry leads to
the next, the store (:mod:`._journal_store`) keeps them on disk.
"""

from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path
from typing import Final

import attrs

from ._models import BBox, VideoResult

__all__ = ["JobState", "JournalAttempt", "JournalEntry"]


class JobState(enum.StrEnum):
    """Where a job stands, as the journal last recorded it."""

    DETECTED = "DETECTED"
    SUBMITTING = "SUBMITTING"
    SUBMITTED = "SUBMITTED"
    PREEMPTING = "PREEMPTING"
    UNCERTAIN = "UNCERTAIN"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"
    REJECTED = "REJECTED"
    DOWNLOADED = "DOWNLOADED"

    @property
    def is_finished(self) -> bool:
        """Whether the service has nothing more to do for the job.

        ``SUCCEEDED`` counts: its video may still be wanted on disk, and the
        runner, which knows whether a download was asked for, decides that.
        ``UNCERTAIN`` does not: it waits for someone to settle it.
        """
        return self in _FINISHED


_FINISHED: Final = frozenset(
    {
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.CANCELED,
        JobState.UNKNOWN,
        JobState.REJECTED,
        JobState.DOWNLOADED,
    }
)


@attrs.frozen(kw_only=True)
class JournalEntry:
    """One job as the journal last recorded it.

    Fields a step did not set keep their earlier value: ``intent_at`` (when the
    submit was about to be sent, UTC) stays on an UNCERTAIN job so its task can
    be looked for in the task list. ``code`` and ``message`` explain REJECTED,
    FAILED and other unhappy ends; on UNCERTAIN ``message`` is the reason.
    ``path`` and ``size`` are the saved video's, on DOWNLOADED. ``detections``
    is how many detections the job was billed (a rejection included); the
    video's billed seconds are ``video.video_duration``.
    """

    key: str
    state: JobState
    image: str
    driven_id: str
    face_bbox: BBox | None = None
    ext_bbox: BBox | None = None
    task_id: str | None = None
    intent_at: dt.datetime | None = None
    video: VideoResult | None = None
    code: str | None = None
    message: str | None = None
    path: Path | None = None
    size: int | None = None
    updated_at: dt.datetime
    detections: int = 0

    @property
    def video_seconds(self) -> int:
        """The video seconds the job was billed: its video's length once it succeeded."""
        return 0 if self.video is None else self.video.video_duration


@attrs.frozen(kw_only=True)
class JournalAttempt:
    """One paid attempt of a job, as the journal recorded it.

    ``state``: ``open`` (sent or about to be, its answer never recorded: the
    job settles it), ``ghost`` (its answer was lost and the job was sent again:
    it may still make a task, late), ``created`` (``task_id`` is its task) or
    ``none`` (it provably created nothing).
    """

    key: str
    sent_at: dt.datetime
    state: str
    task_id: str | None = None

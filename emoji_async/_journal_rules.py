"""The journal's rules: which step may follow which state, and what each step records.

Each call records one step of a job's life, and may follow only certain states::

    call          follows                  leads to
    detected      (new)                    DETECTED
    rejected      (new), DETECTED          REJECTED      the detector refused the portrait
    submitting    (new), DETECTED          SUBMITTING    the intent, on disk before the paid submit
    submitted     SUBMITTING, UNCERTAIN    SUBMITTED     from UNCERTAIN: the task was found later
    uncertain     SUBMITTING               UNCERTAIN     sent, but no usable answer came back
    resubmitting  UNCERTAIN                SUBMITTING    the task list proved no task came of it
    unsent        SUBMITTING, UNCERTAIN    DETECTED      the submit provably created nothing
    failed        SUBMITTING               FAILED        the submit was refused for certain
    preempting    SUBMITTED                PREEMPTING    before a cancel that moves it aside
    kept          PREEMPTING               SUBMITTED     the cancel came too late: the task runs
    moved_aside   PREEMPTING               DETECTED      the task was cancelled: submit it again
    finished      SUBMITTED, PREEMPTING    SUCCEEDED | FAILED | CANCELED | UNKNOWN
    downloaded    SUCCEEDED                DOWNLOADED

Any other step raises :class:`JournalError` and writes nothing, as does a step
whose inputs (image, template, boxes) differ from what the key already
recorded: a journal belongs to one batch definition.

Every function here is pure: given the key's entry before the step (``None``
for a new key) and the time of the step, it gives the entry after it, or
raises to refuse the step. The journal runs them on its own thread, one at a
time, and stores what they give; ``path`` only names the file in the error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

import attrs

from ._errors import JournalError, ValidationError
from ._journal_entries import JobState, JournalEntry
from ._models import BBox, TaskStatus, VideoResult

__all__ = [
    "Step",
    "check_text",
    "detected",
    "downloaded",
    "ended_state",
    "failed",
    "finished",
    "kept",
    "moved_aside",
    "preempting",
    "rejected",
    "resubmitting",
    "same_inputs",
    "submitted",
    "submitting",
    "uncertain",
    "unsent",
]

#: A step, run on the journal's thread: given the journal's file (to name in an
#: error), the key, its entry before the step (if any) and the time of the step,
#: the entry after it. It raises to refuse the step.
Step = Callable[[Path, str, JournalEntry | None, dt.datetime], JournalEntry]

#: Each step, and the states it may follow (``None``: the key is new).
_FOLLOWS: Final[Mapping[str, frozenset[JobState | None]]] = {
    "detected": frozenset({None}),
    "rejected": frozenset({None, JobState.DETECTED}),
    "submitting": frozenset({None, JobState.DETECTED}),
    "submitted": frozenset({JobState.SUBMITTING, JobState.UNCERTAIN}),
    "uncertain": frozenset({JobState.SUBMITTING}),
    "resubmitting": frozenset({JobState.UNCERTAIN}),
    "unsent": frozenset({JobState.SUBMITTING, JobState.UNCERTAIN}),
    "failed": frozenset({JobState.SUBMITTING}),
    "preempting": frozenset({JobState.SUBMITTED}),
    "kept": frozenset({JobState.PREEMPTING}),
    "moved_aside": frozenset({JobState.PREEMPTING}),
    "finished": frozenset({JobState.SUBMITTED, JobState.PREEMPTING}),
    "downloaded": frozenset({JobState.SUCCEEDED}),
}

_ENDED: Final[Mapping[TaskStatus, JobState]] = {
    TaskStatus.SUCCEEDED: JobState.SUCCEEDED,
    TaskStatus.FAILED: JobState.FAILED,
    TaskStatus.CANCELED: JobState.CANCELED,
    TaskStatus.UNKNOWN: JobState.UNKNOWN,
}


def ended_state(status: TaskStatus, video: VideoResult | None) -> JobState:
    """The state a task's end leads to; :class:`ValidationError` for a status that is no end.

    ``video`` must be given exactly when the task SUCCEEDED.
    """
    state = _ENDED.get(status)
    if state is None:
        raise ValidationError("status", "SUCCEEDED, FAILED, CANCELED or UNKNOWN", status)
    if (video is None) == (state is JobState.SUCCEEDED):
        raise ValidationError("video", "a VideoResult exactly when status is SUCCEEDED", video)
    return state


def detected(
    path: Path,
    key: str,
    before: JournalEntry | None,
    now: dt.datetime,
    *,
    image: str,
    driven_id: str,
    face: BBox,
    ext: BBox,
    billed: int,
) -> JournalEntry:
    """The face was found: these are the boxes to submit with (``billed`` detections)."""
    _check(path, key, before, "detected", image=image, driven_id=driven_id)
    return JournalEntry(
        key=key,
        state=JobState.DETECTED,
        image=image,
        driven_id=driven_id,
        face_bbox=face,
        ext_bbox=ext,
        updated_at=now,
        detections=billed,
    )


def rejected(
    path: Path,
    key: str,
    before: JournalEntry | None,
    now: dt.datetime,
    *,
    image: str,
    driven_id: str,
    code: str,
    message: str,
    billed: int,
) -> JournalEntry:
    """The detector refused the portrait: billed all the same, and the job is over."""
    _check(path, key, before, "rejected", image=image, driven_id=driven_id)
    return JournalEntry(
        key=key,
        state=JobState.REJECTED,
        image=image,
        driven_id=driven_id,
        face_bbox=None if before is None else before.face_bbox,
        ext_bbox=None if before is None else before.ext_bbox,
        code=code,
        message=message,
        detections=(0 if before is None else before.detections) + billed,
        updated_at=now,
    )


def submitting(
    path: Path,
    key: str,
    before: JournalEntry | None,
    now: dt.datetime,
    *,
    image: str,
    driven_id: str,
    face: BBox,
    ext: BBox,
) -> JournalEntry:
    """The paid submit is about to be sent, with the boxes the job was detected with."""
    _check(path, key, before, "submitting", image=image, driven_id=driven_id)
    if before is not None and (before.face_bbox, before.ext_bbox) != (face, ext):
        raise JournalError(
            f"job {key!r} was detected with face_bbox={before.face_bbox} and"
            f" ext_bbox={before.ext_bbox}, not face_bbox={face} and ext_bbox={ext}",
            path=path,
            key=key,
        )
    return JournalEntry(
        key=key,
        state=JobState.SUBMITTING,
        image=image,
        driven_id=driven_id,
        face_bbox=face,
        ext_bbox=ext,
        intent_at=now,
        updated_at=now,
        detections=0 if before is None else before.detections,
    )


def submitted(
    path: Path, key: str, before: JournalEntry | None, now: dt.datetime, *, task_id: str
) -> JournalEntry:
    """The service accepted the submit and named the task."""
    entry = _follow(path, key, before, "submitted")
    return attrs.evolve(
        entry,
        state=JobState.SUBMITTED,
        task_id=task_id,
        code=None,
        message=None,
        updated_at=now,
    )


def uncertain(
    path: Path, key: str, before: JournalEntry | None, now: dt.datetime, *, reason: str
) -> JournalEntry:
    """The submit may have created a task whose id never came back."""
    entry = _follow(path, key, before, "uncertain")
    return attrs.evolve(entry, state=JobState.UNCERTAIN, message=reason, updated_at=now)


def resubmitting(
    path: Path, key: str, before: JournalEntry | None, now: dt.datetime, *, reason: str
) -> JournalEntry:
    """The uncertain submit provably created nothing: ``intent_at`` becomes the new attempt's."""
    entry = _follow(path, key, before, "resubmitting")
    return attrs.evolve(
        entry, state=JobState.SUBMITTING, intent_at=now, message=reason, updated_at=now
    )


def unsent(
    path: Path, key: str, before: JournalEntry | None, now: dt.datetime, *, reason: str
) -> JournalEntry:
    """The submit gave no task: the intent is withdrawn, back to DETECTED with its boxes."""
    entry = _follow(path, key, before, "unsent")
    return attrs.evolve(
        entry, state=JobState.DETECTED, intent_at=None, message=reason, updated_at=now
    )


def failed(
    path: Path,
    key: str,
    before: JournalEntry | None,
    now: dt.datetime,
    *,
    code: str | None,
    message: str,
) -> JournalEntry:
    """The service refused the submit for certain (a 400, say): no task exists."""
    entry = _follow(path, key, before, "failed")
    return attrs.evolve(entry, state=JobState.FAILED, code=code, message=message, updated_at=now)


def preempting(
    path: Path, key: str, before: JournalEntry | None, now: dt.datetime, *, by: str
) -> JournalEntry:
    """The job's PENDING task is about to be cancelled, to let the interactive task ``by``
    go ahead of it; until a later step says how that went, the task may be either."""
    entry = _follow(path, key, before, "preempting")
    reason = f"moving aside for interactive task {by}"
    return attrs.evolve(entry, state=JobState.PREEMPTING, message=reason, updated_at=now)


def kept(path: Path, key: str, before: JournalEntry | None, now: dt.datetime) -> JournalEntry:
    """The cancel came too late (the task started): the task stays the job's."""
    entry = _follow(path, key, before, "kept")
    return attrs.evolve(entry, state=JobState.SUBMITTED, message=None, updated_at=now)


def moved_aside(
    path: Path, key: str, before: JournalEntry | None, now: dt.datetime
) -> JournalEntry:
    """The task was cancelled (nothing billed): back to DETECTED, its boxes kept, to submit
    again."""
    entry = _follow(path, key, before, "moved_aside")
    return attrs.evolve(
        entry,
        state=JobState.DETECTED,
        task_id=None,
        intent_at=None,
        message=f"task {entry.task_id} moved aside for an interactive one",
        updated_at=now,
    )


def finished(
    path: Path,
    key: str,
    before: JournalEntry | None,
    now: dt.datetime,
    *,
    state: JobState,
    video: VideoResult | None,
    code: str | None,
    message: str | None,
) -> JournalEntry:
    """The task ended (``state`` from :func:`ended_state`): its video must be the job's task's."""
    entry = _follow(path, key, before, "finished")
    if video is not None and video.task_id != entry.task_id:
        raise JournalError(
            f"job {key!r} was submitted as task {entry.task_id!r}, but the video"
            f" is task {video.task_id!r}'s",
            path=path,
            key=key,
        )
    return attrs.evolve(entry, state=state, video=video, code=code, message=message, updated_at=now)


def downloaded(
    path: Path,
    key: str,
    before: JournalEntry | None,
    now: dt.datetime,
    *,
    saved: Path,
    size: int,
) -> JournalEntry:
    """The video is saved at ``saved``, ``size`` bytes long."""
    entry = _follow(path, key, before, "downloaded")
    return attrs.evolve(entry, state=JobState.DOWNLOADED, path=saved, size=size, updated_at=now)


def same_inputs(path: Path, entry: JournalEntry, *, image: str, driven_id: str) -> None:
    """Refuse a job whose image or template differ from what its key recorded."""
    if (entry.image, entry.driven_id) != (image, driven_id):
        raise JournalError(
            f"job {entry.key!r} was recorded with image={entry.image!r} and"
            f" driven_id={entry.driven_id!r}, not image={image!r} and driven_id={driven_id!r}"
            " (a journal belongs to one batch: use another file for other jobs)",
            path=path,
            key=entry.key,
        )


def _check(
    path: Path, key: str, before: JournalEntry | None, call: str, *, image: str, driven_id: str
) -> None:
    """Refuse a first step that repeats, or contradicts, what the key recorded."""
    if before is not None:
        same_inputs(path, before, image=image, driven_id=driven_id)
    _refuse_unless(path, key, before, call)


def _follow(path: Path, key: str, before: JournalEntry | None, call: str) -> JournalEntry:
    """The entry a later step builds on, once the step is known to be allowed."""
    _refuse_unless(path, key, before, call)
    if before is None:  # pragma: no cover - every later step needs an entry
        raise JournalError(f"job {key!r} is not in the journal", path=path, key=key)
    return before


def _refuse_unless(path: Path, key: str, before: JournalEntry | None, call: str) -> None:
    allowed = _FOLLOWS[call]
    current = None if before is None else before.state
    if current in allowed:
        return
    names = sorted("a new job" if s is None else s.value for s in allowed)
    where = "is not in the journal" if current is None else f"is {current.value}"
    raise JournalError(
        f"cannot record {call!r} for job {key!r}: it {where}, and {call!r} may only"
        f" follow {', '.join(names)}",
        path=path,
        key=key,
    )


def check_text(field: str, value: object) -> None:
    """:class:`ValidationError` unless ``value`` is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValidationError(field, "a non-empty string", value)

"""What an earlier run of the batch left in its journal, and what it means for this run.

A job the journal shows ended is reported from it, with the error it ended
with; a submit an earlier run sent without learning its task is settled
through the task list (or reported uncertain when settling is off); the
attempts, tasks and sightings it recorded go back to the submitter, so that
their tasks are never taken for another job's.

A journal records one jobs file's jobs when the batch names its file
(``jobs_file=``): before anything is read or sent, :func:`open_journal` refuses
a journal recorded for another file, and records the file in one that names none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from ._attempts import Attempt, AttemptState, owner_of
from ._errors import (
    EmojiError,
    FaceRejectedError,
    InvalidRequestError,
    JournalError,
    SubmissionUncertainError,
    TaskCanceledError,
    TaskFailedError,
    TaskNotFoundError,
)
from ._jobs import EmojiJob
from ._journal import JobState, Journal, JournalEntry
from ._journal_null import BatchJournal
from ._models import BBox, TaskSnapshot, TaskStatus
from ._reconcile import Submitter

__all__ = ["DONE", "job_owner", "open_journal", "recorded_error", "restore"]

#: Where a job stands when the journal alone can report it: no request of the account needed.
DONE = frozenset(
    {
        JobState.DOWNLOADED,
        JobState.SUCCEEDED,
        JobState.REJECTED,
        JobState.FAILED,
        JobState.CANCELED,
        JobState.UNKNOWN,
    }
)


def _snapshot(entry: JournalEntry, status: TaskStatus) -> TaskSnapshot:
    return TaskSnapshot(
        task_id=entry.task_id or "",
        status=status,
        raw_status=status.value,
        code=entry.code,
        message=entry.message,
    )


def recorded_error(entry: JournalEntry, *, settle: bool) -> EmojiError | None:
    """The error an earlier run recorded for a job that ended without a video.

    An unsettled submit is an error only when ``settle`` is off; otherwise the
    task list settles it.
    """
    match entry.state:
        case JobState.REJECTED:
            return FaceRejectedError(
                entry.code or "InvalidFile", entry.message or "", request_id=None, image_count=1
            )
        case JobState.FAILED if entry.task_id is None:
            return InvalidRequestError(
                entry.message or "the service refused the submit",
                http_status=400,
                code=entry.code,
                request_id=None,
            )
        case JobState.FAILED:
            return TaskFailedError(_snapshot(entry, TaskStatus.FAILED))
        case JobState.CANCELED:
            return TaskCanceledError(_snapshot(entry, TaskStatus.CANCELED))
        case JobState.UNKNOWN:
            return TaskNotFoundError(_snapshot(entry, TaskStatus.UNKNOWN))
        case JobState.SUBMITTING | JobState.UNCERTAIN if not settle:
            return _unsettled(entry)
        case _:
            return None


def _unsettled(entry: JournalEntry) -> SubmissionUncertainError:
    """The submit an earlier run sent (or was about to send) without learning its task."""
    return SubmissionUncertainError(
        sent_at=entry.intent_at or entry.updated_at,
        inputs={
            "image_url": entry.image,
            "driven_id": entry.driven_id,
            "face_bbox": entry.face_bbox.as_list() if entry.face_bbox else None,
            "ext_bbox": entry.ext_bbox.as_list() if entry.ext_bbox else None,
        },
        reason=entry.message or "an earlier run stopped after sending the submit",
    )


def job_owner(image: str, driven_id: str, face: BBox | None, ext: BBox | None) -> str:
    """Whose a batch job's submits are: its portrait as given, template and boxes."""
    return owner_of(
        {
            "image": image,
            "driven_id": driven_id,
            "face_bbox": None if face is None else face.as_list(),
            "ext_bbox": None if ext is None else ext.as_list(),
        }
    )


def restore(
    submitter: Submitter, journal: BatchJournal, entries: list[JournalEntry]
) -> dict[str, Attempt]:
    """What earlier runs left: their tasks, the attempts they never settled, what they saw.

    Given to ``submitter``; the attempts left open, by job, are returned: each is
    settled before anything new is sent.
    """
    leftovers: dict[str, Attempt] = {}
    # Tasks of earlier runs are this batch's own: never adopted by another job.
    submitter.know([e.task_id for e in entries if e.task_id])
    by_key = {e.key: e for e in entries}
    for record in journal.attempts():
        entry = by_key.get(record.key)
        if entry is None:
            continue
        state = AttemptState(record.state)  # the journal writes the same words
        settling = entry.state in (JobState.SUBMITTING, JobState.UNCERTAIN)
        if state is AttemptState.OPEN and not settling:
            state = AttemptState.GHOST
        attempt = Attempt(
            owner=job_owner(entry.image, entry.driven_id, entry.face_bbox, entry.ext_bbox),
            label=record.key,
            sent_at=record.sent_at.timestamp(),
            state=state,
            task_id=record.task_id,
        )
        submitter.ledger.restore(attempt)
        if state is AttemptState.OPEN:
            leftovers[record.key] = attempt
    for task_id, first_seen, orphan in journal.sightings():
        submitter.ledger.saw(task_id, first_seen.timestamp())
        if orphan:
            submitter.ledger.orphaned(task_id)
    submitter.restored()
    return leftovers


async def open_journal(path: Path, jobs_file: Path | None, jobs: Sequence[EmojiJob]) -> Journal:
    """The batch's journal, opened; with ``jobs_file``, claimed for that file first.

    Closed again, and :class:`JournalError` raised, when it belongs to another
    jobs file: nothing is sent before this is settled.
    """
    journal = await Journal.open(path)
    try:
        if jobs_file is not None:
            await _claim(journal, await asyncio.to_thread(jobs_file.resolve), jobs)
    except BaseException:
        await journal.aclose()
        raise
    return journal


async def _claim(journal: Journal, given: Path, jobs: Sequence[EmojiJob]) -> None:
    """Refuse a journal made for another jobs file; record this one in a journal that names none.

    The same file is the same path (resolved, so a symlink or a relative path
    names its target): jobs appended to it resume with the others. A file moved
    or renamed is the same too, when nothing is left at the path the journal
    recorded and the file given holds every job the journal has seen: the
    journal then records the new path. A journal of a version that recorded no
    jobs file (or one a batch without ``jobs_file`` made, which records none)
    takes the file given on first use. ``given`` is the jobs file's resolved path.
    """
    recorded = journal.jobs_file
    if recorded == given:
        return
    if recorded is not None and not _moved(recorded, journal, jobs):
        gone = "" if recorded.exists() else " (moved? this file lacks jobs the journal holds)"
        refused = JournalError(
            f"belongs to the jobs file {recorded}, not {given}{gone}: one journal records one"
            f" jobs file's jobs (give {given.name} a journal of its own)",
            path=journal.path,
        )
        refused.jobs_file = recorded
        raise refused
    await journal.record_jobs_file(given)


def _moved(recorded: Path, journal: Journal, jobs: Sequence[EmojiJob]) -> bool:
    """Whether the file the journal recorded may have moved to hold ``jobs``: gone from its
    path, and every job the journal has seen still in it, with the same inputs."""
    if recorded.exists():
        return False
    given = {job.resolved_key: (job.image, job.driven_id) for job in jobs}
    return all(given.get(e.key) == (e.image, e.driven_id) for e in journal.entries())

"""Many jobs at once: a semaphore-bounded gather, paced, journaled, downloaded as each ends.

Each job runs in its own asyncio task behind one semaphore; its errors become
its outcome, so one job's failure never touches another. The journal, when
given, is written before each paid step and after each answer, so a rerun
resumes where the last run stopped: finished jobs are reported from it,
submitted ones are polled again by task id, and a job whose submit may have
been sent without an answer is reported uncertain, never sent again.

An answer that refuses the account itself (:class:`AccountError`: a wrong
key, no access, an overdue bill) stops the batch: it would answer every job
the same. From then on no detection or submit leaves (one already waiting for
its turn is held back), jobs whose tasks exist are still followed to their
end, and every other job is reported ``not_started``, resumable from the
journal once the account is fixed.

A job still throttled when its request's retry deadline passes (a
:class:`RateLimitError`, which proves nothing of it was created) is not
failed: it goes back in line behind the jobs waiting, after the retry
policy's ``wait_max``, at most :data:`REQUEUES` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path

from ._api import DETECT_MODEL, GENERATE_MODEL, ServiceAPI, is_transient
from ._attempts import Attempt, AttemptState, owner_of
from ._batch_options import BatchOptions
from ._budget import Ledger, Reservation, Spending
from ._errors import (
    AccountError,
    DownloadError,
    EmojiError,
    FaceRejectedError,
    InvalidRequestError,
    RateLimitError,
    SubmissionUncertainError,
    TaskCanceledError,
    TaskFailedError,
    TaskNotFoundError,
    ValidationError,
    proves_nothing_created,
)
from ._jobs import EmojiJob, JobOutcome, check_unique_keys, file_name_for
from ._journal import JobState, Journal, JournalEntry
from ._journal_null import BatchJournal, NullJournal
from ._models import AbandonedTask, BBox, OrphanTask, TaskSnapshot, TaskStatus, VideoResult
from ._policy import PollPolicy
from ._reconcile import PaidRequest, Submitter
from ._reporting import report, reporting, tell
from ._task import Task, outcome_of
from ._transport import MAX_VIDEO_BYTES
from ._validation import check_boxes, check_driven_id, check_image_url
from .events import (
    Billed,
    Detected,
    Downloaded,
    Failed,
    Queued,
    Requeued,
    Resumed,
    Running,
    Skipped,
    Started,
    Submitted,
    Succeeded,
)

__all__ = ["REQUEUES", "Batch"]

log = logging.getLogger("emoji_async")

#: Job tasks created between two turns of the event loop.
_SPAWN_SLICE = 100

#: How many times a job still throttled past its retry deadline goes back in line.
REQUEUES = 3


def _check_job(index: int, job: EmojiJob, extra_templates: frozenset[str]) -> None:
    prefix = f"jobs[{index}]."
    check_image_url(job.image, field=f"{prefix}image")
    check_driven_id(job.driven_id, extra=extra_templates, field=f"{prefix}driven_id")
    if (job.face_bbox is None) != (job.ext_bbox is None):
        raise ValidationError(
            f"{prefix}ext_bbox", "both boxes or neither", (job.face_bbox, job.ext_bbox)
        )
    if job.face_bbox is not None and job.ext_bbox is not None:
        check_boxes(job.face_bbox, job.ext_bbox, prefix=prefix)


def _snapshot(entry: JournalEntry, status: TaskStatus) -> TaskSnapshot:
    return TaskSnapshot(
        task_id=entry.task_id or "",
        status=status,
        raw_status=status.value,
        code=entry.code,
        message=entry.message,
    )


def _recorded_error(entry: JournalEntry, *, settle: bool) -> EmojiError | None:
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


class _JobHooks:
    """A job's journal steps along its paid submit."""

    def __init__(
        self,
        journal: BatchJournal,
        key: str,
        job: EmojiJob,
        face: BBox,
        ext: BBox,
        go_ahead: Callable[[], None],
    ) -> None:
        self._go_ahead = go_ahead
        self._journal = journal
        self._key = key
        self._job = job
        self._face = face
        self._ext = ext
        #: Whether an attempt has left (its intent is on record).
        self.intended = False

    async def sending(self) -> None:
        # Durable before the paid request leaves (and only once its turn has come):
        # a crash from here on leaves the job to be settled by the next run.
        self._go_ahead()  # the account was refused meanwhile: it never leaves
        journal, key = self._journal, self._key
        before = journal.get(key)
        if before is not None and before.state is JobState.UNCERTAIN:
            await journal.resubmitting(key, reason="no task of it could be proved")
        else:
            await journal.submitting(
                key,
                image=self._job.image,
                driven_id=self._job.driven_id,
                face_bbox=self._face,
                ext_bbox=self._ext,
            )
        self.intended = True

    async def lost(self, reason: str) -> None:
        before = self._journal.get(self._key)
        if before is not None and before.state is JobState.SUBMITTING:
            await self._journal.uncertain(self._key, reason=reason)

    async def created(self, task_id: str) -> None:
        await self._journal.submitted(self._key, task_id=task_id)


class _SkippedForBudget(Exception):  # not an EmojiError: the job was not started
    """A job the budget could not cover: reported as skipped, never as failed."""


class _Unsent(AccountError):
    """A request held back because the account was refused first; never reaches a caller.

    An :class:`AccountError`, so every layer it passes through takes it for
    what it is: certain to have created nothing, and not to be retried.
    """

    @classmethod
    def after(cls, refusal: AccountError) -> _Unsent:
        return cls(
            refusal.message,
            http_status=refusal.http_status,
            code=refusal.code,
            request_id=refusal.request_id,
        )


#: Where a job stands when the journal alone can report it: no request of the account needed.
_DONE = frozenset(
    {
        JobState.DOWNLOADED,
        JobState.SUCCEEDED,
        JobState.REJECTED,
        JobState.FAILED,
        JobState.CANCELED,
        JobState.UNKNOWN,
    }
)


def _spent_in(entries: Sequence[JournalEntry]) -> Spending:
    """What the jobs a journal recorded were billed."""
    return Spending(
        videos=sum(1 for e in entries if e.video is not None),
        video_seconds=sum(e.video_seconds for e in entries),
        detections=sum(e.detections for e in entries),
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


class Batch:
    """One run of many jobs on one client."""

    def __init__(
        self,
        api: ServiceAPI,
        *,
        submitter: Submitter,
        poll: PollPolicy,
        extra_templates: frozenset[str],
        concurrency: int,
        options: BatchOptions,
    ) -> None:
        """``poll`` and ``concurrency``: the options' own, or the client's choice when unset."""
        self._api = api
        self._submitter = submitter
        self._poll = poll
        self._extra = extra_templates
        self._concurrency = concurrency
        self._journal_path = options.journal
        self._journal: BatchJournal = NullJournal()
        self._download_to = options.download_to
        self._on_event = options.on_event
        self._cancel_pending = options.cancel_pending
        self._timeout = options.timeout
        self._live: dict[str, Task] = {}
        self._budget = options.budget
        self.ledger = Ledger(options.budget)
        #: What each job in flight still holds against the budget.
        self._held: dict[str, Reservation] = {}
        #: Tasks no job holds that the client found while the batch ran.
        self.orphans: list[OrphanTask] = []
        #: Attempts an earlier run left unanswered, by job: settled before anything new.
        self._leftovers: dict[str, Attempt] = {}
        #: Jobs whose video file, if there, is their own (their task is in the journal).
        self._own_files: set[str] = set()
        #: The first answer that refused the account: from then on nothing new is sent.
        self.refusal: AccountError | None = None
        #: Boxes detected in this run, by job: a job sent back in line keeps them.
        self._detected: dict[str, tuple[BBox, BBox]] = {}
        #: Whether the journal knew each job when the run began.
        self._resumed: dict[str, bool] = {}

    async def run(self, jobs: Sequence[EmojiJob]) -> AsyncGenerator[tuple[int, JobOutcome], None]:
        """Yield ``(index, outcome)`` as jobs end. Everything is checked before anything is sent."""
        keys = check_unique_keys(jobs)
        for index, job in enumerate(jobs):
            _check_job(index, job, self._extra)
        if self._download_to is not None:
            await _make_folder(self._download_to)
        if self._journal_path is not None:
            self._journal = await Journal.open(self._journal_path)
        journal = self._journal
        try:
            for job, key in zip(jobs, keys, strict=True):
                journal.resume(key, image=job.image, driven_id=job.driven_id)
            if self._download_to is not None:
                await self._check_files(keys)
            entries = journal.entries()
            if entries:  # an earlier run left jobs: what it left is picked up
                self._restore(journal, entries)
                # What earlier runs spent counts against the same budget, and the
                # lengths their videos were billed are what those templates reserve.
                self.ledger = Ledger(
                    self._budget,
                    _spent_in(entries),
                    billed_before=[(e.driven_id, e.video_seconds) for e in entries if e.video],
                )
            with self._submitter.listening(self._heard, on_seen=self._seen):
                # Closed explicitly: closing this generator must stop the jobs now, not at GC.
                async with contextlib.aclosing(self._gather(jobs, keys)) as outcomes:
                    async for item in outcomes:
                        yield item
                # Every job ended: a late task of a submit sent again is still caught.
                await self._submitter.linger()
        finally:
            # A submit whose job was stopped still records its task in the journal.
            await self._submitter.drain(self._api.retry.deadline)
            await journal.aclose()

    async def _check_files(self, keys: list[str]) -> None:
        """No job's video may go over a file the batch did not write: refused before any request.

        A job that already has its task in the journal may find its file there,
        saved by a run that stopped before recording it: that file is its own
        video, and is replaced. Any other existing file is another video.
        """
        directory = self._download_to
        assert directory is not None
        journal = self._journal
        for key in keys:
            entry = journal.get(key)
            if entry is not None and entry.task_id:
                self._own_files.add(key)
        paths = [directory / file_name_for(key) for key in keys]
        taken = await asyncio.to_thread(lambda: [os.path.lexists(path) for path in paths])
        for index, (key, path, exists) in enumerate(zip(keys, paths, taken, strict=True)):
            if exists and key not in self._own_files:
                raise ValidationError(
                    f"jobs[{index}].key",
                    f"a key whose file is not taken yet: {os.fspath(path)!r} exists, and a "
                    "video is never written over another (move it, or save to another folder)",
                    key,
                )

    def _restore(self, journal: BatchJournal, entries: list[JournalEntry]) -> None:
        """What earlier runs left: their tasks, the attempts they never settled, what they saw."""
        submitter = self._submitter
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
                self._leftovers[record.key] = attempt
        for task_id, first_seen, orphan in journal.sightings():
            submitter.ledger.saw(task_id, first_seen.timestamp())
            if orphan:
                submitter.ledger.orphaned(task_id)
        submitter.restored()

    def _heard(self, record: OrphanTask | AbandonedTask) -> None:
        """An orphan or an abandoned task: recorded, and told to ``on_event``."""
        if isinstance(record, OrphanTask):
            self.orphans.append(record)
            self._journal.orphaned_soon(record.task_id)
        tell(self._on_event, record)

    def _seen(self, seen: list[tuple[str, float]]) -> None:
        self._journal.sighted_soon(seen)

    async def _gather(
        self, jobs: Sequence[EmojiJob], keys: list[str]
    ) -> AsyncGenerator[tuple[int, JobOutcome], None]:
        gate = asyncio.Semaphore(self._concurrency)
        ended: asyncio.Queue[tuple[int, JobOutcome | BaseException]] = asyncio.Queue()

        async def child(index: int, job: EmojiJob, key: str) -> None:
            try:
                rounds = 0
                while True:
                    async with gate:
                        outcome = await self._job(job, key, rounds)
                    if outcome is not None:
                        break
                    # Throttled: back in line, behind the jobs waiting for a place.
                    rounds += 1
                    await asyncio.sleep(self._requeue_wait)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # a bug, not a job's error: stop the batch
                ended.put_nowait((index, exc))
            else:
                ended.put_nowait((index, outcome))

        children: list[asyncio.Task[None]] = []
        finished = 0
        # Jobs an earlier run left mid-submit go first: settled before anything new is
        # sent, their tasks are not confused with the new ones'.
        order = sorted(range(len(jobs)), key=lambda i: keys[i] not in self._leftovers)
        try:
            for spawned, index in enumerate(order):
                job, key = jobs[index], keys[index]
                children.append(
                    asyncio.create_task(child(index, job, key), name=f"emoji-job-{key}")
                )
                if spawned % _SPAWN_SLICE == _SPAWN_SLICE - 1:
                    # Thousands of tasks created in one go would hold the loop for
                    # seconds; a slice at a time, everything else keeps running.
                    await asyncio.sleep(0)
            while finished < len(children):
                index, result = await ended.get()
                finished += 1
                if isinstance(result, BaseException):
                    raise result
                yield index, result
        finally:
            # Taken before the jobs stop: a stopping job forgets its task.
            queued = [
                task
                for task in self._live.values()
                if task.last_snapshot is not None
                and task.last_snapshot.status is TaskStatus.PENDING
            ]
            for child_task in children:
                child_task.cancel()
            await asyncio.gather(*children, return_exceptions=True)
            if finished < len(children) and self._cancel_pending:
                await self._cancel_queued(queued)

    async def _cancel_queued(self, queued: list[Task]) -> None:
        """Cancel the remote tasks still PENDING; best effort, bounded by the retry policy."""

        async def cancel(task: Task) -> None:
            try:
                async with asyncio.timeout(self._api.retry.deadline):
                    await task.cancel()
            except (EmojiError, TimeoutError) as exc:
                log.warning("could not cancel queued task %s: %s", task.task_id, exc)

        await asyncio.gather(*(cancel(task) for task in queued))

    @property
    def _requeue_wait(self) -> float:
        return self._api.retry.wait_max

    def _refused(self, exc: EmojiError) -> None:
        """Stop the batch at the first answer that refuses the account."""
        if isinstance(exc, AccountError) and not isinstance(exc, _Unsent) and self.refusal is None:
            self.refusal = exc
            # info: the outcomes say it (and the command line prints it once, not twice)
            log.info("the account was refused, so the batch starts nothing new: %s", exc)

    def _go_ahead(self) -> None:
        """Raise :class:`_Unsent` once the account was refused: the request is held back."""
        if self.refusal is not None:
            raise _Unsent.after(self.refusal)

    async def _before_send(self) -> None:
        self._go_ahead()

    def _not_started(
        self, job: EmojiJob, key: str, entry: JournalEntry | None, refusal: AccountError
    ) -> JobOutcome:
        report(Skipped, reason=f"not started: the account was refused: {refusal}")
        return JobOutcome(
            job=job,
            key=key,
            task_id=entry.task_id if entry is not None else None,
            error=refusal,
            not_started=True,
            resumed=self._resumed.get(key, False),
        )

    async def _job(self, job: EmojiJob, key: str, rounds: int = 0) -> JobOutcome | None:
        """The job's outcome; ``None`` when it was sent back in line (throttled)."""
        entry = self._journal.get(key)
        task_id = entry.task_id if entry is not None else None
        if rounds == 0:
            self._resumed[key] = entry is not None
        resumed = self._resumed[key]
        with reporting(key, self._on_event):
            if self.refusal is not None and (entry is None or entry.state not in _DONE):
                return self._not_started(job, key, entry, self.refusal)
            if rounds == 0:
                report(Started)
                if entry is not None:
                    report(Resumed, state=entry.state.value, task_id=entry.task_id)
            try:
                return await self._run_job(job, key, entry, resumed=resumed)
            except _SkippedForBudget as skipped:
                report(Skipped, reason=str(skipped))
                return JobOutcome(job=job, key=key, skipped=True, resumed=resumed)
            except _Unsent:
                assert self.refusal is not None
                return self._not_started(job, key, self._journal.get(key), self.refusal)
            except EmojiError as exc:
                self._refused(exc)
                live = self._live.get(key)
                if live is not None:
                    task_id = live.task_id
                elif isinstance(exc, RateLimitError) and rounds < REQUEUES and self.refusal is None:
                    # No task of it exists (a 429 proves that): it tries again later.
                    report(
                        Requeued,
                        round=rounds + 1,
                        limit=REQUEUES,
                        wait=self._requeue_wait,
                        reason=f"{type(exc).__name__}: {exc}",
                    )
                    return None
                report(Failed, error=exc, task_id=task_id)
                return JobOutcome(job=job, key=key, task_id=task_id, error=exc, resumed=resumed)
            finally:
                self._live.pop(key, None)
                self.ledger.release(self._held.pop(key, None))

    async def _run_job(
        self, job: EmojiJob, key: str, entry: JournalEntry | None, *, resumed: bool
    ) -> JobOutcome:
        if entry is not None:
            if entry.state is JobState.DOWNLOADED or (
                entry.state is JobState.SUCCEEDED and self._download_to is None
            ):
                return JobOutcome(
                    job=job,
                    key=key,
                    task_id=entry.task_id,
                    video=entry.video,
                    path=entry.path if self._download_to is not None else None,
                    resumed=True,
                )
            settle = self._api.retry.reconcile_window is not None
            recorded = _recorded_error(entry, settle=settle)
            if recorded is not None:
                raise recorded
        self._reserve(job, key, entry)
        if entry is not None and entry.state is JobState.SUCCEEDED and entry.video is not None:
            video = entry.video
        else:
            video = await self._generate(job, key, entry)
        path = await self._save(key, video)
        return JobOutcome(
            job=job, key=key, task_id=video.task_id, video=video, path=path, resumed=resumed
        )

    async def _generate(self, job: EmojiJob, key: str, entry: JournalEntry | None) -> VideoResult:
        journal = self._journal
        if entry is not None and entry.state is JobState.SUBMITTED and entry.task_id:
            task = Task(self._api, entry.task_id, poll=self._poll, template=entry.driven_id)
        elif entry is not None and entry.state in (JobState.SUBMITTING, JobState.UNCERTAIN):
            task = await self._settle(job, key, entry)
        else:
            face, ext = await self._boxes(job, key, entry)
            task = await self._submit(job, key, face, ext)
        self._live[key] = task
        try:
            video = await self._follow(task)
        except (TaskFailedError, TaskCanceledError, TaskNotFoundError) as exc:
            if exc.snapshot is not None:
                snap = exc.snapshot
                await journal.finished(
                    key, status=snap.status, code=snap.code, message=snap.message
                )
            raise
        self._bill(key, video_seconds=video.video_duration, driven_id=job.driven_id)
        await journal.finished(key, status=TaskStatus.SUCCEEDED, video=video)
        report(Succeeded, task_id=task.task_id, video=video)
        return video

    def _reserve(self, job: EmojiJob, key: str, entry: JournalEntry | None) -> None:
        """Hold what the job may cost against the budget, or skip it."""
        detections, seconds, forced = _may_cost(
            job,
            entry,
            seconds=self.ledger.video_seconds_for(job.driven_id),
            detected=key in self._detected,
        )
        held = self.ledger.reserve(detections=detections, video_seconds=seconds, forced=forced)
        if held is None:
            raise _SkippedForBudget(
                f"the budget's remainder cannot cover {detections} detection(s) and"
                f" {seconds} s of video (spent so far: {self.ledger.spent})"
            )
        self._held[key] = held

    def _bill(
        self,
        key: str,
        *,
        detections: int = 0,
        video_seconds: int = 0,
        driven_id: str | None = None,
    ) -> None:
        held = self._held.get(key)
        if detections:
            self.ledger.detected(held, detections)
        if video_seconds:
            self.ledger.video(held, video_seconds, driven_id=driven_id)
        report(Billed, detections=detections, video_seconds=video_seconds, spent=self.ledger.spent)

    async def _boxes(
        self, job: EmojiJob, key: str, entry: JournalEntry | None
    ) -> tuple[BBox, BBox]:
        if job.face_bbox is not None and job.ext_bbox is not None:
            return job.face_bbox, job.ext_bbox
        if entry is not None and entry.face_bbox is not None and entry.ext_bbox is not None:
            return entry.face_bbox, entry.ext_bbox
        if key in self._detected:
            return self._detected[key]
        journal = self._journal
        extra = 0

        def billed(count: int) -> None:
            # An attempt that may have been billed without giving a detection.
            nonlocal extra
            extra += count
            self._bill(key, detections=count)

        self._go_ahead()
        try:
            image = await self._api.uploads.url_for(job.image, DETECT_MODEL, field="image")
            face = await self._api.detect(image, before_send=self._before_send, on_billed=billed)
        except FaceRejectedError as exc:
            self._bill(key, detections=exc.image_count)
            await journal.rejected(
                key,
                image=job.image,
                driven_id=job.driven_id,
                code=exc.code,
                message=exc.message,
                billed=exc.image_count + extra,
            )
            raise
        except EmojiError as exc:
            self._refused(exc)  # at once: the next job's detection may be about to leave
            raise
        self._bill(key, detections=face.image_count)
        self._detected[key] = (face.face_bbox, face.ext_bbox)
        await journal.detected(
            key,
            image=job.image,
            driven_id=job.driven_id,
            face_bbox=face.face_bbox,
            ext_bbox=face.ext_bbox,
            billed=face.image_count + extra,
        )
        report(Detected, face_bbox=face.face_bbox, ext_bbox=face.ext_bbox)
        return face.face_bbox, face.ext_bbox

    async def _settle(self, job: EmojiJob, key: str, entry: JournalEntry) -> Task:
        """An earlier run's submit, unanswered: its task from the task list, or a resend."""
        journal = self._journal
        face, ext = entry.face_bbox, entry.ext_bbox
        assert face is not None
        assert ext is not None
        if entry.state is JobState.SUBMITTING:
            await journal.uncertain(key, reason="the run that sent it stopped before its answer")
        owner = job_owner(entry.image, entry.driven_id, face, ext)
        attempt = self._leftovers.pop(key, None)
        if attempt is None:  # a journal that never recorded the attempt itself
            attempt = Attempt(
                owner=owner,
                label=key,
                sent_at=(entry.intent_at or entry.updated_at).timestamp(),
                state=AttemptState.OPEN,
            )
            self._submitter.ledger.restore(attempt)
        request = PaidRequest(
            image_url=entry.image,
            driven_id=entry.driven_id,
            face=face,
            ext=ext,
            owner=owner,
            label=key,
        )
        hooks = _JobHooks(journal, key, job, face, ext, self._go_ahead)
        settled = await self._submitter.settle(attempt, request, hooks)
        if settled is None:
            return await self._submit(job, key, face, ext)
        report(Submitted, task_id=settled.snapshot.task_id)
        return self._task(settled.snapshot, job)

    async def _submit(self, job: EmojiJob, key: str, face: BBox, ext: BBox) -> Task:
        journal = self._journal
        hooks = _JobHooks(journal, key, job, face, ext, self._go_ahead)
        self._go_ahead()
        image = await self._api.uploads.url_for(job.image, GENERATE_MODEL, field="image")
        request = PaidRequest(
            image_url=image,
            driven_id=job.driven_id,
            face=face,
            ext=ext,
            owner=job_owner(job.image, job.driven_id, face, ext),
            label=key,
        )
        try:
            settled = await self._submitter.submit(
                request,
                hooks=hooks,
                cancel_if_abandoned=self._cancel_pending or not journal.resumable,
            )
        except SubmissionUncertainError as exc:
            before = journal.get(key)
            if before is not None and before.state is JobState.SUBMITTING:
                await journal.uncertain(key, reason=exc.reason)
            raise
        except EmojiError as exc:
            self._refused(exc)  # at once, before the journal: the next submit waits on this one
            if hooks.intended:
                proven = proves_nothing_created(exc)
                if proven and isinstance(exc, InvalidRequestError):
                    # The content is refused: sending again cannot help.
                    await journal.failed(key, code=exc.code, message=exc.message)
                else:
                    # Throttled, the key refused, or no task seen for any attempt: next run.
                    reason = f"{type(exc).__name__}: {exc}"
                    await journal.unsent(key, reason=reason, proven=proven)
            raise
        report(Submitted, task_id=settled.snapshot.task_id)
        return self._task(settled.snapshot, job)

    def _task(self, snapshot: TaskSnapshot, job: EmojiJob) -> Task:
        return Task(
            self._api,
            snapshot.task_id,
            poll=self._poll,
            snapshot=snapshot,
            submitted_at=time.time(),
            template=job.driven_id,
        )

    async def _follow(self, task: Task) -> VideoResult:
        """The task's video, watched until it ends or the job's timeout passes.

        The task is paid for: a poll that failed for a reason that may pass
        (a 429 asking for a wait past the poll's deadline, a 5xx, an answer
        lost, too big or too slow) does not end the job. It watches again after
        a pause, under what is left of its timeout.
        """
        loop = asyncio.get_running_loop()
        timeout = self._timeout if self._timeout is not None else self._poll.deadline
        ends = loop.time() + timeout
        while True:
            try:
                return await self._watch(task, ends - loop.time())
            except EmojiError as exc:
                left = ends - loop.time()
                if not is_transient(exc) or left <= self._requeue_wait:
                    raise
                log.info("task %s: %s; watching again", task.task_id, exc)
                await asyncio.sleep(self._requeue_wait)

    async def _watch(self, task: Task, timeout: float) -> VideoResult:
        board = self._api.pacing.board
        async with contextlib.aclosing(task.watch(timeout=timeout)) as snapshots:
            async for snapshot in snapshots:
                if snapshot.status is TaskStatus.PENDING:
                    report(Queued, task_id=task.task_id, ahead=board.ahead(task.task_id))
                elif snapshot.status is TaskStatus.RUNNING:
                    report(Running, task_id=task.task_id)
                elif snapshot.is_terminal:
                    return outcome_of(snapshot)
        raise AssertionError("watch() ends only after a terminal snapshot")

    async def _save(self, key: str, video: VideoResult) -> Path | None:
        if self._download_to is None:
            return None
        directory = self._download_to
        path = directory / file_name_for(key)
        # file_name_for() already keeps the name plain; this holds even if it changes.
        if not await _saved_inside(path, directory):
            raise ValidationError("key", "a name that stays inside download_to", key)
        size = await self._api.download(
            video.video_url, path, max_bytes=MAX_VIDEO_BYTES, replace=key in self._own_files
        )
        await self._journal.downloaded(key, path=path, size=size)
        report(Downloaded, path=path, size=size)
        return path


async def _make_folder(folder: Path) -> None:
    """Create ``download_to`` before anything is sent, or raise :class:`ValidationError`.

    A file (or a symlink loop) in its place would fail every job's download after
    its video was paid for.
    """
    try:
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:  # ValueError: a name holding a NUL character
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValidationError(
            "download_to", f"a folder that exists or can be created ({reason})", str(folder)
        ) from exc


async def _saved_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` resolves to a file right inside ``folder``.

    A file system that cannot say (a symlink loop, which ``Path.resolve`` raises
    as ``RuntimeError`` before Python 3.13; a folder gone or replaced by a file)
    fails this job's download alone, as a :class:`DownloadError`.
    """

    def inside() -> bool:
        return path.resolve().parent == folder.resolve()

    try:
        return await asyncio.to_thread(inside)
    except (OSError, RuntimeError, ValueError) as exc:
        raise DownloadError(
            f"the video could not be saved to {os.fspath(path)!r}: {exc}", transient=False
        ) from exc

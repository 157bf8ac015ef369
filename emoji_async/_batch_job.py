"""One job's paid path in a batch: its boxes, its submit, and its task followed to a video.

A submit an earlier run sent without learning its task is settled first,
through the task list, and sent again only once that proves nothing came of
it. The journal is written before each paid step and after each answer, so a
rerun resumes where the last run stopped. A job whose detection or submit
meets an answer refusing the account stops the batch at once, through its
:class:`AccountGate`, before the next job's request leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable

from ._api import DETECT_MODEL, GENERATE_MODEL, ServiceAPI, is_transient
from ._attempts import Attempt, AttemptState
from ._batch_moves import Moves
from ._batch_refusal import AccountGate
from ._batch_resume import job_owner
from ._batch_spending import BatchSpending
from ._errors import (
    EmojiError,
    FaceRejectedError,
    InvalidRequestError,
    SubmissionUncertainError,
    TaskCanceledError,
    TaskFailedError,
    TaskNotFoundError,
    proves_nothing_created,
)
from ._jobs import EmojiJob
from ._journal import JobState, JournalEntry
from ._journal_null import BatchJournal, NullJournal
from ._models import BBox, TaskSnapshot, TaskStatus, VideoResult
from ._paid_request import PaidRequest
from ._policy import PollPolicy
from ._reconcile import Submitter
from ._reporting import report
from ._task import Task, outcome_of
from ._validation import check_lane
from ._values import Lane
from .events import Detected, Queued, Running, Submitted, Succeeded

__all__ = ["PaidPath"]

log = logging.getLogger("emoji_async")

#: The states in which a job's task is known and followed: one being moved aside
#: when a run stopped is followed too (and submitted again if it was cancelled).
_FOLLOWED = (JobState.SUBMITTED, JobState.PREEMPTING)


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


class PaidPath:
    """How a batch takes each job from its portrait to its video."""

    def __init__(
        self,
        api: ServiceAPI,
        *,
        submitter: Submitter,
        poll: PollPolicy,
        timeout: float | None,
        cancel_pending: bool,
        gate: AccountGate,
        spending: BatchSpending,
        leftovers: dict[str, Attempt],
        lane: Lane,
    ) -> None:
        """``leftovers``: attempts an earlier run left unanswered, by job (filled by the batch);
        ``lane``: the lane of a job that names none."""
        self._api = api
        self._submitter = submitter
        self._poll = poll
        self._timeout = timeout
        self._cancel_pending = cancel_pending
        self._gate = gate
        self._spending = spending
        self._leftovers = leftovers
        self._lane = lane
        #: The batch's journal: set by the batch once it is open (:meth:`use`).
        self.journal: BatchJournal = NullJournal()
        #: The bulk tasks moved aside for interactive ones.
        self.moves = Moves(api)
        #: Boxes detected in this run, by job: a job sent back in line keeps them.
        self.detected: dict[str, tuple[BBox, BBox]] = {}
        #: The task each job in flight follows.
        self.live: dict[str, Task] = {}
        #: The furthest step of its task told for each job: a task watched again (after a
        #: failed poll) starts from the state it was last seen in, told already.
        self._told: dict[str, TaskStatus] = {}

    def use(self, journal: BatchJournal) -> None:
        """The batch's journal, once it is open."""
        self.journal = journal
        self.moves.journal = journal

    def lane_of(self, job: EmojiJob) -> Lane:
        """The job's own lane, or the batch's."""
        return self._lane if job.lane is None else check_lane(job.lane)

    async def generate(self, job: EmojiJob, key: str, entry: JournalEntry | None) -> VideoResult:
        """The job's video: its task from the journal, settled, or sent now, followed to its end.

        A bulk job's task moved aside for an interactive one is submitted again.
        """
        journal = self.journal
        lane = self.lane_of(job)
        if entry is not None and entry.state in _FOLLOWED and entry.task_id:
            task = Task(self._api, entry.task_id, poll=self._poll, template=entry.driven_id)
        elif entry is not None and entry.state in (JobState.SUBMITTING, JobState.UNCERTAIN):
            task = await self._settle(job, key, entry, lane)
        else:
            face, ext = await self._boxes(job, key, entry)
            task = await self._submit(job, key, face, ext, lane)
        self.live[key] = task
        try:
            video = await self._follow_in_lane(job, key, task, lane)
        except (TaskFailedError, TaskCanceledError, TaskNotFoundError) as exc:
            if exc.snapshot is not None:
                snap = exc.snapshot
                await journal.finished(
                    key, status=snap.status, code=snap.code, message=snap.message
                )
            raise
        self._spending.bill(key, video_seconds=video.video_duration, driven_id=job.driven_id)
        await journal.finished(key, status=TaskStatus.SUCCEEDED, video=video)
        report(lambda key: Succeeded(key=key, task_id=video.task_id, video=video))
        return video

    async def _follow_in_lane(self, job: EmojiJob, key: str, task: Task, lane: Lane) -> VideoResult:
        """The task's video; a bulk task moved aside is submitted again, and that one followed."""
        while lane is Lane.BULK:
            video = await self.moves.follow(key, task, functools.partial(self._follow, key, task))
            if video is not None:
                return video
            self._told.pop(key, None)  # the new task's steps are told afresh
            # No task of the job's exists until the new submit makes one: a throttled
            # submit sends the job back in line like any job that has none yet.
            del self.live[key]
            face, ext = await self._boxes(job, key, self.journal.get(key))
            task = await self._submit(job, key, face, ext, lane)
            self.live[key] = task
        return await self._follow(key, task)

    async def _boxes(
        self, job: EmojiJob, key: str, entry: JournalEntry | None
    ) -> tuple[BBox, BBox]:
        if job.face_bbox is not None and job.ext_bbox is not None:
            return job.face_bbox, job.ext_bbox
        if entry is not None and entry.face_bbox is not None and entry.ext_bbox is not None:
            return entry.face_bbox, entry.ext_bbox
        if key in self.detected:
            return self.detected[key]
        journal = self.journal
        extra = 0

        def billed(count: int) -> None:
            # An attempt that may have been billed without giving a detection.
            nonlocal extra
            extra += count
            self._spending.bill(key, detections=count)

        self._gate.go_ahead()
        try:
            image = await self._api.uploads.url_for(job.image, DETECT_MODEL, field="image")
            face = await self._api.detect(
                image, before_send=self._gate.before_send, on_billed=billed
            )
        except FaceRejectedError as exc:
            self._spending.bill(key, detections=exc.image_count)
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
            self._gate.refused(exc)  # at once: the next job's detection may be about to leave
            if extra:
                # Billed, perhaps, and no entry of the job will count them: a rerun's must.
                await journal.billed(key, detections=extra)
            raise
        self._spending.bill(key, detections=face.image_count)
        self.detected[key] = (face.face_bbox, face.ext_bbox)
        await journal.detected(
            key,
            image=job.image,
            driven_id=job.driven_id,
            face_bbox=face.face_bbox,
            ext_bbox=face.ext_bbox,
            billed=face.image_count + extra,
        )
        report(lambda key: Detected(key=key, face_bbox=face.face_bbox, ext_bbox=face.ext_bbox))
        return face.face_bbox, face.ext_bbox

    async def _settle(self, job: EmojiJob, key: str, entry: JournalEntry, lane: Lane) -> Task:
        """An earlier run's submit, unanswered: its task from the task list, or a resend."""
        journal = self.journal
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
            lane=lane,
        )
        hooks = _JobHooks(journal, key, job, face, ext, self._gate.go_ahead)
        settled = await self._submitter.settle(attempt, request, hooks)
        if settled is None:
            return await self._submit(job, key, face, ext, lane)
        report(lambda key: Submitted(key=key, task_id=settled.snapshot.task_id))
        return self._task(settled.snapshot, job)

    async def _submit(self, job: EmojiJob, key: str, face: BBox, ext: BBox, lane: Lane) -> Task:
        journal = self.journal
        hooks = _JobHooks(journal, key, job, face, ext, self._gate.go_ahead)
        self._gate.go_ahead()
        image = await self._api.uploads.url_for(job.image, GENERATE_MODEL, field="image")
        request = PaidRequest(
            image_url=image,
            driven_id=job.driven_id,
            face=face,
            ext=ext,
            owner=job_owner(job.image, job.driven_id, face, ext),
            label=key,
            lane=lane,
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
            # At once, before the journal: the next submit waits on this one.
            self._gate.refused(exc)
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
        report(lambda key: Submitted(key=key, task_id=settled.snapshot.task_id))
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

    async def _follow(self, key: str, task: Task) -> VideoResult:
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
                return await self._watch(key, task, ends - loop.time())
            except EmojiError as exc:
                left = ends - loop.time()
                if not is_transient(exc) or left <= self._api.retry.wait_max:
                    raise
                log.info("task %s: %s; watching again", task.task_id, exc)
                await asyncio.sleep(self._api.retry.wait_max)

    async def _watch(self, key: str, task: Task, timeout: float) -> VideoResult:
        board = self._api.pacing.board
        async with contextlib.aclosing(task.watch(timeout=timeout)) as snapshots:
            async for snapshot in snapshots:
                if snapshot.is_terminal:
                    return outcome_of(snapshot)
                if self._told_before(key, snapshot.status):
                    continue
                if snapshot.status is TaskStatus.PENDING:
                    report(
                        lambda key: Queued(
                            key=key, task_id=task.task_id, ahead=board.ahead(task.task_id)
                        )
                    )
                elif snapshot.status is TaskStatus.RUNNING:
                    report(lambda key: Running(key=key, task_id=task.task_id))
        raise AssertionError("watch() ends only after a terminal snapshot")

    def _told_before(self, key: str, status: TaskStatus) -> bool:
        """Whether the job's task was told in ``status`` or past it; else it is now."""
        told = self._told.get(key)
        if told is not None and status.progress <= told.progress:
            return True
        self._told[key] = status
        return False

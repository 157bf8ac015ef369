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
from collections.abc import AsyncGenerator, Sequence

from ._api import ServiceAPI
from ._attempts import Attempt
from ._batch_files import VideoFolder
from ._batch_job import PaidPath
from ._batch_options import BatchOptions
from ._batch_refusal import AccountGate, _Unsent
from ._batch_resume import DONE, open_journal, recorded_error, restore
from ._batch_spending import BatchSpending, SkippedForBudget
from ._budget import Ledger
from ._errors import AccountError, EmojiError, RateLimitError, ValidationError
from ._jobs import EmojiJob, JobOutcome, check_unique_keys
from ._journal import JobState, JournalEntry
from ._journal_null import BatchJournal, NullJournal
from ._models import AbandonedTask, OrphanTask, TaskStatus
from ._policy import PollPolicy
from ._reconcile import Submitter
from ._reporting import report, reporting, tell
from ._task import Task
from ._validation import check_boxes, check_driven_id, check_image_url, check_lane
from .events import Failed, Requeued, Resumed, Skipped, Started

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
    if job.lane is not None:
        check_lane(job.lane, field=f"{prefix}lane")


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
        self._extra = extra_templates
        self._concurrency = concurrency
        self._journal_path = options.journal
        self._jobs_file = options.jobs_file
        self._journal: BatchJournal = NullJournal()
        download_to = options.download_to
        self._folder = None if download_to is None else VideoFolder(download_to)
        self._on_event = options.on_event
        self._cancel_pending = options.cancel_pending
        self._spending = BatchSpending(options.budget)
        self._gate = AccountGate()
        #: Tasks no job holds that the client found while the batch ran.
        self.orphans: list[OrphanTask] = []
        #: Attempts an earlier run left unanswered, by job: settled before anything new.
        self._leftovers: dict[str, Attempt] = {}
        self._paid = PaidPath(
            api,
            submitter=submitter,
            poll=poll,
            timeout=options.timeout,
            cancel_pending=options.cancel_pending,
            gate=self._gate,
            spending=self._spending,
            leftovers=self._leftovers,
            lane=options.lane,
        )
        #: Whether the journal knew each job when the run began.
        self._resumed: dict[str, bool] = {}

    @property
    def preempt_cancels(self) -> int:
        """Cancels sent to move the batch's tasks aside, those that came too late included."""
        return self._paid.moves.cancels

    @property
    def ledger(self) -> Ledger:
        """What the batch spent (with a journal, the earlier runs included) and may spend."""
        return self._spending.ledger

    async def run(self, jobs: Sequence[EmojiJob]) -> AsyncGenerator[tuple[int, JobOutcome], None]:
        """Yield ``(index, outcome)`` as jobs end. Everything is checked before anything is sent."""
        keys = check_unique_keys(jobs)
        for index, job in enumerate(jobs):
            _check_job(index, job, self._extra)
        if self._journal_path is not None:
            # First: a journal refused (in use, another jobs file's) leaves no folder made.
            self._journal = await open_journal(self._journal_path, self._jobs_file, jobs)
        self._paid.use(self._journal)
        journal = self._journal
        try:
            if self._folder is not None:
                await self._folder.make()
            for job, key in zip(jobs, keys, strict=True):
                journal.resume(key, image=job.image, driven_id=job.driven_id)
            if self._folder is not None:
                await self._folder.claim(keys, journal)
            entries = journal.entries()
            if entries:  # an earlier run left jobs: what it left is picked up
                self._leftovers.update(restore(self._submitter, journal, entries))
            # A job an earlier run left no entry for may have been billed all the same.
            self._spending.restore(entries, journal.bills())
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
                for task in self._paid.live.values()
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

    def _not_started(
        self, job: EmojiJob, key: str, entry: JournalEntry | None, refusal: AccountError
    ) -> JobOutcome:
        reason = f"not started: the account was refused: {refusal}"
        report(lambda key: Skipped(key=key, reason=reason))
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
            if self._gate.refusal is not None and (entry is None or entry.state not in DONE):
                return self._not_started(job, key, entry, self._gate.refusal)
            if rounds == 0:
                lane = self._paid.lane_of(job).value
                report(lambda key: Started(key=key, lane=lane))
                if entry is not None:
                    report(
                        lambda key: Resumed(key=key, state=entry.state.value, task_id=entry.task_id)
                    )
            try:
                return await self._run_job(job, key, entry, resumed=resumed)
            except SkippedForBudget as skipped:
                reason = str(skipped)
                report(lambda key: Skipped(key=key, reason=reason))
                return JobOutcome(job=job, key=key, skipped=True, resumed=resumed)
            except _Unsent:
                assert self._gate.refusal is not None
                return self._not_started(job, key, self._journal.get(key), self._gate.refusal)
            except EmojiError as exc:
                self._gate.refused(exc)
                live = self._paid.live.get(key)
                if live is not None:
                    task_id = live.task_id
                elif (
                    isinstance(exc, RateLimitError)
                    and rounds < REQUEUES
                    and self._gate.refusal is None
                ):
                    # No task of it exists (a 429 proves that): it tries again later.
                    reason = f"{type(exc).__name__}: {exc}"
                    report(
                        lambda key: Requeued(
                            key=key,
                            round=rounds + 1,
                            limit=REQUEUES,
                            wait=self._requeue_wait,
                            reason=reason,
                        )
                    )
                    return None
                error = exc
                report(lambda key: Failed(key=key, error=error, task_id=task_id))
                return JobOutcome(
                    job=job,
                    key=key,
                    task_id=task_id,
                    error=exc,
                    resumed=resumed,
                    moved_aside=self._paid.moves.moved[key],
                )
            finally:
                self._paid.live.pop(key, None)
                self._spending.release(key)

    async def _run_job(
        self, job: EmojiJob, key: str, entry: JournalEntry | None, *, resumed: bool
    ) -> JobOutcome:
        if entry is not None:
            if entry.state is JobState.DOWNLOADED or (
                entry.state is JobState.SUCCEEDED and self._folder is None
            ):
                return JobOutcome(
                    job=job,
                    key=key,
                    task_id=entry.task_id,
                    video=entry.video,
                    path=entry.path if self._folder is not None else None,
                    resumed=True,
                )
            settle = self._api.retry.reconcile_window is not None
            recorded = recorded_error(entry, settle=settle)
            if recorded is not None:
                raise recorded
        self._spending.reserve(job, key, entry, detected=key in self._paid.detected)
        if entry is not None and entry.state is JobState.SUCCEEDED and entry.video is not None:
            video = entry.video
        else:
            video = await self._paid.generate(job, key, entry)
        path = None
        if self._folder is not None:
            path = await self._folder.save(self._api, self._journal, key, video)
        return JobOutcome(
            job=job,
            key=key,
            task_id=video.task_id,
            video=video,
            path=path,
            resumed=resumed,
            moved_aside=self._paid.moves.moved[key],
        )

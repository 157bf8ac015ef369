"""The crash-safe record of a batch, so that a rerun resumes instead of paying twice.

A rerun of ``generate_many(jobs, journal="run.db")`` after a crash or a
``kill -9`` reads this record: finished jobs are not redone, submitted ones are
polled again by task id, saved videos are not fetched again, and a job whose
paid submit may have been sent without an answer is ``UNCERTAIN``. The
provider has no idempotency key, so sending that submit again could create a
second billed task: the task list settles it first (adopting the task found,
or, once the reconcile window has shown none, recording ``resubmitting``).

This module is the journal's face to the batch: its thread, its memory and
its calls. Which call may follow which state, and what each records, are
:mod:`._journal_rules` (the step table is drawn there); the values recorded are
:mod:`._journal_entries`; the SQLite file is :mod:`._journal_schema` (its
format and upgrades) and :mod:`._journal_store` (its rows). Every step is one
committed transaction, on disk when its coroutine returns, and a process
killed at any moment leaves every completed step readable. The journal never
holds an API key or request headers: no call accepts one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import functools
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, Self, TypeVar

from . import _journal_rules as rules
from ._errors import JournalError, ValidationError
from ._journal_entries import JobState, JournalAttempt, JournalEntry
from ._journal_rules import Step
from ._journal_sightings import Sightings
from ._journal_store import AttemptStep, JournalFile, Loaded
from ._models import BBox, TaskStatus, VideoResult

__all__ = ["JobState", "Journal", "JournalAttempt", "JournalEntry"]

log = logging.getLogger("emoji_async")

_T = TypeVar("_T")


class Journal(Sightings):
    """A batch's record in one SQLite file; open with :meth:`open`, close with :meth:`aclose`.

    Every entry is held in memory, so :meth:`get` never waits on the disk;
    every step is written on the journal's own thread, one at a time, in the
    order of the calls, and is durable when its coroutine returns. A step
    whose caller is cancelled is still completed: the journal and the file
    never disagree.
    """

    #: A later run resumes what this one leaves: an abandoned task is kept for it.
    resumable: Final = True

    def __init__(
        self,
        path: Path,
        *,
        worker: concurrent.futures.ThreadPoolExecutor,
        file: JournalFile,
        loaded: Loaded,
    ) -> None:
        """Use :meth:`open`: the file must have been opened on ``worker``'s thread."""
        self.path = path
        self._worker: concurrent.futures.ThreadPoolExecutor | None = worker
        self._file = file
        # Attempts by their row id: ids follow the order they were made in.
        self._entries, self._history, self._attempts, self._sightings, jobs_file, _ = loaded
        self._bills = loaded[5]  # detections billed that no entry counts, by job: see billed()
        self._jobs_file = None if jobs_file is None else Path(jobs_file)
        # Only the worker thread changes the dicts; the lock keeps a reader
        # on the loop's thread from seeing one mid-change.
        self._lock = threading.Lock()
        self._closing: asyncio.Future[None] | None = None
        #: Steps asked for from callbacks, awaited before the file closes.
        self._soon: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Journal:
        """Open the journal at ``path``, creating the file and its schema if needed.

        :class:`JournalError` if the file is not a journal, was written by
        another schema version, or is open elsewhere (another run of the batch).
        """
        where = Path(path)
        # One thread owns the connection for its whole life: sqlite3 objects
        # stay on the thread that made them (check_same_thread stays on as a
        # guard), and a single worker runs the steps in the order they came.
        # The loop's shared default executor would give neither guarantee.
        worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="emoji_async-journal"
        )
        opening = worker.submit(JournalFile.open, where)
        try:
            file, loaded = await asyncio.shield(asyncio.wrap_future(opening))
        except BaseException:
            # Cancelled mid-open, the thread still finishes opening: close what
            # it opened (queued behind it), so the file's lock is let go.
            worker.submit(JournalFile.discard, opening)
            worker.shutdown(wait=False)
            raise
        return cls(where, worker=worker, file=file, loaded=loaded)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Finish the steps already asked for, then close the file; again, it does nothing."""
        if self._soon:
            await asyncio.gather(*self._soon, return_exceptions=True)
        if self._closing is None:
            worker = self._worker
            if worker is None:
                return
            self._worker = None
            self._closing = asyncio.get_running_loop().run_in_executor(worker, self._file.close)
            # The close runs after every step queued before it; the thread then
            # has nothing left, so joining it is immediate.
            self._closing.add_done_callback(lambda _: worker.shutdown(wait=True))
        await asyncio.shield(self._closing)

    @property
    def jobs_file(self) -> Path | None:
        """The jobs file the journal belongs to, as recorded; ``None`` if none was.

        A journal opened through ``generate_many`` records none: only a program
        that reads its jobs from a file (the command line) names one.
        """
        return self._jobs_file

    async def record_jobs_file(self, path: str | os.PathLike[str]) -> None:
        """Record that the journal belongs to the jobs file at ``path`` (kept as given)."""
        named = Path(path)
        await self._on_thread(functools.partial(self._file.write_jobs_file, os.fspath(named)))
        self._jobs_file = named

    def get(self, key: str) -> JournalEntry | None:
        """The job's entry, or ``None`` if the journal has never seen ``key``."""
        with self._lock:
            return self._entries.get(key)

    def resume(self, key: str, *, image: str, driven_id: str) -> JournalEntry | None:
        """The entry an earlier run left for this job, or ``None``.

        :class:`JournalError` if the key was recorded with another image or
        template: the journal belongs to another batch definition.
        """
        entry = self.get(key)
        if entry is not None:
            rules.same_inputs(self.path, entry, image=image, driven_id=driven_id)
        return entry

    def entries(self) -> list[JournalEntry]:
        """Every job, in the order the journal first saw them."""
        with self._lock:
            return list(self._entries.values())

    def history(self, key: str) -> list[tuple[JobState, dt.datetime]]:
        """Every state the job went through, with when it was recorded (UTC), oldest first."""
        with self._lock:
            return list(self._history.get(key, ()))

    async def detected(
        self,
        key: str,
        *,
        image: str,
        driven_id: str,
        face_bbox: BBox,
        ext_bbox: BBox,
        billed: int = 1,
    ) -> JournalEntry:
        """The face was found: these are the boxes to submit with (``billed`` detections)."""
        face = BBox.parse(face_bbox, field="face_bbox")
        ext = BBox.parse(ext_bbox, field="ext_bbox")
        step = functools.partial(
            rules.detected,
            image=image,
            driven_id=driven_id,
            face=face,
            ext=ext,
            billed=billed,
        )
        return await self._record(key, step)

    async def rejected(
        self,
        key: str,
        *,
        image: str,
        driven_id: str,
        code: str,
        message: str,
        billed: int = 1,
    ) -> JournalEntry:
        """The detector refused the portrait: the job is over, with the detector's reason.

        A rejection is billed all the same (``billed`` detections).
        """
        step = functools.partial(
            rules.rejected,
            image=image,
            driven_id=driven_id,
            code=code,
            message=message,
            billed=billed,
        )
        return await self._record(key, step)

    async def submitting(
        self, key: str, *, image: str, driven_id: str, face_bbox: BBox, ext_bbox: BBox
    ) -> JournalEntry:
        """The paid submit is about to be sent; durable on return, so call it before sending.

        After a crash, a job left SUBMITTING may have created a task: it is
        to be treated as uncertain, never submitted again unasked.
        """
        face = BBox.parse(face_bbox, field="face_bbox")
        ext = BBox.parse(ext_bbox, field="ext_bbox")
        step = functools.partial(
            rules.submitting, image=image, driven_id=driven_id, face=face, ext=ext
        )
        return await self._record(key, step, attempt="open")

    async def submitted(self, key: str, *, task_id: str) -> JournalEntry:
        """The service accepted the submit and named the task."""
        rules.check_text("task_id", task_id)
        step = functools.partial(rules.submitted, task_id=task_id)
        return await self._record(key, step, attempt="created")

    async def uncertain(self, key: str, *, reason: str) -> JournalEntry:
        """The submit may have created a task whose id never came back; ``reason`` says why."""
        return await self._record(key, functools.partial(rules.uncertain, reason=reason))

    async def resubmitting(self, key: str, *, reason: str) -> JournalEntry:
        """The uncertain submit provably created nothing; it is about to be sent again.

        Like :meth:`submitting`, durable on return: call it right before the
        new attempt leaves. ``intent_at`` becomes the new attempt's.
        """
        step = functools.partial(rules.resubmitting, reason=reason)
        return await self._record(key, step, attempt="reopen")

    async def unsent(self, key: str, *, reason: str, proven: bool = True) -> JournalEntry:
        """The submit gave no task: provably none (never connected, throttled, refused the
        key), or, with ``proven`` false, none appeared in the task list for any attempt.

        The intent is withdrawn: the job is back to DETECTED, with its boxes,
        and the next run submits it again. ``reason`` is kept in ``message``.
        An attempt that is not proven to have created nothing stays on record
        as a ghost: it may still make a task, late.
        """
        step = functools.partial(rules.unsent, reason=reason)
        return await self._record(key, step, attempt="none" if proven else "ghost")

    async def failed(self, key: str, *, code: str | None, message: str) -> JournalEntry:
        """The service refused the submit for certain (a 400, say): no task exists."""
        step = functools.partial(rules.failed, code=code, message=message)
        return await self._record(key, step, attempt="none")

    async def preempting(self, key: str, *, by: str) -> JournalEntry:
        """Durable before a bulk job's PENDING task is cancelled for the interactive ``by``."""
        return await self._record(key, functools.partial(rules.preempting, by=by))

    async def kept(self, key: str) -> JournalEntry:
        """The cancel came too late: the task started and stays the job's."""
        return await self._record(key, rules.kept)

    async def moved_aside(self, key: str) -> JournalEntry:
        """The task was cancelled: the job is to be submitted again (back to DETECTED)."""
        return await self._record(key, rules.moved_aside)

    async def finished(
        self,
        key: str,
        *,
        status: TaskStatus,
        video: VideoResult | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> JournalEntry:
        """The task ended: with its ``video`` when SUCCEEDED, else with the provider's reason."""
        state = rules.ended_state(status, video)
        step = functools.partial(
            rules.finished, state=state, video=video, code=code, message=message
        )
        return await self._record(key, step)

    async def downloaded(
        self, key: str, *, path: str | os.PathLike[str], size: int
    ) -> JournalEntry:
        """The video is saved at ``path``, ``size`` bytes long."""
        saved = Path(path)
        if type(size) is not int or size < 0:
            raise ValidationError("size", "a byte count (an int >= 0)", size)
        return await self._record(key, functools.partial(rules.downloaded, saved=saved, size=size))

    async def billed(self, key: str, *, detections: int) -> None:
        """A detection failed after ``detections`` attempts whose answers were lost.

        Each may have been billed, and no entry counts them (the job may have none
        yet): a rerun's spending counts them from here (:meth:`bills`)."""
        rules.check_text("key", key)
        if type(detections) is not int or detections < 1:
            raise ValidationError("detections", "a count of detections (an int >= 1)", detections)

        def written() -> None:
            total = self._file.billed(key, detections, dt.datetime.now(dt.UTC))
            with self._lock:
                self._bills[key] = total

        await self._on_thread(written, key)

    def bills(self) -> dict[str, int]:
        """Detections billed that no entry counts, by job: from :meth:`billed`."""
        with self._lock:
            return dict(self._bills)

    def attempts(self) -> list[JournalAttempt]:
        """Every paid attempt recorded, oldest first."""
        with self._lock:
            return [self._attempts[row] for row in sorted(self._attempts)]

    async def _on_thread(self, write: Callable[[], _T], key: str | None = None) -> _T:
        """``write`` run on the journal's thread, after the writes asked for before it."""
        if self._worker is None:
            raise JournalError("the journal is closed", path=self.path, key=key)
        # Shielded: once asked for, a write is completed even if its caller is
        # cancelled, so memory and file agree and aclose() waits for it.
        return await asyncio.shield(asyncio.get_running_loop().run_in_executor(self._worker, write))

    async def _record(self, key: str, step: Step, *, attempt: AttemptStep = None) -> JournalEntry:
        rules.check_text("key", key)
        return await self._on_thread(functools.partial(self._write, key, step, attempt), key)

    def _write(self, key: str, step: Step, attempt: AttemptStep = None) -> JournalEntry:
        """Check and commit one step; runs on the journal's thread, one step at a time."""
        before = self._entries.get(key)
        now = dt.datetime.now(dt.UTC)
        after = step(self.path, key, before, now)
        attempts = self._file.write_step(key, before, after, now, attempt)
        with self._lock:
            self._entries[key] = after
            self._history[key] = (*self._history.get(key, ()), (after.state, now))
            self._attempts.update(attempts)
        return after

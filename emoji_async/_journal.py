"""The crash-safe record of a batch, so that a rerun resumes instead of paying twice.

A rerun of ``generate_many(jobs, journal="run.db")`` after a crash or a
``kill -9`` reads this record: finished jobs are not redone, submitted ones are
polled again by task id, saved videos are not fetched again, and a job whose
paid submit may have been sent without an answer is ``UNCERTAIN``. The
provider has no idempotency key, so sending that submit again could create a
second billed task: the task list settles it first (adopting the task found,
or, once the reconcile window has shown none, recording ``resubmitting``).

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
    finished      SUBMITTED                SUCCEEDED | FAILED | CANCELED | UNKNOWN
    downloaded    SUCCEEDED                DOWNLOADED

Any other step raises :class:`JournalError` and writes nothing, as does a step
whose inputs (image, template, boxes) differ from what the key already
recorded: a journal belongs to one batch definition.

Storage is one SQLite file: ``meta`` (name and value: the format name, the
schema version and, once :meth:`Journal.record_jobs_file` names it, the jobs
file the journal belongs to), ``jobs`` (one row per key: its current state and
fields, boxes and video as JSON) and ``transitions`` (append-only: key, state,
time). A new row of ``meta`` is no new schema: a version that does not know it
reads and writes the file as before. Every step is one committed
transaction, on disk when its coroutine returns: the WAL is fsynced on commit
(``synchronous=FULL``), so a process killed at any moment leaves every
completed step readable, and even a power cut keeps them. The file is held
with an exclusive lock while open, so a second run of the same batch cannot
open it and submit the same jobs again. The journal never holds an API key or
request headers: no call accepts one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import enum
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import attrs

from ._errors import JournalError, ValidationError
from ._models import BBox, TaskStatus, VideoResult

__all__ = ["JobState", "Journal", "JournalAttempt", "JournalEntry"]

#: Names the file format, so that another SQLite file is never taken for a journal.
FORMAT: Final = "emoji_async journal"
#: The schema this version reads and writes; any other is refused rather than guessed at.
SCHEMA_VERSION: Final = 3

_ATTEMPTS_SCHEMA: Final = (
    """CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL REFERENCES jobs (key),
        sent_at TEXT NOT NULL,
        state TEXT NOT NULL,
        task_id TEXT
    )""",
    "CREATE INDEX attempts_by_key ON attempts (key, id)",
    """CREATE TABLE sightings (
        task_id TEXT PRIMARY KEY,
        first_seen TEXT NOT NULL,
        orphan INTEGER NOT NULL DEFAULT 0
    )""",
)

#: Older versions this one upgrades in place when it opens them: what each adds.
_UPGRADES: Final[Mapping[int, tuple[str, ...]]] = {
    # 2: the detections each job was billed (a rejected portrait is billed too).
    1: ("ALTER TABLE jobs ADD COLUMN detections INTEGER NOT NULL DEFAULT 0",),
    # 3: every paid attempt, and the tasks seen in the account's list. The history
    # tells the attempts an earlier version left unknown: the one a job is still
    # settling, and each one whose answer was lost before it was sent again.
    2: (
        *_ATTEMPTS_SCHEMA,
        """INSERT INTO attempts (key, sent_at, state)
           SELECT key, at, 'ghost' FROM (
               SELECT key, state, at,
                      LEAD(state) OVER (PARTITION BY key ORDER BY id) AS next,
                      LEAD(state, 2) OVER (PARTITION BY key ORDER BY id) AS after
               FROM transitions)
           WHERE state = 'SUBMITTING' AND next = 'UNCERTAIN'
             AND after IN ('SUBMITTING', 'DETECTED')""",
        """INSERT INTO attempts (key, sent_at, state)
           SELECT key, intent_at, 'open' FROM jobs
           WHERE state IN ('SUBMITTING', 'UNCERTAIN') AND intent_at IS NOT NULL""",
    ),
}

#: What a step does to the job's attempts (see :class:`JournalAttempt`).
_AttemptStep = str | None

_SCHEMA: Final = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        image TEXT NOT NULL,
        driven_id TEXT NOT NULL,
        face_bbox TEXT,
        ext_bbox TEXT,
        task_id TEXT,
        intent_at TEXT,
        video TEXT,
        code TEXT,
        message TEXT,
        path TEXT,
        size INTEGER,
        updated_at TEXT NOT NULL,
        detections INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE transitions (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL REFERENCES jobs (key),
        state TEXT NOT NULL,
        at TEXT NOT NULL
    )""",
    "CREATE INDEX transitions_by_key ON transitions (key, id)",
    *_ATTEMPTS_SCHEMA,
)

_COLUMNS: Final = (
    "key, state, image, driven_id, face_bbox, ext_bbox, task_id, intent_at,"
    " video, code, message, path, size, updated_at, detections"
)


class JobState(enum.StrEnum):
    """Where a job stands, as the journal last recorded it."""

    DETECTED = "DETECTED"
    SUBMITTING = "SUBMITTING"
    SUBMITTED = "SUBMITTED"
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
    "finished": frozenset({JobState.SUBMITTED}),
    "downloaded": frozenset({JobState.SUCCEEDED}),
}

_ENDED: Final[Mapping[TaskStatus, JobState]] = {
    TaskStatus.SUCCEEDED: JobState.SUCCEEDED,
    TaskStatus.FAILED: JobState.FAILED,
    TaskStatus.CANCELED: JobState.CANCELED,
    TaskStatus.UNKNOWN: JobState.UNKNOWN,
}


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


#: A step, run on the journal's thread: the key's entry before it (if any) and
#: the time of the step, to the entry after it. It raises to refuse the step.
_Step = Callable[[JournalEntry | None, dt.datetime], JournalEntry]


class Journal:
    """A batch's record in one SQLite file; open with :meth:`open`, close with :meth:`aclose`.

    Every entry is held in memory, so :meth:`get` never waits on the disk;
    every step is written on the journal's own thread, one at a time, in the
    order of the calls, and is durable when its coroutine returns. A step
    whose caller is cancelled is still completed: the journal and the file
    never disagree.
    """

    def __init__(
        self,
        path: Path,
        *,
        worker: concurrent.futures.ThreadPoolExecutor,
        db: sqlite3.Connection,
        entries: dict[str, JournalEntry],
        history: dict[str, tuple[tuple[JobState, dt.datetime], ...]],
        attempts: dict[int, JournalAttempt] | None = None,
        sightings: dict[str, tuple[dt.datetime, bool]] | None = None,
        jobs_file: Path | None = None,
    ) -> None:
        """Use :meth:`open`: the connection must have been made on ``worker``'s thread."""
        self.path = path
        self._worker: concurrent.futures.ThreadPoolExecutor | None = worker
        self._db = db
        self._entries = entries
        self._history = history
        #: Every attempt by its row id (ids follow the order they were made in).
        self._attempts = attempts or {}
        self._sightings = sightings or {}
        self._jobs_file = jobs_file
        # Only the worker thread changes the two dicts; the lock keeps a reader
        # on the loop's thread from seeing one mid-change.
        self._lock = threading.Lock()
        self._closing: asyncio.Future[None] | None = None

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
        opening = worker.submit(_connect, where)
        try:
            db, loaded = await asyncio.shield(asyncio.wrap_future(opening))
        except BaseException:
            # Cancelled mid-open, the thread still finishes opening: close what
            # it opened (queued behind it), so the file's lock is let go.
            worker.submit(_discard, opening)
            worker.shutdown(wait=False)
            raise
        entries, history, attempts, sightings, jobs_file = loaded
        return cls(
            where,
            worker=worker,
            db=db,
            entries=entries,
            history=history,
            attempts=attempts,
            sightings=sightings,
            jobs_file=None if jobs_file is None else Path(jobs_file),
        )

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
        if self._closing is None:
            worker = self._worker
            if worker is None:
                return
            self._worker = None
            self._closing = asyncio.get_running_loop().run_in_executor(worker, self._db.close)
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
        if self._worker is None:
            raise JournalError("the journal is closed", path=self.path)
        named = Path(path)
        write = asyncio.get_running_loop().run_in_executor(
            self._worker, self._write_jobs_file, os.fspath(named)
        )
        await asyncio.shield(write)
        self._jobs_file = named

    def _write_jobs_file(self, value: str) -> None:
        try:
            self._db.execute(
                "INSERT INTO meta (name, value) VALUES ('jobs_file', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (value,),
            )
        except sqlite3.Error as exc:
            raise JournalError(f"could not record its jobs file: {exc}", path=self.path) from exc

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
            _same_inputs(self.path, entry, image=image, driven_id=driven_id)
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

        def step(before: JournalEntry | None, now: dt.datetime) -> JournalEntry:
            self._check(key, before, "detected", image=image, driven_id=driven_id)
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

        def step(before: JournalEntry | None, now: dt.datetime) -> JournalEntry:
            self._check(key, before, "rejected", image=image, driven_id=driven_id)
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

        def step(before: JournalEntry | None, now: dt.datetime) -> JournalEntry:
            self._check(key, before, "submitting", image=image, driven_id=driven_id)
            if before is not None and (before.face_bbox, before.ext_bbox) != (face, ext):
                raise JournalError(
                    f"job {key!r} was detected with face_bbox={before.face_bbox} and"
                    f" ext_bbox={before.ext_bbox}, not face_bbox={face} and ext_bbox={ext}",
                    path=self.path,
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

        return await self._record(key, step, attempt="open")

    async def submitted(self, key: str, *, task_id: str) -> JournalEntry:
        """The service accepted the submit and named the task."""
        _check_text("task_id", task_id)

        def step(before: JournalEntry | None, now: dt.datetime) -> JournalEntry:
            entry = self._follow(key, before, "submitted")
            return attrs.evolve(
                entry,
                state=JobState.SUBMITTED,
                task_id=task_id,
                code=None,
                message=None,
                updated_at=now,
            )

        return await self._record(key, step, attempt="created")

    async def uncertain(self, key: str, *, reason: str) -> JournalEntry:
        """The submit may have created a task whose id never came back; ``reason`` says why."""

        def step(before: JournalEntry | None, now: dt.datetime) -> JournalEntry:
            entry = self._follow(key, before, "uncertain")
            return attrs.evolve(entry, state=JobState.UNCERTAIN, message=reason, updated_at=now)

        return await self._record(key, step)

    async def resubmitting(self, key: str, *, reason: str) -> JournalEntry:
        """The uncertain submit provably created nothing; it is about to be sent again.

        Like :meth:`submitting`, durable on return: call it right before the
        new attempt leaves. ``intent_at`` becomes the new attempt's.
        """

        def step(before: JournalEntry | None, now: dt.datetime) -> JournalEntry:
            entry = self._follow(key, before, "resubmitting")
            return attrs.evolve(
                entry, state=JobState.SUBMITTING, intent_at=now, message=reason, updated_at=now
            )

        return await self._record(key, step, attempt="reopen")

    async def unsent(self, key: str, *, reason: str, proven: bool = True) -> JournalEntry:
        """The submit gave no task: provably none (never connected, throttled, refused the
        key), or, with ``proven`` false, none appeared in the task list for any attempt.

        The intent is withdrawn: the job is back to DETECTED, with its boxes,
        and the next run submits it again. ``reason`` is kept in ``message``.
        An attempt that is not proven to have created nothing stays on record
        as a ghost: it may still make a task, late.
        """

        def step(before: JournalEntry | None, now: dt.datetime) -> JournalEntry:
            entry = self._follow(key, before, "unsent")
            return attrs.evolve(
                entry, state=JobState.DETECTED, intent_at=None, message=reason, updated_at=now
            )

        return await self._record(key, step, attempt="none" if proven else "ghost")

    async def failed(self, key: str, *, code: str | None, message: str) -> JournalEntry:
        """The service refused the submit for certain (a 400, say): no task exists."""

        def step(before: JournalEntry | None, now: dt.datetime) -> JournalEntry:
            entry = self._follow(key, before, "failed")
            return attrs.evolve(
                entry, state=JobState.FAILED, code=code, message=message, updated_at=now
            )

        return await self._record(key, step, attempt="none")

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
        state = _ENDED.get(status)
        if state is None:
            raise ValidationError("status", "SUCCEEDED, FAILED, CANCELED or UNKNOWN", status)
        if (video is None) == (state is JobState.SUCCEEDED):
            raise ValidationError("video", "a VideoResult exactly when status is SUCCEEDED", video)

        def step(before: JournalEntry | None, now: dt.datetime) -> JournalEntry:
            entry = self._follow(key, before, "finished")
            if video is not None and video.task_id != entry.task_id:
                raise JournalError(
                    f"job {key!r} was submitted as task {entry.task_id!r}, but the video"
                    f" is task {video.task_id!r}'s",
                    path=self.path,
                    key=key,
                )
            return attrs.evolve(
                entry, state=state, video=video, code=code, message=message, updated_at=now
            )

        return await self._record(key, step)

    async def downloaded(
        self, key: str, *, path: str | os.PathLike[str], size: int
    ) -> JournalEntry:
        """The video is saved at ``path``, ``size`` bytes long."""
        saved = Path(path)
        if type(size) is not int or size < 0:
            raise ValidationError("size", "a byte count (an int >= 0)", size)

        def step(before: JournalEntry | None, now: dt.datetime) -> JournalEntry:
            entry = self._follow(key, before, "downloaded")
            return attrs.evolve(
                entry, state=JobState.DOWNLOADED, path=saved, size=size, updated_at=now
            )

        return await self._record(key, step)

    def _check(
        self, key: str, before: JournalEntry | None, call: str, *, image: str, driven_id: str
    ) -> None:
        """Refuse a first step that repeats, or contradicts, what the key recorded."""
        if before is not None:
            _same_inputs(self.path, before, image=image, driven_id=driven_id)
        self._refuse_unless(key, before, call)

    def _follow(self, key: str, before: JournalEntry | None, call: str) -> JournalEntry:
        """The entry a later step builds on, once the step is known to be allowed."""
        self._refuse_unless(key, before, call)
        if before is None:  # pragma: no cover - every later step needs an entry
            raise JournalError(f"job {key!r} is not in the journal", path=self.path, key=key)
        return before

    def _refuse_unless(self, key: str, before: JournalEntry | None, call: str) -> None:
        allowed = _FOLLOWS[call]
        current = None if before is None else before.state
        if current in allowed:
            return
        names = sorted("a new job" if s is None else s.value for s in allowed)
        where = "is not in the journal" if current is None else f"is {current.value}"
        raise JournalError(
            f"cannot record {call!r} for job {key!r}: it {where}, and {call!r} may only"
            f" follow {', '.join(names)}",
            path=self.path,
            key=key,
        )

    def attempts(self) -> list[JournalAttempt]:
        """Every paid attempt recorded, oldest first."""
        with self._lock:
            return [self._attempts[row] for row in sorted(self._attempts)]

    def sightings(self) -> list[tuple[str, dt.datetime, bool]]:
        """Every task seen in the account's list: its id, when first seen, whether an orphan."""
        with self._lock:
            return [(task_id, *seen) for task_id, seen in self._sightings.items()]

    async def sighted(self, seen: list[tuple[str, float]]) -> None:
        """Tasks first seen in the account's list (epoch seconds): the next run knows them."""
        rows = [
            (task_id, _time(dt.datetime.fromtimestamp(at, dt.UTC)))
            for task_id, at in seen
            if task_id not in self._sightings
        ]
        if rows:
            await self._record_sightings(
                "INSERT OR IGNORE INTO sightings (task_id, first_seen) VALUES (?, ?)", rows
            )

    async def orphaned(self, task_id: str) -> None:
        """A task no job holds (cancelled, or billed unheld): never a candidate again."""
        at = _time(dt.datetime.now(dt.UTC))
        await self._record_sightings(
            "INSERT INTO sightings (task_id, first_seen, orphan) VALUES (?, ?, 1)"
            " ON CONFLICT (task_id) DO UPDATE SET orphan = 1",
            [(task_id, at)],
        )

    async def _record_sightings(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if self._worker is None:
            raise JournalError("the journal is closed", path=self.path)
        write = asyncio.get_running_loop().run_in_executor(
            self._worker, self._write_sightings, sql, rows
        )
        await asyncio.shield(write)

    def _write_sightings(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(sql, rows)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise JournalError(f"could not record the tasks seen: {exc}", path=self.path) from exc
        loaded = self._db.execute(
            f"SELECT task_id, first_seen, orphan FROM sightings WHERE task_id IN"  # noqa: S608
            f" ({', '.join('?' * len(rows))})",
            [row[0] for row in rows],
        ).fetchall()
        with self._lock:
            for task_id, first_seen, orphan in loaded:
                self._sightings[task_id] = (_parse_time(first_seen), bool(orphan))

    async def _record(self, key: str, step: _Step, *, attempt: _AttemptStep = None) -> JournalEntry:
        _check_text("key", key)
        if self._worker is None:
            raise JournalError("the journal is closed", path=self.path, key=key)
        write = asyncio.get_running_loop().run_in_executor(
            self._worker, self._write, key, step, attempt
        )
        # Shielded: once asked for, a step is completed even if its caller is
        # cancelled, so memory and file agree and aclose() waits for it.
        return await asyncio.shield(write)

    def _attempt_rows(self, key: str, action: _AttemptStep, after: JournalEntry) -> None:
        """What a step does to the job's attempts, inside the step's transaction."""
        if action is None:
            return
        at = _time(after.updated_at)
        db = self._db
        if action in ("open", "reopen"):
            if action == "reopen":
                db.execute(
                    "UPDATE attempts SET state = 'ghost' WHERE key = ? AND state = 'open'", (key,)
                )
            db.execute(
                "INSERT INTO attempts (key, sent_at, state) VALUES (?, ?, 'open')", (key, at)
            )
        else:
            db.execute(
                "UPDATE attempts SET state = ?, task_id = ? WHERE key = ? AND state = 'open'",
                (action, after.task_id if action == "created" else None, key),
            )

    def _write(self, key: str, step: _Step, attempt: _AttemptStep = None) -> JournalEntry:
        """Check and commit one step; runs on the journal's thread, one step at a time."""
        before = self._entries.get(key)
        now = dt.datetime.now(dt.UTC)
        after = step(before, now)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            if before is None:
                self._db.execute(
                    f"INSERT INTO jobs ({_COLUMNS}) VALUES ({', '.join('?' * 15)})",  # noqa: S608
                    _row(after),
                )
            else:
                self._db.execute(
                    "UPDATE jobs SET state = ?, image = ?, driven_id = ?, face_bbox = ?,"
                    " ext_bbox = ?, task_id = ?, intent_at = ?, video = ?, code = ?,"
                    " message = ?, path = ?, size = ?, updated_at = ?, detections = ?"
                    " WHERE key = ?",
                    (*_row(after)[1:], key),
                )
            self._db.execute(
                "INSERT INTO transitions (key, state, at) VALUES (?, ?, ?)",
                (key, after.state.value, _time(now)),
            )
            self._attempt_rows(key, attempt, after)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise JournalError(
                f"could not record {after.state.value} for job {key!r}: {exc}",
                path=self.path,
                key=key,
            ) from exc
        # The job's attempts as the file now has them: no second copy of the rules.
        attempts = {} if attempt is None else _read_attempts(self._db, "WHERE key = ?", (key,))
        with self._lock:
            self._entries[key] = after
            self._history[key] = (*self._history.get(key, ()), (after.state, now))
            self._attempts.update(attempts)
        return after


#: What a journal file holds: entries, histories, attempts, sightings, its jobs file.
_Loaded = tuple[
    dict[str, JournalEntry],
    dict[str, tuple[tuple[JobState, dt.datetime], ...]],
    dict[int, JournalAttempt],
    dict[str, tuple[dt.datetime, bool]],
    str | None,
]


def _connect(path: Path) -> tuple[sqlite3.Connection, _Loaded]:
    """Open (or create) the file and load it; runs on the journal's thread."""
    try:
        # No busy timeout: the only other holder of the lock is another run,
        # which will not let go soon, so say so at once.
        db = sqlite3.connect(path, isolation_level=None, timeout=0)
    except sqlite3.Error as exc:
        raise JournalError(f"cannot be opened: {exc}", path=path) from exc
    try:
        # Exclusive before the first read: the lock is then held until close,
        # and no -shm file is made. A refused file is only ever read.
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
        fresh, version = _identify(db, path)
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise JournalError(
                f"needs write-ahead logging, which this file system refused ({mode!r})", path=path
            )
        db.execute("PRAGMA synchronous = FULL")
        # A write, even on an existing journal: it takes the exclusive lock now,
        # so a second run of the batch is refused at open, not at its first step.
        db.execute("BEGIN IMMEDIATE")
        if fresh:
            for statement in _SCHEMA:
                db.execute(statement)
            db.executemany(
                "INSERT INTO meta (name, value) VALUES (?, ?)",
                [("format", FORMAT), ("schema_version", str(SCHEMA_VERSION))],
            )
        for old in range(version, SCHEMA_VERSION):
            for statement in _UPGRADES[old]:
                db.execute(statement)
            db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(old + 1),))
        db.execute("COMMIT")
        if fresh:
            _sync_directory(path)
        loaded = _load(db, path)
    except BaseException as exc:
        db.close()
        if isinstance(exc, sqlite3.Error):
            if "locked" in str(exc):
                raise JournalError(
                    "is in use by another run (close it first; two runs of one batch"
                    " would submit the same jobs twice)",
                    path=path,
                ) from exc
            raise JournalError(f"is not an emoji_async journal: {exc}", path=path) from exc
        raise
    return db, loaded


def _discard(opening: concurrent.futures.Future[Any]) -> None:
    """Close the connection an abandoned open made, if it made one."""
    if not opening.cancelled() and opening.exception() is None:
        opening.result()[0].close()


def _identify(db: sqlite3.Connection, path: Path) -> tuple[bool, int]:
    """Whether the file is empty (a new journal), and its schema version.

    :class:`JournalError` unless it is ours, in a version this one reads or upgrades.
    """
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return True, SCHEMA_VERSION
    if "meta" not in tables:
        raise JournalError(
            f"is not an emoji_async journal (an SQLite file with tables {sorted(tables)})",
            path=path,
        )
    meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
    if meta.get("format") != FORMAT:
        raise JournalError(
            f"is not an emoji_async journal (its format is {meta.get('format')!r})", path=path
        )
    version = meta.get("schema_version")
    readable = {str(v) for v in (*_UPGRADES, SCHEMA_VERSION)}
    if version not in readable:
        raise JournalError(
            f"was written with journal schema version {version}; this emoji_async reads"
            f" versions {', '.join(sorted(readable))} only",
            path=path,
        )
    return False, int(version)


def _sync_directory(path: Path) -> None:
    """Make the new file's name itself durable, not only its contents."""
    if os.name != "posix":  # pragma: no cover - directories cannot be fsynced elsewhere
        return
    fd = os.open(path.absolute().parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load(db: sqlite3.Connection, path: Path) -> _Loaded:
    entries: dict[str, JournalEntry] = {}
    history: dict[str, tuple[tuple[JobState, dt.datetime], ...]] = {}
    sightings: dict[str, tuple[dt.datetime, bool]] = {}
    try:
        for row in db.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY id"):  # noqa: S608
            entry = _entry(row)
            entries[entry.key] = entry
        for key, state, at in db.execute("SELECT key, state, at FROM transitions ORDER BY id"):
            history[key] = (*history.get(key, ()), (JobState(state), _parse_time(at)))
        attempts = _read_attempts(db)
        for task_id, first_seen, orphan in db.execute(
            "SELECT task_id, first_seen, orphan FROM sightings"
        ):
            sightings[task_id] = (_parse_time(first_seen), bool(orphan))
    except (ValueError, TypeError, KeyError) as exc:
        raise JournalError(f"holds a row this version cannot read: {exc}", path=path) from exc
    (jobs_file,) = db.execute("SELECT value FROM meta WHERE name = 'jobs_file'").fetchone() or (
        None,
    )
    return entries, history, attempts, sightings, jobs_file


def _read_attempts(
    db: sqlite3.Connection, where: str = "", params: tuple[Any, ...] = ()
) -> dict[int, JournalAttempt]:
    """The ``attempts`` rows (``where`` narrows them), by row id."""
    attempts: dict[int, JournalAttempt] = {}
    for row, key, sent_at, state, task_id in db.execute(
        f"SELECT id, key, sent_at, state, task_id FROM attempts {where}",  # noqa: S608
        params,
    ):
        if state not in ("open", "ghost", "created", "none"):
            raise ValueError(f"an attempt in state {state!r}")
        attempts[row] = JournalAttempt(
            key=key, sent_at=_parse_time(sent_at), state=state, task_id=task_id
        )
    return attempts


def _row(entry: JournalEntry) -> tuple[Any, ...]:
    """The ``jobs`` columns, in ``_COLUMNS`` order."""
    return (
        entry.key,
        entry.state.value,
        entry.image,
        entry.driven_id,
        None if entry.face_bbox is None else json.dumps(entry.face_bbox.as_list()),
        None if entry.ext_bbox is None else json.dumps(entry.ext_bbox.as_list()),
        entry.task_id,
        _time(entry.intent_at),
        None if entry.video is None else json.dumps(_video_fields(entry.video)),
        entry.code,
        entry.message,
        None if entry.path is None else os.fspath(entry.path),
        entry.size,
        _time(entry.updated_at),
        entry.detections,
    )


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    (key, state, image, driven_id, face, ext, task_id, intent_at) = row[:8]
    (video, code, message, path, size, updated_at, detections) = row[8:]
    return JournalEntry(
        key=key,
        state=JobState(state),
        image=image,
        driven_id=driven_id,
        face_bbox=None if face is None else BBox(*json.loads(face)),
        ext_bbox=None if ext is None else BBox(*json.loads(ext)),
        task_id=task_id,
        intent_at=_maybe_time(intent_at),
        video=None if video is None else _video(json.loads(video)),
        code=code,
        message=message,
        path=None if path is None else Path(path),
        size=size,
        updated_at=_parse_time(updated_at),
        detections=int(detections),
    )


# The video is written field by field rather than through the wire converter:
# this is the journal's own format, and must not change when the wire does.
def _video_fields(video: VideoResult) -> dict[str, Any]:
    return {
        "task_id": video.task_id,
        "video_url": video.video_url,
        "video_duration": video.video_duration,
        "video_ratio": video.video_ratio,
        "submit_time": _time(video.submit_time),
        "scheduled_time": _time(video.scheduled_time),
        "end_time": _time(video.end_time),
        "request_id": video.request_id,
    }


def _video(fields: dict[str, Any]) -> VideoResult:
    return VideoResult(
        task_id=fields["task_id"],
        video_url=fields["video_url"],
        video_duration=fields["video_duration"],
        video_ratio=fields["video_ratio"],
        submit_time=_maybe_time(fields["submit_time"]),
        scheduled_time=_maybe_time(fields["scheduled_time"]),
        end_time=_maybe_time(fields["end_time"]),
        request_id=fields["request_id"],
    )


def _time(value: dt.datetime | None) -> str | None:
    """ISO 8601 with its UTC offset, which :func:`_parse_time` restores exactly."""
    return None if value is None else value.isoformat()


def _parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _maybe_time(value: str | None) -> dt.datetime | None:
    return None if value is None else _parse_time(value)


def _check_text(field: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError(field, "a non-empty string", value)


def _same_inputs(path: Path, entry: JournalEntry, *, image: str, driven_id: str) -> None:
    if (entry.image, entry.driven_id) != (image, driven_id):
        raise JournalError(
            f"job {entry.key!r} was recorded with image={entry.image!r} and"
            f" driven_id={entry.driven_id!r}, not image={image!r} and driven_id={driven_id!r}"
            " (a journal belongs to one batch: use another file for other jobs)",
            path=path,
            key=entry.key,
        )

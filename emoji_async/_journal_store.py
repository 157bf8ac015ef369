"""The journal's rows: reading them at open, and writing each step as one transaction.

Used only from the journal's own thread (sqlite3 objects stay on the thread
that made them). Every write is one committed transaction, on disk when it
returns; one that fails is rolled back and raised as :class:`JournalError`,
so memory and file never disagree.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Final

from ._errors import JournalError
from ._journal_entries import JobState, JournalAttempt, JournalEntry
from ._journal_schema import connect
from ._models import BBox, VideoResult

__all__ = ["AttemptStep", "JournalFile", "Loaded"]

#: What a step does to the job's attempts (see :class:`JournalAttempt`): ``open``
#: (a new attempt), ``reopen`` (the open one becomes a ghost, a new one opens), or the
#: state the open one ends in (``created``, ``none``, ``ghost``); ``None``: nothing.
AttemptStep = str | None

#: What a journal file holds: entries, histories, attempts, sightings, its jobs file,
#: and the detections billed that no entry counts, by job.
Loaded = tuple[
    dict[str, JournalEntry],
    dict[str, tuple[tuple[JobState, dt.datetime], ...]],
    dict[int, JournalAttempt],
    dict[str, tuple[dt.datetime, bool]],
    str | None,
    dict[str, int],
]


#: The ``jobs`` columns, in the order :func:`_row` gives them.
COLUMNS: Final = (
    "key, state, image, driven_id, face_bbox, ext_bbox, task_id, intent_at,"
    " video, code, message, path, size, updated_at, detections"
)


class JournalFile:
    """The journal's SQLite file, opened with :meth:`open` on the thread that will use it."""

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        self.path = path
        self._db = db

    @classmethod
    def open(cls, path: Path) -> tuple[JournalFile, Loaded]:
        """Open (or create) the file at ``path`` and read everything it holds."""
        db, loaded = connect(path, _load)
        return cls(path, db), loaded

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def discard(opening: concurrent.futures.Future[tuple[JournalFile, Loaded]]) -> None:
        """Close the file an abandoned :meth:`open` opened, if it opened one."""
        if not opening.cancelled() and opening.exception() is None:
            opening.result()[0].close()

    def write_jobs_file(self, value: str) -> None:
        try:
            self._db.execute(
                "INSERT INTO meta (name, value) VALUES ('jobs_file', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (value,),
            )
        except sqlite3.Error as exc:
            raise JournalError(f"could not record its jobs file: {exc}", path=self.path) from exc

    def billed(self, key: str, detections: int, at: dt.datetime) -> int:
        """Record detections billed that no entry counts; the job's total of them."""
        try:
            self._db.execute(
                "INSERT INTO bills (key, detections, at) VALUES (?, ?, ?)",
                (key, detections, _time(at)),
            )
        except sqlite3.Error as exc:
            raise JournalError(
                f"could not record the detections billed to job {key!r}: {exc}",
                path=self.path,
                key=key,
            ) from exc
        (total,) = self._db.execute(
            "SELECT SUM(detections) FROM bills WHERE key = ?", (key,)
        ).fetchone()
        return int(total)

    def sighted(self, seen: list[tuple[str, dt.datetime]]) -> dict[str, tuple[dt.datetime, bool]]:
        """Record tasks first seen in the account's list; the sightings as the file has them."""
        return self._write_sightings(
            "INSERT OR IGNORE INTO sightings (task_id, first_seen) VALUES (?, ?)",
            [(task_id, _time(at)) for task_id, at in seen],
        )

    def orphaned(self, task_id: str, at: dt.datetime) -> dict[str, tuple[dt.datetime, bool]]:
        """Record a task no job holds; its sighting as the file has it."""
        return self._write_sightings(
            "INSERT INTO sightings (task_id, first_seen, orphan) VALUES (?, ?, 1)"
            " ON CONFLICT (task_id) DO UPDATE SET orphan = 1",
            [(task_id, _time(at))],
        )

    def _write_sightings(
        self, sql: str, rows: list[tuple[Any, ...]]
    ) -> dict[str, tuple[dt.datetime, bool]]:
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
        return {
            task_id: (_parse_time(first_seen), bool(orphan))
            for task_id, first_seen, orphan in loaded
        }

    def write_step(
        self,
        key: str,
        before: JournalEntry | None,
        after: JournalEntry,
        now: dt.datetime,
        attempt: AttemptStep = None,
    ) -> dict[int, JournalAttempt]:
        """Commit one step: the job's row, its transition, its attempts.

        The job's attempts as the file now has them (none when the step leaves them
        alone): no second copy of the rules.
        """
        try:
            self._db.execute("BEGIN IMMEDIATE")
            if before is None:
                self._db.execute(
                    f"INSERT INTO jobs ({COLUMNS}) VALUES ({', '.join('?' * 15)})",  # noqa: S608
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
        return {} if attempt is None else _read_attempts(self._db, "WHERE key = ?", (key,))

    def _attempt_rows(self, key: str, action: AttemptStep, after: JournalEntry) -> None:
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


def _load(db: sqlite3.Connection, path: Path) -> Loaded:
    """Everything the file holds, read once at open."""
    entries: dict[str, JournalEntry] = {}
    history: dict[str, tuple[tuple[JobState, dt.datetime], ...]] = {}
    sightings: dict[str, tuple[dt.datetime, bool]] = {}
    try:
        for row in db.execute(f"SELECT {COLUMNS} FROM jobs ORDER BY id"):  # noqa: S608
            entry = _entry(row)
            entries[entry.key] = entry
        for key, state, at in db.execute("SELECT key, state, at FROM transitions ORDER BY id"):
            history[key] = (*history.get(key, ()), (JobState(state), _parse_time(at)))
        attempts = _read_attempts(db)
        for task_id, first_seen, orphan in db.execute(
            "SELECT task_id, first_seen, orphan FROM sightings"
        ):
            sightings[task_id] = (_parse_time(first_seen), bool(orphan))
        bills = {
            key: int(total)
            for key, total in db.execute("SELECT key, SUM(detections) FROM bills GROUP BY key")
        }
    except (ValueError, TypeError, KeyError) as exc:
        raise JournalError(f"holds a row this version cannot read: {exc}", path=path) from exc
    (jobs_file,) = db.execute("SELECT value FROM meta WHERE name = 'jobs_file'").fetchone() or (
        None,
    )
    return entries, history, attempts, sightings, jobs_file, bills


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
    """The ``jobs`` columns, in ``COLUMNS`` order."""
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

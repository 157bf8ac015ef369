"""The journal's file: its format, its schema and upgrades, and how it is opened.

Storage is one SQLite file: ``meta`` (name and value: the format name, the
schema version and, once :meth:`Journal.record_jobs_file` names it, the jobs
file the journal belongs to), ``jobs`` (one row per key: its current state and
fields, boxes and video as JSON), ``transitions`` (append-only: key, state,
time), ``attempts`` (every paid attempt), ``sightings`` (the tasks seen in
the account's list) and ``bills`` (detections billed that no job's row counts:
answers lost by a detection that then failed). A new row of ``meta`` is no new
schema: a version that does not know it reads and writes the file as before.
The WAL is fsynced on commit (``synchronous=FULL``), so a process killed at
any moment leaves every completed step readable, and even a power cut keeps
them. The file is held with an exclusive lock while open, so a second run of
the same batch cannot open it and submit the same jobs again.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, TypeVar

from ._errors import JournalError

__all__ = ["FORMAT", "SCHEMA_VERSION", "connect"]

_T = TypeVar("_T")

#: Names the file format, so that another SQLite file is never taken for a journal.
FORMAT: Final = "emoji_async journal"
#: The schema this version reads and writes; any other is refused rather than guessed at.
SCHEMA_VERSION: Final = 5

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

_BILLS_SCHEMA: Final = (
    """CREATE TABLE bills (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        detections INTEGER NOT NULL,
        at TEXT NOT NULL
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
    # 4: detections billed that no job's row counts (a detection whose answers were
    # lost, then failed), so that a rerun's spending counts them. An earlier version
    # never recorded them: its journal upgrades with none.
    3: _BILLS_SCHEMA,
    # 5: a job's state may be PREEMPTING (its task being moved aside for an interactive
    # one). No table changes; the version tells an earlier release, which would not
    # know the state, to refuse the file rather than misread it.
    4: (),
}

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
    *_BILLS_SCHEMA,
)


def connect(
    path: Path, load: Callable[[sqlite3.Connection, Path], _T]
) -> tuple[sqlite3.Connection, _T]:
    """Open (or create, or upgrade) the file and ``load`` it; runs on the journal's thread.

    A file refused, or one ``load`` cannot read, is closed again before the error is raised.
    A missing folder is made: a journal kept in the batch's ``download_to`` is
    opened before that folder is (a journal refused must leave nothing made).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JournalError(f"cannot be opened: {exc}", path=path) from exc
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
        loaded = load(db, path)
    except BaseException as exc:
        db.close()
        if isinstance(exc, sqlite3.Error):
            raise _refused(path, exc) from exc
        raise
    return db, loaded


def _refused(path: Path, exc: sqlite3.Error) -> JournalError:
    """What SQLite's refusal to open or read the file means for the journal."""
    if "locked" in str(exc):
        return JournalError(
            "is in use by another run (close it first; two runs of one batch"
            " would submit the same jobs twice)",
            path=path,
        )
    return JournalError(f"is not an emoji_async journal: {exc}", path=path)


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

"""The journal of a batch run without one: the journal's calls, recording nothing.

A batch always has a journal to speak to; when it was given no file, it is a
:class:`NullJournal`, so the batch reads as one path and never asks whether
it has a journal. The null journal knows no job, keeps no step, opens no file
and starts no thread: every call returns at once, having done nothing.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Final

from ._journal import Journal
from ._journal_entries import JournalAttempt, JournalEntry
from ._models import BBox, TaskStatus, VideoResult

__all__ = ["BatchJournal", "NullJournal"]


class NullJournal:
    """Stands in for :class:`Journal` in a batch that has none; see the module's docstring."""

    #: Nothing this run leaves can be resumed by another: an abandoned task is cancelled.
    resumable: Final = False

    def get(self, key: str) -> JournalEntry | None:
        """No job is ever known."""
        return None

    def resume(self, key: str, *, image: str, driven_id: str) -> JournalEntry | None:
        """No earlier run left anything."""
        return None

    def entries(self) -> list[JournalEntry]:
        return []

    def attempts(self) -> list[JournalAttempt]:
        return []

    def sightings(self) -> list[tuple[str, dt.datetime, bool]]:
        return []

    def bills(self) -> dict[str, int]:
        return {}

    async def aclose(self) -> None:
        """Nothing to close."""

    async def detected(
        self,
        key: str,
        *,
        image: str,
        driven_id: str,
        face_bbox: BBox,
        ext_bbox: BBox,
        billed: int = 1,
    ) -> None:
        pass

    async def rejected(
        self,
        key: str,
        *,
        image: str,
        driven_id: str,
        code: str,
        message: str,
        billed: int = 1,
    ) -> None:
        pass

    async def billed(self, key: str, *, detections: int) -> None:
        pass

    async def submitting(
        self, key: str, *, image: str, driven_id: str, face_bbox: BBox, ext_bbox: BBox
    ) -> None:
        pass

    async def submitted(self, key: str, *, task_id: str) -> None:
        pass

    async def uncertain(self, key: str, *, reason: str) -> None:
        pass

    async def resubmitting(self, key: str, *, reason: str) -> None:
        pass

    async def unsent(self, key: str, *, reason: str, proven: bool = True) -> None:
        pass

    async def failed(self, key: str, *, code: str | None, message: str) -> None:
        pass

    async def preempting(self, key: str, *, by: str) -> None:
        pass

    async def kept(self, key: str) -> None:
        pass

    async def moved_aside(self, key: str) -> None:
        pass

    async def finished(
        self,
        key: str,
        *,
        status: TaskStatus,
        video: VideoResult | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        pass

    async def downloaded(self, key: str, *, path: str | os.PathLike[str], size: int) -> None:
        pass

    def sighted_soon(self, seen: list[tuple[str, float]]) -> None:
        pass

    def orphaned_soon(self, task_id: str) -> None:
        pass


#: The journal a batch speaks to: a file's, or the null one.
BatchJournal = Journal | NullJournal

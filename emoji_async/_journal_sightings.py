"""The tasks a batch's runs saw in the account's list, as its journal records them.

A part of :class:`~emoji_async._journal.Journal` (its base): every task seen in
the list, when first seen, and whether it was an orphan, so that the next run
knows them. The writes go through the journal's thread like every step.
"""

from __future__ import annotations

import abc
import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ._errors import EmojiError
from ._journal_store import JournalFile

__all__ = ["Sightings"]

log = logging.getLogger("emoji_async")

_T = TypeVar("_T")


class Sightings(abc.ABC):
    """The journal's record of the tasks seen in the account's list."""

    _file: JournalFile
    _lock: threading.Lock
    _sightings: dict[str, tuple[dt.datetime, bool]]
    #: Steps asked for from callbacks, awaited before the file closes.
    _soon: set[asyncio.Task[None]]

    @abc.abstractmethod
    async def _on_thread(self, write: Callable[[], _T], key: str | None = None) -> _T:
        """``write`` run on the journal's thread, after the writes asked for before it."""

    def sightings(self) -> list[tuple[str, dt.datetime, bool]]:
        """Every task seen in the account's list: its id, when first seen, whether an orphan."""
        with self._lock:
            return [(task_id, *seen) for task_id, seen in self._sightings.items()]

    async def sighted(self, seen: list[tuple[str, float]]) -> None:
        """Tasks first seen in the account's list (epoch seconds): the next run knows them."""
        rows = [
            (task_id, dt.datetime.fromtimestamp(at, dt.UTC))
            for task_id, at in seen
            if task_id not in self._sightings
        ]
        if rows:
            await self._record_sightings(self._file.sighted, rows)

    async def orphaned(self, task_id: str) -> None:
        """A task no job holds (cancelled, or billed unheld): never a candidate again."""
        await self._record_sightings(self._file.orphaned, task_id, dt.datetime.now(dt.UTC))

    def sighted_soon(self, seen: list[tuple[str, float]]) -> None:
        """:meth:`sighted`, asked for from a callback: written before the file closes."""
        if seen:
            self._background(self.sighted(seen))

    def orphaned_soon(self, task_id: str) -> None:
        """:meth:`orphaned`, asked for from a callback: written before the file closes."""
        self._background(self.orphaned(task_id))

    def _background(self, step: Coroutine[Any, Any, None]) -> None:
        async def quietly() -> None:
            try:
                await step
            except EmojiError as exc:
                log.warning("could not record in the journal: %s", exc)

        task = asyncio.get_running_loop().create_task(quietly())
        self._soon.add(task)
        task.add_done_callback(self._soon.discard)

    async def _record_sightings(
        self, write: Callable[..., dict[str, tuple[dt.datetime, bool]]], *args: Any
    ) -> None:
        def written() -> None:
            loaded = write(*args)
            with self._lock:
                self._sightings.update(loaded)

        await self._on_thread(written)

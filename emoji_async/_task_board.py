"""The client's own live tasks in submission order, and how many are ahead of one.

A :class:`TaskBoard`, one per client, knows the client's own live tasks in
submission order. A task queued behind others of ours cannot start before
they end, so its watcher sleeps until one of them ends instead of polling a
queue where only the head can move.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from collections.abc import Callable

__all__ = ["TaskBoard"]


class TaskBoard:
    """The client's live, watched tasks in submission order.

    Kept as a sorted list, so counting the tasks ahead of one is a binary
    search: ten thousand tasks in flight cost no more per poll than ten.

    With shared pacing the backend also tells it of the account's other
    tasks (:meth:`elsewhere`): those submitted earlier by other processes
    count as ahead too, and their ends move ``last_end``.
    """

    def __init__(self, on_release: Callable[[str, float | None], None] | None = None) -> None:
        # (submission time in epoch seconds, registration number): ties keep arrival order.
        self._keys: dict[str, tuple[float, int]] = {}
        self._on_release = on_release
        self._foreign: Callable[[str], int] | None = None
        self._sorted: list[tuple[float, int]] = []
        self._seq = itertools.count()
        self._ended = asyncio.Event()
        self.last_end: float | None = None

    def watch(self, task_id: str, submitted: float | None) -> None:
        """Follow ``task_id``, ordered by ``submitted`` (epoch seconds; now if unknown)."""
        if task_id not in self._keys:
            key = (submitted or time.time(), next(self._seq))
            self._keys[task_id] = key
            bisect.insort(self._sorted, key)

    def release(self, task_id: str, ended: float | None = None) -> None:
        """The task ended (at ``ended``, epoch seconds, if known) or nobody follows it any more.

        The tasks behind it move up; the latest end seen is kept in ``last_end``,
        which is when the next queued task started on a one-slot account.
        """
        if ended is not None and (self.last_end is None or ended > self.last_end):
            self.last_end = ended
        key = self._keys.pop(task_id, None)
        if key is not None:
            del self._sorted[bisect.bisect_left(self._sorted, key)]
            self._wake()
        if self._on_release is not None:
            self._on_release(task_id, ended)

    def _wake(self) -> None:
        self._ended.set()
        self._ended = asyncio.Event()

    def elsewhere(
        self, ahead: Callable[[str], int], *, last_end: float | None, moved: bool
    ) -> None:
        """The account's other processes: how many of their tasks are ahead of one of ours.

        ``last_end`` is the latest end any of them saw; ``moved`` says some
        of their tasks ended since the last call, which wakes the waiters.
        """
        self._foreign = ahead
        if last_end is not None and (self.last_end is None or last_end > self.last_end):
            self.last_end = last_end
        if moved:
            self._wake()

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def ahead(self, task_id: str) -> int:
        """How many of the client's live tasks (and the account's, if shared) are ahead of it."""
        key = self._keys.get(task_id)
        if key is None:
            return 0
        mine = bisect.bisect_left(self._sorted, key)
        return mine if self._foreign is None else mine + self._foreign(task_id)

    async def next_release(self) -> None:
        """Return when any followed task ends or is let go."""
        await self._ended.wait()

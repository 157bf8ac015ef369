"""The account's queue as one process sees it through shared pacing.

Every process counts its tasks in flight in Redis, each with its place in the
account's submit order (submits are serialized by the lock, so the order of
the places is the provider's queue). :class:`QueueView` keeps this process's
places and, from each read of the queue (every submit interval while it
follows tasks), the other processes':

* another process's task submitted earlier is ahead of ours on the
  :class:`~emoji_async._task_board.TaskBoard`, so a task that cannot have
  started is not polled, and the start of one that has is known;
* another process's interactive task moves aside this process's movable bulk
  tasks placed before it (:meth:`~emoji_async._lanes.Lanes.overtaken`): only
  the process that owns a batch can journal and resubmit its jobs.

Plain bookkeeping, no ``redis``: :mod:`~emoji_async._shared` reads the queue.
"""

from __future__ import annotations

import bisect
import functools
from typing import Any

from ._lanes import Lanes
from ._task_board import TaskBoard

__all__ = ["QueueView"]

#: This process's places kept, at most: past it, the oldest half (ended long ago) goes.
_KEPT = 10_000


def _pairs(flat: list[Any]) -> dict[str, int]:
    """Redis's ``member, score, ...`` answer as a mapping."""
    return {str(flat[i]): int(float(flat[i + 1])) for i in range(0, len(flat), 2)}


class QueueView:
    """Where this process's tasks stand in the account's queue, among the other processes'."""

    def __init__(self) -> None:
        self.board: TaskBoard | None = None
        self.lanes: Lanes | None = None
        #: Each task this process submitted: its place in the account's submit order.
        self._places: dict[str, int] = {}
        #: The places of the other processes' tasks in flight, as last seen.
        self._elsewhere: dict[str, int] = {}
        self._elsewhere_sorted: list[int] = []
        #: The other processes' interactive tasks this process has moved its bulk ones for.
        self._overtaken: set[str] = set()

    def placed(self, task_id: str, place: int) -> None:
        """This process's ``task_id`` took ``place`` in the account's submit order."""
        self._places[task_id] = place
        if len(self._places) > _KEPT:  # the oldest ended long ago
            for old in list(self._places)[: _KEPT // 2]:
                del self._places[old]

    def seen(self, queue: list[Any], last_end: str, interactive: list[Any]) -> None:
        """One read of the account's queue (task, place, ...), the latest end any process
        saw (ms, or ``''``), and the interactive tasks in the queue (task, place, ...)."""
        places = {task: place for task, place in _pairs(queue).items() if task not in self._places}
        moved = any(task_id not in places for task_id in self._elsewhere)
        self._elsewhere = places
        self._elsewhere_sorted = sorted(places.values())
        if self.board is not None:
            self.board.elsewhere(
                self._ahead_elsewhere,
                last_end=float(last_end) / 1000 if last_end else None,
                moved=moved,
            )
        self._overtake(_pairs(interactive))

    def _ahead_elsewhere(self, task_id: str) -> int:
        """How many of the other processes' tasks in flight were submitted before ``task_id``."""
        place = self._places.get(task_id)
        return 0 if place is None else bisect.bisect_left(self._elsewhere_sorted, place)

    def _overtake(self, interactive: dict[str, int]) -> None:
        """Move aside this process's bulk tasks placed before another process's interactive ones."""
        self._overtaken &= set(interactive)
        for by, place in interactive.items():
            if by in self._places or by in self._overtaken:
                continue  # this process's own (its Lanes saw it made), or seen already
            self._overtaken.add(by)
            if self.lanes is not None:
                self.lanes.overtaken(by, functools.partial(self._before, place))

    def _before(self, place: int, task_id: str) -> bool:
        """Whether this process's ``task_id`` was submitted before the task at ``place``."""
        mine = self._places.get(task_id)
        return mine is not None and mine < place

"""Which of this client's bulk tasks an interactive task moves aside, and when.

The account runs one task at a time and queues the rest first in, first out,
so an interactive task created behind a batch's queued tasks would wait for
all of them. :class:`Lanes` knows the order in which this client's tasks were
created and their lanes. When an interactive task is created, every bulk task
created before it whose batch can move it (it registered a *mover*,
:meth:`Lanes.movable`) is handed to that mover, which cancels it while it is
PENDING (free: only successful tasks are billed) and submits its job again,
behind. The mover decides whether the task is still worth moving (not
running, not moved too often: :data:`~emoji_async._lane_lock.MAX_OVERTAKEN`).

A bulk task a caller submitted alone (``submit(lane=Lane.BULK)``) has no
mover: nothing here could submit it again, so it is never cancelled.

With shared pacing, another process's interactive task moves aside this
client's bulk tasks submitted before it in the account's order
(:meth:`Lanes.overtaken`, called by the backend when it learns of that task).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import itertools
import logging
from collections.abc import Awaitable, Callable

from ._values import Lane

__all__ = ["Lanes", "Mover"]

log = logging.getLogger("emoji_async")

#: Moves one bulk task aside for the interactive task ``by`` (its id).
Mover = Callable[[str], Awaitable[None]]

#: Bulk tasks remembered without a mover, at most (a caller's own bulk submits
#: that nobody will ever move): the oldest are forgotten first.
_UNCLAIMED = 4096


class Lanes:
    """This client's tasks in creation order, by lane, and the movers of its batches."""

    def __init__(self) -> None:
        self._serial = itertools.count()
        #: Bulk tasks created and not yet ended, by id: when each was created.
        self._bulk: collections.OrderedDict[str, int] = collections.OrderedDict()
        #: Each movable task's mover, and the context (its job's) it runs in.
        self._movers: dict[str, tuple[Mover, contextvars.Context]] = {}
        #: An interactive task created after a bulk one whose mover had not come yet.
        self._owed: dict[str, str] = {}
        self._work: set[asyncio.Task[None]] = set()

    def created(self, task_id: str, lane: Lane) -> None:
        """A submit of this client created ``task_id`` in ``lane`` (called in creation order)."""
        serial = next(self._serial)
        if lane is Lane.BULK:
            self._bulk[task_id] = serial
            if len(self._bulk) - len(self._movers) > _UNCLAIMED:
                for old in list(self._bulk):
                    if old not in self._movers:
                        self.forget(old)
                        break
            return
        self._move_aside(task_id, lambda _, made: made < serial)

    def overtaken(self, by: str, before: Callable[[str], bool]) -> None:
        """Another process created the interactive task ``by``.

        Each bulk task of this client submitted before it (``before(task_id)``,
        in the account's order) is moved aside, as for one of this client's.
        """
        self._move_aside(by, lambda bulk_id, _: before(bulk_id))

    def _move_aside(self, by: str, earlier: Callable[[str, int], bool]) -> None:
        """Hand each bulk task ``earlier(task_id, serial)`` than ``by`` to its mover."""
        for bulk_id, made in list(self._bulk.items()):
            if earlier(bulk_id, made):
                held = self._movers.get(bulk_id)
                if held is None:
                    self._owed[bulk_id] = by
                else:
                    self._run(held, by)

    def movable(self, task_id: str, mover: Mover) -> None:
        """``task_id`` (bulk) can be moved aside by ``mover`` until :meth:`forget`.

        The mover runs in the caller's context (its job's, for the job's events).
        """
        if task_id not in self._bulk:
            return  # not created by this client (a task an earlier run left), or ended
        held = (mover, contextvars.copy_context())
        self._movers[task_id] = held
        by = self._owed.pop(task_id, None)
        if by is not None:
            self._run(held, by)

    def holds(self, task_id: str) -> bool:
        """Whether ``task_id`` can be moved aside (a mover holds it)."""
        return task_id in self._movers

    def forget(self, task_id: str) -> None:
        """``task_id`` ended, was moved aside, or nobody can move it any more."""
        self._bulk.pop(task_id, None)
        self._movers.pop(task_id, None)
        self._owed.pop(task_id, None)

    def _run(self, held: tuple[Mover, contextvars.Context], by: str) -> None:
        mover, context = held

        async def moving() -> None:
            try:
                await mover(by)
            except Exception:  # a move that fails leaves the task where it was
                log.exception("moving a bulk task aside failed")

        task = asyncio.get_running_loop().create_task(moving(), context=context)
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def aclose(self) -> None:
        """Stop the moves still running (a rerun finishes what a journal recorded)."""
        for task in list(self._work):
            task.cancel()
        await asyncio.gather(*self._work, return_exceptions=True)

"""The account's submit turn: interactive submits first, bulk ones never starved.

Paid submits leave one at a time (see :mod:`~emoji_async._reconcile`). When the
turn is let go, a waiting interactive submit takes it before any waiting bulk
one: a person is waiting for that video. A bulk submit lets at most
:data:`MAX_OVERTAKEN` interactive turns go ahead of it, then it goes next, so a
steady stream of interactive work slows a batch but never stops it. Turns
asked for without a lane (looks at the task list that settle a lost answer)
are short and go first too, without counting against a bulk submit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

from ._values import Lane

__all__ = ["MAX_OVERTAKEN", "LaneLock"]

#: Interactive turns (or tasks, see :mod:`~emoji_async._lanes`) that may go
#: ahead of one bulk job, at most: the bound on how long a batch can be held back.
MAX_OVERTAKEN = 3


class _Waiter:
    __slots__ = ("future", "lane", "passed")

    def __init__(self, future: asyncio.Future[None], lane: Lane | None) -> None:
        self.future = future
        self.lane = lane
        #: Interactive turns given before this (bulk) waiter's.
        self.passed = 0


class LaneLock:
    """A lock whose waiters are served interactive first, each bulk one passed at most
    :data:`MAX_OVERTAKEN` times; within a lane, first come first served."""

    def __init__(self) -> None:
        self._held = False
        self._first: collections.deque[_Waiter] = collections.deque()
        self._bulk: collections.deque[_Waiter] = collections.deque()

    def locked(self) -> bool:
        """Whether the turn is taken."""
        return self._held

    @contextlib.asynccontextmanager
    async def turn(self, lane: Lane | None) -> AsyncIterator[None]:
        """Hold the turn within the block; ``lane`` ``None``: a short look, served first."""
        await self._acquire(lane)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, lane: Lane | None) -> None:
        if not self._held and not self._first and not self._bulk:
            self._held = True
            return
        waiter = _Waiter(asyncio.get_running_loop().create_future(), lane)
        queue = self._bulk if lane is Lane.BULK else self._first
        queue.append(waiter)
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self._release()  # handed the turn just as it was cancelled: pass it on
            else:
                queue.remove(waiter)
            raise

    def _release(self) -> None:
        bulk = self._bulk[0] if self._bulk else None
        if self._first and (bulk is None or bulk.passed < MAX_OVERTAKEN):
            waiter = self._first.popleft()
            if waiter.lane is Lane.INTERACTIVE:
                for behind in self._bulk:
                    behind.passed += 1
        elif bulk is not None:
            waiter = self._bulk.popleft()
        else:
            self._held = False
            return
        waiter.future.set_result(None)  # the turn passes straight to it: still held

"""A batch's bulk tasks moved aside for interactive ones, and submitted again behind.

The account runs one task at a time, first in, first out. When this client
creates an interactive task (:class:`~emoji_async.Lane`), each bulk task of a
batch created before it and still PENDING is cancelled (free while PENDING:
only successful tasks are billed), and its job is submitted again, behind the
interactive task. Each step is in the batch's journal before it is taken:

1. ``preempting``: before the cancel leaves. A run that stops here left a task
   that may or may not be cancelled: the rerun follows it, and a task it then
   finds CANCELED was moved aside, so the job is submitted again.
2. The cancel is answered: cancelled (``moved_aside``: back to DETECTED, the
   job is submitted again) or too late, the task already started (``kept``:
   the task runs and stays the job's). A cancel whose answer is lost leaves
   the watcher to tell which it was.

A task at the head of this client's queue (as many of ours ahead of it as the
account has slots: none, on one slot) is running or about to, and is left
alone. The batch's oldest waiting job (the one whose first task was made
first, among those queued behind the head) is moved aside at most
:data:`~emoji_async._lane_lock.MAX_OVERTAKEN` times while it is the oldest:
then it stays, and runs after at most that many interactive tasks. A steady
stream of interactive work slows a batch, never stops it; the younger jobs,
queued behind the oldest anyway, are moved as often as visitors come.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable

from ._api import ServiceAPI
from ._errors import EmojiError, JournalError, TaskCanceledError, TaskNotCancelableError
from ._journal import JobState
from ._journal_null import BatchJournal
from ._lane_lock import MAX_OVERTAKEN
from ._models import TaskStatus, VideoResult
from ._reporting import report
from ._task import Task
from .events import Preempted

__all__ = ["Moves"]

log = logging.getLogger("emoji_async")


class Moves:
    """One batch's moves of its bulk tasks; see the module's docstring."""

    def __init__(self, api: ServiceAPI) -> None:
        self._api = api
        #: The batch's journal: set by the batch once it is open.
        self.journal: BatchJournal | None = None
        #: Times each job's task was moved aside.
        self.moved: collections.Counter[str] = collections.Counter()
        #: Cancels sent to move tasks aside, those that came too late included.
        self.cancels = 0
        #: The move under way for each job: its end is awaited before the job's end.
        self._moving: dict[str, asyncio.Future[None]] = {}
        #: Tasks a cancel was sent for in this run: a CANCELED end is a move.
        self._asked: set[str] = set()
        #: Each job waiting for its video: when its first task was made, its task now.
        self._waiting: dict[str, tuple[float, Task]] = {}
        #: Times each job was moved aside while it was the batch's oldest waiting one.
        self._as_oldest: collections.Counter[str] = collections.Counter()

    async def follow(
        self, key: str, task: Task, follow: Callable[[], Awaitable[VideoResult]]
    ) -> VideoResult | None:
        """``follow()``'s video; ``None`` when the task was moved aside (journaled).

        The job is then to be submitted again, its boxes kept.
        """
        since = self._waiting.get(key, (time.monotonic(), task))[0]
        self._waiting[key] = (since, task)
        video = await self._follow(key, task, follow)
        if video is not None:
            del self._waiting[key]
        return video

    async def _follow(
        self, key: str, task: Task, follow: Callable[[], Awaitable[VideoResult]]
    ) -> VideoResult | None:
        lanes = self._api.pacing.lanes
        moved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lanes.movable(task.task_id, functools.partial(self._move, key, task, moved))
        following = asyncio.ensure_future(follow())
        try:
            await asyncio.wait((following, moved), return_when=asyncio.FIRST_COMPLETED)
            step = self._moving.get(key)
            if step is not None:  # a move under way: how it went decides
                await asyncio.shield(step)
        except BaseException:
            following.cancel()
            self._waiting.pop(key, None)
            raise
        finally:
            lanes.forget(task.task_id)
        if moved.done():
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
            await self._journal().moved_aside(key)
            return None
        try:
            return following.result()
        except TaskCanceledError:
            entry = self._journal().get(key)
            recorded = entry is not None and entry.state is JobState.PREEMPTING
            if task.task_id not in self._asked and not recorded:
                self._waiting.pop(key, None)
                raise  # cancelled by someone else: the job's end
            # A cancel whose answer was lost, or sent by a run that stopped after
            # recording it: the task was moved aside all the same.
            self.moved[key] += 1
            await self._journal().moved_aside(key)
            return None
        except BaseException:
            self._waiting.pop(key, None)
            raise

    def _journal(self) -> BatchJournal:
        assert self.journal is not None, "the batch sets its journal before any job runs"
        return self.journal

    async def _move(self, key: str, task: Task, moved: asyncio.Future[None], by: str) -> None:
        """Cancel ``task`` while PENDING for the interactive task ``by``; see the docstring."""
        if moved.done() or key in self._moving:
            return
        if not self._api.pacing.lanes.holds(task.task_id):
            return  # its job stopped following it meanwhile
        if not self._queued(task):
            return  # at the head of the queue: running, or about to
        queued = [(since, job) for job, (since, t) in self._waiting.items() if self._queued(t)]
        if min(queued)[1] == key:  # the batch's oldest waiting job: moved a bounded number
            if self._as_oldest[key] >= MAX_OVERTAKEN:
                return
            self._as_oldest[key] += 1
        step: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._moving[key] = step
        try:
            await self._cancel(key, task, moved, by)
        finally:
            del self._moving[key]
            step.set_result(None)

    def _queued(self, task: Task) -> bool:
        """Whether ``task`` waits behind the head of the queue (the head runs, or is about to)."""
        last = task.last_snapshot
        if last is not None and last.status is not TaskStatus.PENDING:
            return False
        pacing = self._api.pacing
        slots = pacing.limits.running_tasks if pacing.limits is not None else 1
        return pacing.board.ahead(task.task_id) >= slots

    async def _cancel(self, key: str, task: Task, moved: asyncio.Future[None], by: str) -> None:
        journal = self._journal()
        try:
            await journal.preempting(key, by=by)
        except JournalError:
            return  # the task ended meanwhile: nothing to move
        self._asked.add(task.task_id)
        self.cancels += 1
        try:
            try:
                await self._api.cancel(task.task_id)
                cancelled = True
            except TaskNotCancelableError:
                cancelled = (await task.refresh()).status is TaskStatus.CANCELED
        except EmojiError as exc:
            # The task may or may not be cancelled: its watcher will see which.
            log.warning("moving task %s aside: %s", task.task_id, exc)
            return
        if not cancelled:
            log.info("task %s started before it could be moved aside", task.task_id)
            with contextlib.suppress(JournalError):  # it ended meanwhile
                await journal.kept(key)
            return
        self.moved[key] += 1
        moves = self.moved[key]
        # Off the board: the tasks behind it move up, their watchers wake.
        self._api.pacing.board.release(task.task_id)
        report(lambda key: Preempted(key=key, task_id=task.task_id, by=by, moves=moves))
        moved.set_result(None)

"""Tasks no job can hold: made aside while they cost nothing, reported when they cannot be.

A task only ghosts may have made (attempts whose answer was lost and whose
job moved on: sent again, or given up) is an *orphan*: nobody will ever hold
it. Only successful tasks are billed, so an orphan still PENDING is cancelled
(free), one that ended without a video is left as it is, and one already
running or done is reported with its id (log, :class:`~emoji_async.OrphanTask`,
events), as it is billed if it succeeds. A candidate a settlement cannot
prove anyone's is moved aside the same way. Nothing another program made is
ever touched: only tasks the ledger says this client's attempts may have
made are orphans.
"""

from __future__ import annotations

import datetime as dt
import logging

from ._api import ServiceAPI
from ._errors import EmojiError, TaskNotCancelableError
from ._ledger import Ledger
from ._models import OrphanTask, TaskStatus, TaskSummary
from ._records import Records
from ._verdicts import FREE_ENDS, is_free

__all__ = ["Orphans"]

log = logging.getLogger("emoji_async")


class Orphans:
    """Moves aside the tasks no job can hold, and records them."""

    def __init__(self, api: ServiceAPI, ledger: Ledger, records: Records) -> None:
        self._api = api
        self._account = api.pacing.backend
        self.ledger = ledger
        self._records = records

    async def move_aside(self, task: TaskSummary, owners: tuple[str, ...]) -> bool:
        """Make a task nobody may hold cost nothing; ``False`` if it is already billable."""
        if task.status is not TaskStatus.PENDING:
            self.ledger.orphaned(task.task_id)  # ended without a video: free as it is
            return True
        try:
            await self._api.cancel(task.task_id)
        except EmojiError as exc:
            # Not PENDING any more, or the cancel's own answer was lost: the task says.
            try:
                snapshot = await self._api.get_task(task.task_id)
            except EmojiError:
                log.warning("could not cancel task %s: %s", task.task_id, exc)
                return False
            if snapshot.status is TaskStatus.CANCELED:
                self.record(task, owners, cancelled=True)
                return True
            if snapshot.status in FREE_ENDS:
                self.ledger.orphaned(task.task_id)
                return True
            if not isinstance(exc, TaskNotCancelableError):
                log.warning("could not cancel task %s: %s", task.task_id, exc)
            return False
        self.record(task, owners, cancelled=True)
        return True

    def record(self, task: TaskSummary, owners: tuple[str, ...], *, cancelled: bool) -> None:
        """Record an orphan (cancelled, or billable as listed), and tell the listeners."""
        self.ledger.orphaned(task.task_id)
        self._account.remember_later(
            [task.task_id], lambda work: self._records.spawn(work, "record an orphan")
        )
        record = OrphanTask(
            task_id=task.task_id,
            status=TaskStatus.CANCELED if cancelled else task.status,
            cancelled=cancelled,
            owners=owners,
            seen_at=dt.datetime.now(dt.UTC),
        )
        self._records.orphans.append(record)
        if cancelled:
            log.info("task %s, which no job can hold, was cancelled while PENDING", task.task_id)
        else:
            log.warning(
                "task %s was made by a submit whose answer was lost (one of: %s) and no job"
                " holds it; it was already %s and could not be cancelled: it is billed if it"
                " succeeds",
                task.task_id,
                ", ".join(owners),
                task.raw_status,
            )
        self._records.tell(record)

    async def tidy(self) -> None:
        """Cancel the orphans seen while PENDING; report the ones already billable."""
        for task, owners in self.ledger.orphans():
            if task.status is TaskStatus.PENDING:
                if not await self.move_aside(task, owners):
                    listed = self.ledger.status(task.task_id) or task
                    self.record(listed, owners, cancelled=False)
            elif is_free(task):
                self.ledger.orphaned(task.task_id)
            else:
                self.record(task, owners, cancelled=False)

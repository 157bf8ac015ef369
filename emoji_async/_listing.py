"""The account's task list as a submitter reads it: the baseline, each look, the sweep.

Every look lists the account's ``emoji-v1`` tasks into the ledger, then tidies
the orphans it shows (:mod:`~emoji_async._orphans`). It is made under the
account's submit lock, so no submit is on the wire meanwhile.

Time is the client's own: a task seen in a listing that arrived before an
attempt left cannot be that attempt's. Neither the service's clock nor the
zone in which it reads the list's time filters matters: the list is read
without them, newest first when the service orders it so.

Before the first paid submit the whole list is read once (the *baseline*):
every task already in it is no one's here. Between settlements, while ghosts
may still make tasks, the list is swept every ``RetryPolicy.orphan_sweep``
seconds, so that a task only ghosts may have made is cancelled while PENDING;
a batch lingers until its youngest ghost is ``RetryPolicy.orphan_linger`` old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ._api import GENERATE_MODEL, ServiceAPI
from ._errors import EmojiError, UnexpectedResponseError
from ._ledger import Ledger
from ._orphans import Orphans
from ._records import Records

__all__ = ["TaskList"]

log = logging.getLogger("emoji_async")

_PAGE_SIZE = 100
#: Pages read per listing: a day of one account's emoji tasks fits in far fewer.
_MAX_PAGES = 50


class TaskList:
    """Reads the account's task list into the ledger, and sweeps it for orphans."""

    def __init__(self, api: ServiceAPI, ledger: Ledger, records: Records, orphans: Orphans) -> None:
        self._api = api
        self._account = api.pacing.backend
        self.ledger = ledger
        self._records = records
        self._orphans = orphans
        self._baseline_lock = asyncio.Lock()
        self.sweeper: asyncio.Task[None] | None = None

    @property
    def margin(self) -> float:
        """How far before a moment a listing reads on, for entries stamped out of order."""
        return (self._api.retry.reconcile_window or 0.0) * 0.1

    async def baseline(self) -> None:
        """Before the first paid submit, see every task already in the list: none is ours."""
        if self.ledger.baseline is not None or self._api.retry.reconcile_window is None:
            return
        async with self._baseline_lock:
            if self.ledger.baseline is not None:
                return
            try:
                await self.look(None)
            except EmojiError as exc:
                # Without it, a task older than this client may look like a candidate:
                # settling is then stricter, never wrong.
                log.warning("could not read the task list before the first submit: %s", exc)
                return
            self.ledger.baseline = self.ledger.now()

    async def look(self, horizon: float | None) -> None:
        """List the account's emoji tasks into the ledger, then tidy the orphans.

        No time filter is sent: the zone the service reads it in is not
        documented. Pages are read until one ends with a task first seen
        before ``horizon``, as long as the list is newest first; otherwise (or
        with no horizon) every page is read.
        """
        ordered = True
        newest: int | None = None
        page_no = 1
        while True:
            # Whole pages only: a row left out could be the very task looked for.
            page = await self._api.list_tasks(
                model=GENERATE_MODEL, page=page_no, page_size=_PAGE_SIZE, whole=True
            )
            at = self.ledger.now()
            expected = min(max(page.total - (page_no - 1) * page.page_size, 0), page.page_size)
            if len(page.tasks) < min(expected, _PAGE_SIZE):
                # Fewer tasks than the page's own count: proof of nothing.
                raise UnexpectedResponseError(
                    f"a task list page holds {len(page.tasks)} tasks of {page.total}",
                    request_id=page.request_id,
                )
            tasks = [t for t in page.tasks if t.model_name in (None, GENERATE_MODEL)]
            for task in tasks:
                stamp = None if task.created_at is None else int(task.created_at.timestamp() * 1e3)
                if stamp is None or (newest is not None and stamp > newest):
                    ordered = False
                newest = stamp if stamp is not None else newest
            new = self.ledger.observe(tasks, at)
            if new:
                for tell in list(self._records.seen_listeners):
                    tell(new)
            if page_no >= page.total_pages or not page.tasks:
                break
            last = self.ledger.seen_at(page.tasks[-1].task_id)
            if horizon is not None and ordered and last is not None and last < horizon:
                break
            if page_no >= _MAX_PAGES:
                if horizon is None:
                    break  # the baseline: older tasks than these are no one's here
                raise UnexpectedResponseError(
                    f"the task list has more than {_MAX_PAGES} pages in no usable order"
                )
            page_no += 1
        # Tasks another process of the account made are explained (none in one process).
        self.ledger.elsewhere(await self._account.known(self.ledger.unexplained_ids()))
        await self._orphans.tidy()

    def watch(self) -> None:
        """Sweep the list for orphans while ghosts may still make tasks."""
        interval = self._api.retry.orphan_sweep
        if interval is None or (self.sweeper is not None and not self.sweeper.done()):
            return
        if not self.ledger.has_ghosts:
            return
        self.sweeper = asyncio.get_running_loop().create_task(
            self._sweep(interval), name="emoji-orphan-sweep"
        )

    async def _sweep(self, interval: float) -> None:
        last = self.ledger.now()
        board = self._api.pacing.board
        while self.ledger.has_ghosts:
            await asyncio.sleep(interval)
            if not len(board):
                # Nothing of ours in the account's queue: an orphan would start at once,
                # so there is nothing to catch while PENDING (a settlement still looks).
                continue
            started = self.ledger.now()
            try:
                # Under the lock: no submit of this account is on the wire meanwhile.
                async with self._account.submit_lock():
                    await self.look(last - self.margin)
            except EmojiError as exc:
                log.warning("could not sweep the task list for orphans: %s", exc)
                continue
            last = started
            self.ledger.forget_old()

    async def linger(self) -> None:
        """Watch the list until the youngest ghost is ``RetryPolicy.orphan_linger`` old.

        A batch does this before it returns, so that a late task of one of its
        submits is cancelled while PENDING rather than billed after it ended.
        """
        retry = self._api.retry
        if retry.orphan_sweep is None:
            return
        while True:
            youngest = self.ledger.youngest_ghost()
            if youngest is None:
                return
            left = youngest + retry.orphan_linger - self.ledger.now()
            if left <= 0:
                break
            await asyncio.sleep(min(left, retry.orphan_sweep))
            try:
                async with self._account.submit_lock():
                    await self.look(self.ledger.now() - retry.orphan_sweep - self.margin)
            except EmojiError as exc:
                log.warning("could not sweep the task list for orphans: %s", exc)

    async def stop(self) -> None:
        """Stop sweeping."""
        sweeper = self.sweeper
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

"""Paid submits, one at a time per account, each settled: its own task, or provably none.

The provider has no idempotency key; a submit whose answer was lost may still
have created its task, or create it later, much later, and out of order
(docs/wire.md, "Rate limits"); no answer ever shows a task's inputs. So
:class:`Submitter` keeps a :class:`~emoji_async._ledger.Ledger` of every
attempt and every task seen in the account's list, and settles a lost answer
by elimination:

1. Submits leave one at a time (the pacing backend's submit lock), and every
   look at the task list, with what it decides, is made under that lock: no
   submit is on the wire meanwhile.
2. After a lost answer, the client lists the account's ``emoji-v1`` tasks at
   once, still holding the lock, then again with growing waits (other submits
   go on between looks) until ``RetryPolicy.reconcile_window`` has passed
   since the attempt. A damaged answer that still holds the task id, whole or
   its first characters, names the task outright.
3. A task that appeared after the attempt left, and that no other attempt of
   unknown outcome may have made, is the attempt's: it is adopted. Rival
   owners are every attempt whose outcome is unknown: one on the wire, one a
   killed run left in its journal, one settled as fruitless that may still
   be processed late (a *ghost*), and, with shared pacing, another process's.
4. If the ownership cannot be proved, the client does not guess: candidates
   still PENDING are cancelled (free: only successful tasks are billed) and
   the submit is sent again; a candidate already running or done cannot be
   moved aside, and the submit raises :class:`SubmissionUncertainError`
   naming what was sent, when, and the candidates.
5. No task within the window: the submit is sent again (the attempt becomes
   a ghost), at most :data:`RESENDS` times.

Between settlements, while ghosts may still make tasks, the list is swept
every ``RetryPolicy.orphan_sweep`` seconds: a task only ghosts may have made
(an orphan of a late-processed submit) is cancelled while PENDING, and one
that could not be cancelled is reported (log, :class:`OrphanTask`, events)
with its id.

Time is the client's own: a task seen in a listing that arrived before an
attempt left cannot be that attempt's. Neither the service's clock nor the
zone in which it reads the list's time filters matters: the list is read
without them, newest first when the service orders it so.

This holds as long as this client (or, with :class:`~emoji_async.RedisPacing`,
the processes sharing its Redis) is the only one submitting ``emoji-v1`` tasks
on the account; more tasks appearing than its attempts could have made is
taken as someone else's, and nothing of theirs is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import logging
from collections.abc import Callable

from ._api import ServiceAPI
from ._attempts import Attempt, AttemptState
from ._errors import EmojiError, SubmissionUncertainError
from ._ledger import Ledger
from ._listing import TaskList
from ._models import AbandonedTask, OrphanTask
from ._orphans import Orphans
from ._paid_request import PaidRequest
from ._records import Listener, Records, SeenListener
from ._settlement import Resend, Settlement, Waiting
from ._submission import NoHooks, Settled, SubmitHooks, Unsettled

__all__ = ["RESENDS", "Submitter"]

log = logging.getLogger("emoji_async")

#: Resends of one submit after the task list showed no task for it, at most.
RESENDS = 5


class Submitter:
    """The client's paid submits: serialized, recorded, and settled when unanswered.

    The lock, the tasks other processes created and their unsettled submits
    are the pacing backend's: this process's own by default, the account's
    with shared pacing. ``cancel_abandoned``: cancel, while PENDING, a task
    whose caller stopped waiting (it is recorded either way).

    The work is its parts': :class:`~emoji_async._records.Records` keeps what
    is recorded and runs what is left in the background,
    :class:`~emoji_async._orphans.Orphans` moves aside the tasks no job can
    hold, :class:`~emoji_async._listing.TaskList` reads the list and sweeps it,
    and :class:`~emoji_async._settlement.Settlement` settles a lost answer.
    """

    def __init__(
        self, api: ServiceAPI, *, ledger: Ledger | None = None, cancel_abandoned: bool = False
    ) -> None:
        self._api = api
        self._account = api.pacing.backend
        self.ledger = ledger if ledger is not None else Ledger()
        self.cancel_abandoned = cancel_abandoned
        self._records = Records(api)
        self._orphans = Orphans(api, self.ledger, self._records)
        self._list = TaskList(api, self.ledger, self._records, self._orphans)
        self._settlement = Settlement(api, self.ledger, self._list, self._orphans)
        #: The account's tasks in flight a submit waits below (``None``: it never waits).
        self._cap: int | None = None

    # --- views and records ---------------------------------------------------

    def gated(self, cap: int | None) -> Submitter:
        """This submitter, its submits waiting until fewer than ``cap`` tasks are in flight.

        For a batch on shared pacing: all processes together keep the
        provider's queue fed without flooding it. Everything else is shared
        with this submitter (lock, ledger, records).
        """
        view = copy.copy(self)
        view._cap = cap
        return view

    @property
    def orphans(self) -> tuple[OrphanTask, ...]:
        """Tasks no job holds that the client found, cancelled or not, oldest first."""
        return tuple(self._records.orphans)

    @property
    def abandoned(self) -> tuple[AbandonedTask, ...]:
        """Tasks whose caller stopped waiting after their submit was sent, oldest first."""
        return tuple(self._records.abandoned)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Tell ``listener`` of each orphan and abandoned task; returns the unsubscribe."""
        return self._records.subscribe(listener)

    def listening(
        self, listener: Listener, *, on_seen: SeenListener | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Within the block, ``listener`` is told of each orphan and abandoned task,
        ``on_seen`` of the tasks each listing showed for the first time (with when)."""
        return self._records.listening(listener, on_seen=on_seen)

    def know(self, task_ids: list[str]) -> None:
        """Tasks this client (or its journal) created: never adopted by another submit."""
        self.ledger.made(task_ids)
        self._account.remember_later(
            task_ids, lambda work: self._records.spawn(work, "record the tasks known")
        )

    def restored(self) -> None:
        """Attempts an earlier run left were put in the ledger: watch for their late tasks."""
        self._list.watch()

    # --- submitting ----------------------------------------------------------

    async def submit(
        self,
        request: PaidRequest,
        *,
        hooks: SubmitHooks | None = None,
        cancel_if_abandoned: bool | None = None,
    ) -> Settled:
        """Create the task, settling a lost answer through the task list.

        Raises :class:`SubmissionUncertainError` when the ownership of a task
        that appeared cannot be proved and it cannot be cancelled, or the task
        list cannot be read. If the caller is cancelled, the submit still runs
        to its end; its task is then recorded as abandoned (and cancelled while
        PENDING when ``cancel_if_abandoned``, by default ``cancel_abandoned``).
        """
        cancel = self.cancel_abandoned if cancel_if_abandoned is None else cancel_if_abandoned
        work = asyncio.ensure_future(self._submit(request, hooks or NoHooks()))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            if not work.done():
                self._records.keep(work)
            work.add_done_callback(lambda done: self._records.left_behind(done, request, cancel))
            raise

    async def settle(
        self, attempt: Attempt, request: PaidRequest, hooks: SubmitHooks | None = None
    ) -> Settled | None:
        """An earlier run's unanswered attempt (from its journal): its task, or ``None``.

        ``None``: no task of it appeared (or its candidates were cancelled), so
        the job is to be submitted again. Raises like :meth:`submit`.
        """
        unsettled = Unsettled(
            sent_at=dt.datetime.fromtimestamp(attempt.sent_at, dt.UTC),
            inputs=request.inputs(),
            reason="an earlier run stopped after sending the submit",
        )
        try:
            async with self._account.submit_lock():
                await self._list.baseline()
                outcome = await self._settlement.settle(attempt, unsettled, first=True)
            if isinstance(outcome, Waiting):
                outcome = await self._settlement.settle(attempt, unsettled, first=False)
        except SubmissionUncertainError:
            self._given_up(attempt)
            raise
        if not isinstance(outcome, Settled):
            self._given_up(attempt)
            return None
        await self._account.occupy(outcome.snapshot.task_id)
        self._api.pacing.created(outcome.snapshot.task_id, request.lane)
        await (hooks or NoHooks()).created(outcome.snapshot.task_id)
        return outcome

    async def _submit(self, request: PaidRequest, hooks: SubmitHooks) -> Settled:
        resends = 0
        while True:
            if self._cap is not None:
                await self._account.room(self._cap)
            async with self._account.submit_lock(request.lane):
                if self._cap is not None and await self._account.in_flight() >= self._cap:
                    continue  # another process took the room first
                await self._list.baseline()
                attempt, outcome = await self._attempt(request, hooks)
                # Counted before the lock goes: another process's submit, next
                # through it, must see this task in flight against the cap.
                counted = isinstance(outcome, Settled)
                if isinstance(outcome, Settled):
                    await self._account.occupy(outcome.snapshot.task_id)
                    # In creation order: an interactive task moves aside the bulk
                    # tasks created before it, never one created after.
                    self._api.pacing.created(outcome.snapshot.task_id, request.lane)
            if isinstance(outcome, Waiting):
                # Nothing of it yet: watched for until its window has passed, without
                # holding the account's submits back meanwhile.
                try:
                    outcome = await self._settlement.settle(attempt, outcome.unsettled, first=False)
                except SubmissionUncertainError:
                    self._given_up(attempt)
                    raise
            if isinstance(outcome, Settled):
                if not counted:  # settled later, its task found in the list
                    await self._account.occupy(outcome.snapshot.task_id)
                    self._api.pacing.created(outcome.snapshot.task_id, request.lane)
                try:
                    await hooks.created(outcome.snapshot.task_id)
                except EmojiError as exc:  # the task exists all the same: the caller gets it
                    log.warning("could not record task %s: %s", outcome.snapshot.task_id, exc)
                return outcome
            assert isinstance(outcome, Resend)
            self._given_up(attempt)
            if resends == RESENDS:
                # No task came of any attempt so far; each may still, and is watched for.
                raise outcome.unsettled.given_up() from None
            resends += 1

    async def _attempt(
        self, request: PaidRequest, hooks: SubmitHooks
    ) -> tuple[Attempt, Settled | Resend | Waiting]:
        """Send one attempt and, if its answer is lost, look once; holding the submit lock."""
        api = self._api
        attempt = self.ledger.begin(request.owner, request.label)

        async def leaving() -> None:
            await hooks.sending()
            if attempt.record is None:
                attempt.record = await self._account.sending(request.owner)
            self.ledger.left(attempt)

        try:
            snapshot = await api.submit(request, before_send=leaving)
        except SubmissionUncertainError as exc:
            unsettled = Unsettled.lost(exc)
            self.ledger.lost(attempt, unsettled.hint)
            if api.retry.reconcile_window is None:
                self._given_up(attempt)
                raise
            log.warning("%s; searching the task list", exc.reason)
            await hooks.lost(exc.reason)
            try:
                outcome = await self._settlement.settle(attempt, unsettled, first=True)
            except SubmissionUncertainError:
                self._given_up(attempt)
                raise
            return attempt, outcome
        except EmojiError:
            self.ledger.nothing(attempt)  # certain: it created nothing
            await self._settlement.settled(attempt)
            raise
        except BaseException:
            # Stopped mid-exchange (the client is closing): whatever it made is an orphan.
            if attempt.state is AttemptState.SENDING:
                self.ledger.lost(attempt, None)
                self._given_up(attempt)
            raise
        self.ledger.created(attempt, snapshot.task_id)
        await self._settlement.settled(attempt)
        await self._account.remember([snapshot.task_id])
        return attempt, Settled(snapshot, adopted=False)

    def _given_up(self, attempt: Attempt) -> None:
        """The attempt's job moves on without it: whatever it still makes is an orphan."""
        self.ledger.ghost(attempt)
        self._list.watch()

    # --- the sweep, callers that stopped waiting, closing ---------------------

    async def linger(self) -> None:
        """Watch the list until the youngest ghost is ``RetryPolicy.orphan_linger`` old.

        A batch does this before it returns, so that a late task of one of its
        submits is cancelled while PENDING rather than billed after it ended.
        """
        await self._list.linger()

    def abandon(self, task_id: str, label: str, *, cancel: bool | None = None) -> None:
        """Record a task whose caller stopped waiting; cancel it while PENDING if asked."""
        cancel = self.cancel_abandoned if cancel is None else cancel
        self._records.abandon(task_id, label, cancel=cancel)

    async def cancel_abandoned_tasks(self) -> list[str]:
        """Cancel every abandoned task still PENDING; the ids cancelled."""
        return await self._records.cancel_abandoned_tasks()

    async def drain(self, timeout: float) -> None:
        """Let submits whose caller stopped waiting settle (and their cancels finish)."""
        await self._records.drain(timeout)

    async def aclose(self, timeout: float) -> None:
        """Stop sweeping; let the submits whose caller stopped waiting settle."""
        await self._list.stop()
        await self._records.drain(timeout)

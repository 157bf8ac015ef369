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
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any, Protocol

import attrs

from ._api import GENERATE_MODEL, ServiceAPI
from ._attempts import REMEMBER, Attempt, AttemptState, Hint
from ._calls import is_transient
from ._errors import (
    EmojiError,
    SubmissionUncertainError,
    TaskNotCancelableError,
    UnexpectedResponseError,
)
from ._ledger import Ledger
from ._models import AbandonedTask, OrphanTask, TaskSnapshot, TaskStatus, TaskSummary
from ._paid_request import PaidRequest
from ._reporting import report
from ._verdicts import FREE_ENDS, Ambiguous, Owned, Verdict, is_free
from .events import Reconciled

__all__ = ["RESENDS", "NoHooks", "Settled", "SubmitHooks", "Submitter", "Unsettled"]

log = logging.getLogger("emoji_async")

#: Resends of one submit after the task list showed no task for it, at most.
RESENDS = 5
_PAGE_SIZE = 100
#: Pages read per listing: a day of one account's emoji tasks fits in far fewer.
_MAX_PAGES = 50


@attrs.frozen
class Settled:
    """The task a submit created, and whether it was found in the task list."""

    snapshot: TaskSnapshot
    adopted: bool


class SubmitHooks(Protocol):
    """What a caller records along a submit (a batch's journal), awaited in order."""

    async def sending(self) -> None:
        """An attempt leaves now (the first, and each resend)."""

    async def lost(self, reason: str) -> None:
        """The attempt's answer was lost: it is being settled."""

    async def created(self, task_id: str) -> None:
        """The submit's task is known; awaited even if the caller stopped waiting."""


class NoHooks:
    """Records nothing."""

    async def sending(self) -> None:
        return None

    async def lost(self, reason: str) -> None:
        return None

    async def created(self, task_id: str) -> None:
        return None


@attrs.frozen(kw_only=True)
class Unsettled:
    """What a submit of unknown outcome is known by while it is settled.

    A plain value, not the error: the :class:`SubmissionUncertainError` its
    user gets is built from it (:meth:`uncertain`, :meth:`given_up`) only where
    it is raised. ``cause`` is the failure that lost the answer, if one did (an
    earlier run's attempt has none); ``hint`` what the damaged answer told of
    its task id.
    """

    sent_at: dt.datetime
    inputs: dict[str, Any]
    reason: str
    cause: EmojiError | None = None
    hint: Hint | None = None

    @classmethod
    def lost(cls, error: SubmissionUncertainError) -> Unsettled:
        """The submit whose answer ``error`` says was lost."""
        cause = error.__cause__
        seen = error.task_id_seen
        return cls(
            sent_at=error.sent_at,
            inputs=error.inputs,
            reason=error.reason,
            cause=cause if isinstance(cause, EmojiError) else None,
            hint=None if seen is None else Hint(seen, error.task_id_complete),
        )

    def uncertain(self, why: str, candidates: Iterable[str] = ()) -> SubmissionUncertainError:
        """The error its user gets: it stays unsettled, because of ``why``."""
        return SubmissionUncertainError(
            sent_at=self.sent_at,
            inputs=self.inputs,
            reason=f"{self.reason}; {why}",
            candidates=list(candidates),
        )

    def given_up(self) -> EmojiError:
        """The error its user gets when no task came of it and it is not sent again.

        The failure that lost its answer when there is one, as that says most.
        """
        if self.cause is not None:
            return self.cause
        hint = self.hint
        return SubmissionUncertainError(
            sent_at=self.sent_at,
            inputs=self.inputs,
            reason=self.reason,
            task_id_seen=None if hint is None else hint.text,
            task_id_complete=False if hint is None else hint.complete,
        )


@attrs.frozen
class _Resend:
    """No task of the attempt can be held: send the submit again."""

    unsettled: Unsettled


@attrs.frozen
class _Waiting:
    """Nothing of the attempt has appeared yet; its window is still open."""

    unsettled: Unsettled


#: Told of each orphan and each abandoned task as it is recorded.
Listener = Callable[[OrphanTask | AbandonedTask], object]
#: Told of the tasks a listing showed for the first time, with when (epoch seconds).
SeenListener = Callable[[list[tuple[str, float]]], object]


@attrs.define
class _Shared:
    """What every view of one submitter shares (see :meth:`Submitter.gated`)."""

    background: set[asyncio.Future[Any]] = attrs.Factory(set)
    listeners: list[Listener] = attrs.Factory(list)
    seen_listeners: list[SeenListener] = attrs.Factory(list)
    orphans: list[OrphanTask] = attrs.Factory(list)
    abandoned: list[AbandonedTask] = attrs.Factory(list)
    sweeper: asyncio.Task[None] | None = None
    baseline: asyncio.Lock = attrs.Factory(asyncio.Lock)


class Submitter:
    """The client's paid submits: serialized, recorded, and settled when unanswered.

    The lock, the tasks other processes created and their unsettled submits
    are the pacing backend's: this process's own by default, the account's
    with shared pacing. ``cancel_abandoned``: cancel, while PENDING, a task
    whose caller stopped waiting (it is recorded either way).
    """

    def __init__(
        self, api: ServiceAPI, *, ledger: Ledger | None = None, cancel_abandoned: bool = False
    ) -> None:
        self._api = api
        self._account = api.pacing.backend
        self.ledger = ledger if ledger is not None else Ledger()
        self.cancel_abandoned = cancel_abandoned
        self._shared = _Shared()
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
        return tuple(self._shared.orphans)

    @property
    def abandoned(self) -> tuple[AbandonedTask, ...]:
        """Tasks whose caller stopped waiting after their submit was sent, oldest first."""
        return tuple(self._shared.abandoned)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Tell ``listener`` of each orphan and abandoned task; returns the unsubscribe."""
        self._shared.listeners.append(listener)
        return lambda: self._shared.listeners.remove(listener)

    @contextlib.contextmanager
    def listening(
        self, listener: Listener, *, on_seen: SeenListener | None = None
    ) -> Iterator[None]:
        """Within the block, ``listener`` is told of each orphan and abandoned task,
        ``on_seen`` of the tasks each listing showed for the first time (with when)."""
        unsubscribe = self.subscribe(listener)
        seen = self._shared.seen_listeners
        if on_seen is not None:
            seen.append(on_seen)
        try:
            yield
        finally:
            unsubscribe()
            if on_seen is not None:
                seen.remove(on_seen)

    def _tell(self, record: OrphanTask | AbandonedTask) -> None:
        for listener in list(self._shared.listeners):
            try:
                listener(record)
            except Exception:
                log.exception("a listener failed on %s", type(record).__name__)

    def know(self, task_ids: list[str]) -> None:
        """Tasks this client (or its journal) created: never adopted by another submit."""
        self.ledger.made(task_ids)
        if task_ids and self._account.shared:
            self._spawn(self._account.remember(task_ids), "record the tasks known")

    def restored(self) -> None:
        """Attempts an earlier run left were put in the ledger: watch for their late tasks."""
        self._watch()

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
                self._keep(work)
            work.add_done_callback(lambda done: self._left_behind(done, request, cancel))
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
                await self._baseline()
                outcome = await self._settle(attempt, unsettled, first=True)
            if isinstance(outcome, _Waiting):
                outcome = await self._settle(attempt, unsettled, first=False)
        except SubmissionUncertainError:
            self._given_up(attempt)
            raise
        if not isinstance(outcome, Settled):
            self._given_up(attempt)
            return None
        await self._account.occupy(outcome.snapshot.task_id)
        await (hooks or NoHooks()).created(outcome.snapshot.task_id)
        return outcome

    async def _submit(self, request: PaidRequest, hooks: SubmitHooks) -> Settled:
        resends = 0
        while True:
            if self._cap is not None:
                await self._account.room(self._cap)
            async with self._account.submit_lock():
                if self._cap is not None and await self._account.in_flight() >= self._cap:
                    continue  # another process took the room first
                await self._baseline()
                attempt, outcome = await self._attempt(request, hooks)
            if isinstance(outcome, _Waiting):
                # Nothing of it yet: watched for until its window has passed, without
                # holding the account's submits back meanwhile.
                try:
                    outcome = await self._settle(attempt, outcome.unsettled, first=False)
                except SubmissionUncertainError:
                    self._given_up(attempt)
                    raise
            if isinstance(outcome, Settled):
                await self._account.occupy(outcome.snapshot.task_id)
                try:
                    await hooks.created(outcome.snapshot.task_id)
                except EmojiError as exc:  # the task exists all the same: the caller gets it
                    log.warning("could not record task %s: %s", outcome.snapshot.task_id, exc)
                return outcome
            assert isinstance(outcome, _Resend)
            self._given_up(attempt)
            if resends == RESENDS:
                # No task came of any attempt so far; each may still, and is watched for.
                raise outcome.unsettled.given_up() from None
            resends += 1

    async def _attempt(
        self, request: PaidRequest, hooks: SubmitHooks
    ) -> tuple[Attempt, Settled | _Resend | _Waiting]:
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
                outcome = await self._settle(attempt, unsettled, first=True)
            except SubmissionUncertainError:
                self._given_up(attempt)
                raise
            return attempt, outcome
        except EmojiError:
            self.ledger.nothing(attempt)  # certain: it created nothing
            await self._settled(attempt)
            raise
        except BaseException:
            # Stopped mid-exchange (the client is closing): whatever it made is an orphan.
            if attempt.state is AttemptState.SENDING:
                self.ledger.lost(attempt, None)
                self._given_up(attempt)
            raise
        self.ledger.created(attempt, snapshot.task_id)
        await self._settled(attempt)
        if self._account.shared:
            await self._account.remember([snapshot.task_id])
        return attempt, Settled(snapshot, adopted=False)

    def _given_up(self, attempt: Attempt) -> None:
        """The attempt's job moves on without it: whatever it still makes is an orphan."""
        self.ledger.ghost(attempt)
        self._watch()

    async def _settled(self, attempt: Attempt) -> None:
        """The attempt's outcome is known: no rival of anyone's any more."""
        if attempt.record is not None:
            await self._account.settled(attempt.record)
            attempt.record = None

    # --- settling --------------------------------------------------------------

    async def _settle(
        self, attempt: Attempt, unsettled: Unsettled, *, first: bool
    ) -> Settled | _Resend | _Waiting:
        """Look for the attempt's task: found, to be sent again, or (``first``) not yet.

        With ``first``, one look (right after the answer was lost, while the
        lock still holds other submits back, so no other attempt can have made
        what appeared since); otherwise looks with growing waits until the
        window has passed. Raises :class:`SubmissionUncertainError`.
        """
        retry = self._api.retry
        window = retry.reconcile_window or 0.0
        hint = attempt.hint
        if first and hint is not None and hint.complete:
            named = await self._named(hint.text)
            if named is not None:
                return Settled(await self._claim(attempt, named.task_id, named), adopted=True)
        wait = retry.wait_first
        while True:
            # Each look and what it decides happens while no submit is on the wire
            # (``first``: the caller holds the lock already): a task that appears is
            # never one whose answer is about to name it elsewhere.
            async with contextlib.nullcontext() if first else self._account.submit_lock():
                # The list shows the service as it was at some moment after it was
                # asked for, not when its answer arrived (a slow answer arrives late):
                # the window counts as passed only for a look asked for after it.
                asked = self.ledger.now()
                verdict = await self._judge(attempt, unsettled)
                if isinstance(verdict, Owned):
                    snapshot = await self._claim(attempt, verdict.task_id, None)
                    return Settled(snapshot, adopted=True)
                if isinstance(verdict, Ambiguous):
                    await self._ambiguous(attempt, verdict, unsettled)
                    report(Reconciled, task_id=None)
                    return _Resend(unsettled)
            left = attempt.sent_at + window - asked
            if isinstance(verdict, _Unread):
                # A list that could not be read proves nothing either way. The first
                # look, taken while no other submit can go out, is what tells this
                # attempt's task from the others': without it, the submit is uncertain.
                # A later one is taken again, until a call's retry deadline has passed
                # since the window's end.
                if first or left <= -retry.deadline:
                    raise unsettled.uncertain(
                        f"the task list could not be read: {verdict.error}"
                    ) from verdict.error
            elif left <= 0:
                log.info("no task appeared for the unanswered submit: sending it again")
                report(Reconciled, task_id=None)
                return _Resend(unsettled)
            if first:
                return _Waiting(unsettled)
            # Time passed during the look: what is left is counted from now.
            left = attempt.sent_at + window - self.ledger.now()
            until = left + retry.deadline if isinstance(verdict, _Unread) else left
            await asyncio.sleep(max(0.0, min(wait, until)))
            wait = min(wait * 2, retry.wait_max)

    async def _judge(self, attempt: Attempt, unsettled: Unsettled) -> Verdict | _Unread:
        """Look at the list, and what it says of the attempt's task.

        A read that failed for a reason that may pass (a 429, a 5xx, an answer
        lost, too big or too slow) is :class:`_Unread`: the caller looks again.
        """
        try:
            await self._look(attempt.sent_at - self._margin)
            elsewhere = await self._rivals_elsewhere(attempt)
        except EmojiError as exc:
            if is_transient(exc):
                log.info("the task list could not be read (%s): looking again later", exc)
                return _Unread(exc)
            raise unsettled.uncertain(f"the task list could not be read: {exc}") from exc
        return self.ledger.verdict(attempt, rivals_elsewhere=elsewhere)

    @property
    def _margin(self) -> float:
        """How far before a moment a listing reads on, for entries stamped out of order."""
        return (self._api.retry.reconcile_window or 0.0) * 0.1

    async def _named(self, task_id: str) -> TaskSnapshot | None:
        """The task a damaged answer named whole, if the service knows it."""
        try:
            snapshot = await self._api.get_task(task_id)
        except EmojiError:
            return None
        return None if snapshot.status is TaskStatus.UNKNOWN else snapshot

    async def _claim(
        self, attempt: Attempt, task_id: str, snapshot: TaskSnapshot | None
    ) -> TaskSnapshot:
        """``task_id`` is the attempt's: recorded, and its snapshot fetched."""
        self.ledger.created(attempt, task_id)
        await self._settled(attempt)
        if self._account.shared:
            await self._account.remember([task_id])
        log.info("the unanswered submit created task %s: adopted", task_id)
        report(Reconciled, task_id=task_id)
        if snapshot is not None:
            return snapshot
        try:
            return await self._api.get_task(task_id)
        except EmojiError:
            # Proved all the same: the handle polls it like any other.
            listed = self.ledger.status(task_id)
            status = listed.status if listed is not None else TaskStatus.PENDING
            return TaskSnapshot(task_id=task_id, status=status, raw_status=status.value)

    async def _ambiguous(self, attempt: Attempt, verdict: Ambiguous, unsettled: Unsettled) -> None:
        """Move aside the candidates no one can prove; raise when one cannot be moved."""
        if verdict.foreign:
            raise unsettled.uncertain(
                f"{len(verdict.candidates)} tasks appeared, more than this client's submits"
                " could have made: another program submits on this account",
                verdict.candidates,
            )
        owners = verdict.owners
        # The candidates still PENDING are cancelled in any case (it costs nothing): left
        # to run, one another attempt made would be taken by no one, and that attempt,
        # finding nothing, would send its portrait again.
        stuck = [t for t in verdict.free if not await self._move_aside(t, owners)]
        if verdict.billable:
            # Running or done: it bills whoever made it, and guessing could hand this
            # job another portrait's video. The candidates are kept for the user.
            kept = [t.task_id for t in (*verdict.billable, *stuck)]
            self.ledger.reserve(kept)
            raise unsettled.uncertain(
                f"{len(kept)} task(s) appeared that it or another submit"
                f" ({', '.join(o for o in owners if o != attempt.label) or 'elsewhere'})"
                " may have made, and not all can still be cancelled",
                kept,
            )
        if stuck:
            self.ledger.reserve([t.task_id for t in stuck])
            raise unsettled.uncertain(
                "a task appeared whose maker cannot be proved, and it started before it"
                " could be cancelled",
                [t.task_id for t in stuck],
            )
        log.info(
            "%d task(s) appeared that another submit may have made: cancelled while"
            " PENDING; the submit is sent again",
            len(verdict.free),
        )

    async def _move_aside(self, task: TaskSummary, owners: tuple[str, ...]) -> bool:
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
                self._orphan(task, owners, cancelled=True)
                return True
            if snapshot.status in FREE_ENDS:
                self.ledger.orphaned(task.task_id)
                return True
            if not isinstance(exc, TaskNotCancelableError):
                log.warning("could not cancel task %s: %s", task.task_id, exc)
            return False
        self._orphan(task, owners, cancelled=True)
        return True

    def _orphan(self, task: TaskSummary, owners: tuple[str, ...], *, cancelled: bool) -> None:
        self.ledger.orphaned(task.task_id)
        if self._account.shared:
            self._spawn(self._account.remember([task.task_id]), "record an orphan")
        record = OrphanTask(
            task_id=task.task_id,
            status=TaskStatus.CANCELED if cancelled else task.status,
            cancelled=cancelled,
            owners=owners,
            seen_at=dt.datetime.now(dt.UTC),
        )
        self._shared.orphans.append(record)
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
        self._tell(record)

    async def _rivals_elsewhere(self, attempt: Attempt) -> bool:
        """Whether another process of the account left a submit of other inputs unsettled."""
        if not self._account.shared:
            return False
        return await self._account.unsettled(attempt.owner, REMEMBER) > 0

    # --- the list ----------------------------------------------------------------

    async def _baseline(self) -> None:
        """Before the first paid submit, see every task already in the list: none is ours."""
        if self.ledger.baseline is not None or self._api.retry.reconcile_window is None:
            return
        async with self._shared.baseline:
            if self.ledger.baseline is not None:
                return
            try:
                await self._look(None)
            except EmojiError as exc:
                # Without it, a task older than this client may look like a candidate:
                # settling is then stricter, never wrong.
                log.warning("could not read the task list before the first submit: %s", exc)
                return
            self.ledger.baseline = self.ledger.now()

    async def _look(self, horizon: float | None) -> None:
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
            page = await self._api.list_tasks(
                model=GENERATE_MODEL, page=page_no, page_size=_PAGE_SIZE
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
                for tell in list(self._shared.seen_listeners):
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
        if self._account.shared:
            unexplained = self.ledger.unexplained_ids()
            if unexplained:
                self.ledger.elsewhere(await self._account.known(unexplained))
        await self._tidy()

    async def _tidy(self) -> None:
        """Cancel the orphans seen while PENDING; report the ones already billable."""
        for task, owners in self.ledger.orphans():
            if task.status is TaskStatus.PENDING:
                if not await self._move_aside(task, owners):
                    listed = self.ledger.status(task.task_id) or task
                    self._orphan(listed, owners, cancelled=False)
            elif is_free(task):
                self.ledger.orphaned(task.task_id)
            else:
                self._orphan(task, owners, cancelled=False)

    # --- the sweeper ----------------------------------------------------------------

    def _watch(self) -> None:
        """Sweep the list for orphans while ghosts may still make tasks."""
        interval = self._api.retry.orphan_sweep
        shared = self._shared
        if interval is None or (shared.sweeper is not None and not shared.sweeper.done()):
            return
        if not self.ledger.has_ghosts:
            return
        shared.sweeper = asyncio.get_running_loop().create_task(
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
                    await self._look(last - self._margin)
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
                    await self._look(self.ledger.now() - retry.orphan_sweep - self._margin)
            except EmojiError as exc:
                log.warning("could not sweep the task list for orphans: %s", exc)

    # --- callers that stopped waiting -------------------------------------------------

    def abandon(self, task_id: str, label: str, *, cancel: bool | None = None) -> None:
        """Record a task whose caller stopped waiting; cancel it while PENDING if asked."""
        cancel = self.cancel_abandoned if cancel is None else cancel
        record = AbandonedTask(
            task_id=task_id, label=label, cancelled=False, at=dt.datetime.now(dt.UTC)
        )
        self._shared.abandoned.append(record)
        if cancel:
            log.warning(
                "task %s (%s) was created for a caller that stopped waiting: cancelling it",
                task_id,
                label,
            )
            self._spawn(self._cancel_abandoned(record), None)
        else:
            log.warning(
                "task %s (%s) was created for a caller that stopped waiting; it goes on"
                " (EmojiClient.abandoned lists it)",
                task_id,
                label,
            )
            self._tell(record)

    async def cancel_abandoned_tasks(self) -> list[str]:
        """Cancel every abandoned task still PENDING; the ids cancelled."""
        done: list[str] = []
        for record in [r for r in self._shared.abandoned if not r.cancelled]:
            if await self._cancel_abandoned(record, quiet=True):
                done.append(record.task_id)
        return done

    async def _cancel_abandoned(self, record: AbandonedTask, *, quiet: bool = False) -> bool:
        try:
            await self._api.cancel(record.task_id)
        except EmojiError as exc:
            if not quiet:
                log.warning("could not cancel abandoned task %s: %s", record.task_id, exc)
                self._tell(record)
            return False
        cancelled = attrs.evolve(record, cancelled=True)
        abandoned = self._shared.abandoned
        abandoned[abandoned.index(record)] = cancelled
        self._tell(cancelled)
        return True

    def _left_behind(
        self, done: asyncio.Future[Settled], request: PaidRequest, cancel: bool
    ) -> None:
        if done.cancelled():
            return
        if (exc := done.exception()) is not None:
            log.warning("a submit whose caller stopped waiting ended without a task: %s", exc)
            return
        self.abandon(done.result().snapshot.task_id, request.label, cancel=cancel)

    # --- background work ------------------------------------------------------------

    def _keep(self, work: asyncio.Future[Any]) -> None:
        self._shared.background.add(work)
        work.add_done_callback(self._shared.background.discard)

    def _spawn(self, work: Coroutine[Any, Any, Any], what: str | None) -> None:
        """Run ``work`` in the background (``aclose`` waits for it); log a failure as ``what``."""

        async def quietly() -> None:
            try:
                await work
            except EmojiError as exc:
                log.warning("could not %s: %s", what, exc)

        self._keep(asyncio.ensure_future(work if what is None else quietly()))

    async def drain(self, timeout: float) -> None:
        """Let submits whose caller stopped waiting settle (and their cancels finish)."""
        background = self._shared.background
        if not background:
            return
        try:
            async with asyncio.timeout(timeout):
                while background:
                    await asyncio.gather(*background, return_exceptions=True)
        except TimeoutError:
            log.warning(
                "%d abandoned submit(s) did not settle before the client closed", len(background)
            )

    async def aclose(self, timeout: float) -> None:
        """Stop sweeping; let the submits whose caller stopped waiting settle."""
        sweeper = self._shared.sweeper
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        await self.drain(timeout)


@attrs.frozen
class _Unread:
    """A look at the task list that failed for a reason that may pass."""

    error: EmojiError

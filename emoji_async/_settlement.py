"""Settling one submit whose answer was lost: its own task, or provably none.

The provider has no idempotency key; a submit whose answer was lost may still
have created its task, or create it later, much later, and out of order
(docs/wire.md, "Rate limits"); no answer ever shows a task's inputs. So the
attempt is settled by elimination (what a listing proves is
:mod:`~emoji_async._verdicts`'s):

1. After a lost answer, the client lists the account's ``emoji-v1`` tasks at
   once, still holding the submit lock, then again with growing waits (other
   submits go on between looks) until ``RetryPolicy.reconcile_window`` has
   passed since the attempt. A damaged answer that still holds the task id,
   whole or its first characters, names the task outright.
2. A task that appeared after the attempt left, and that no other attempt of
   unknown outcome may have made, is the attempt's: it is adopted. Rival
   owners are every attempt whose outcome is unknown: one on the wire, one a
   killed run left in its journal, one settled as fruitless that may still
   be processed late (a *ghost*), and, with shared pacing, another process's.
3. If the ownership cannot be proved, the client does not guess: candidates
   still PENDING are cancelled (free: only successful tasks are billed) and
   the submit is sent again; a candidate already running or done cannot be
   moved aside, and the submit raises :class:`~emoji_async.SubmissionUncertainError`
   naming what was sent, when, and the candidates.
4. No task within the window: the submit is sent again (the attempt becomes
   a ghost), at most :data:`~emoji_async._reconcile.RESENDS` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import attrs

from ._api import ServiceAPI
from ._attempts import REMEMBER, Attempt
from ._calls import is_transient
from ._errors import EmojiError
from ._ledger import Ledger
from ._listing import TaskList
from ._models import TaskSnapshot, TaskStatus
from ._orphans import Orphans
from ._reporting import report
from ._submission import Settled, Unsettled
from ._verdicts import Ambiguous, Owned, Verdict
from .events import Reconciled

__all__ = ["Resend", "Settlement", "Waiting"]

log = logging.getLogger("emoji_async")


@attrs.frozen
class Resend:
    """No task of the attempt can be held: send the submit again."""

    unsettled: Unsettled


@attrs.frozen
class Waiting:
    """Nothing of the attempt has appeared yet; its window is still open."""

    unsettled: Unsettled


@attrs.frozen
class _Unread:
    """A look at the task list that failed for a reason that may pass."""

    error: EmojiError


class Settlement:
    """Looks for a lost answer's task in the list: found, to be sent again, or not yet."""

    def __init__(
        self, api: ServiceAPI, ledger: Ledger, task_list: TaskList, orphans: Orphans
    ) -> None:
        self._api = api
        self._account = api.pacing.backend
        self.ledger = ledger
        self._list = task_list
        self._orphans = orphans

    async def settle(
        self, attempt: Attempt, unsettled: Unsettled, *, first: bool
    ) -> Settled | Resend | Waiting:
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
                    report(lambda key: Reconciled(key=key, task_id=None))
                    return Resend(unsettled)
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
                report(lambda key: Reconciled(key=key, task_id=None))
                return Resend(unsettled)
            if first:
                return Waiting(unsettled)
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
            await self._list.look(attempt.sent_at - self._list.margin)
            elsewhere = await self._rivals_elsewhere(attempt)
        except EmojiError as exc:
            if is_transient(exc):
                log.info("the task list could not be read (%s): looking again later", exc)
                return _Unread(exc)
            raise unsettled.uncertain(f"the task list could not be read: {exc}") from exc
        return self.ledger.verdict(attempt, rivals_elsewhere=elsewhere)

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
        await self.settled(attempt)
        await self._account.remember([task_id])
        log.info("the unanswered submit created task %s: adopted", task_id)
        report(lambda key: Reconciled(key=key, task_id=task_id))
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
        stuck = [t for t in verdict.free if not await self._orphans.move_aside(t, owners)]
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

    async def _rivals_elsewhere(self, attempt: Attempt) -> bool:
        """Whether another process of the account left a submit of other inputs unsettled."""
        return await self._account.unsettled(attempt.owner, REMEMBER) > 0

    async def settled(self, attempt: Attempt) -> None:
        """The attempt's outcome is known: no rival of anyone's any more."""
        if attempt.record is not None:
            await self._account.settled(attempt.record)
            attempt.record = None

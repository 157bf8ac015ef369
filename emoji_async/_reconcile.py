"""Paid submits, one at a time per client, each settled: one task, or provably none.

The provider has no idempotency key, and a submit whose answer was lost may
still have created its task, even seconds or minutes later (PROTOCOL.md
section 5). :class:`Submitter` settles such a submit through the task list:

1. Submits are serialized: the next one leaves only once the previous one is
   settled. So while a submit is unsettled, any ``emoji-v1`` task that appears
   on the account and that the client does not know is that submit's task.
2. After an unanswered submit, the client lists the account's ``emoji-v1``
   tasks created since the attempt (less :data:`CLOCK_SKEW`), again and again
   with growing waits, until ``RetryPolicy.reconcile_window`` has passed since
   the attempt. One task it does not know: it is adopted as this submit's
   task. Two or more: the match is ambiguous, and the submit stays uncertain
   (the error lists them). None within the window: the service is taken not
   to have created one, and the submit is sent again, at most :data:`RESENDS`
   times (each after a whole window). Then the failure itself is raised (a
   ``ServerError``, say): it is certain that no task came of it.

The window is the client's chosen bound on how late the service may still
act on a request it gave up on; the provider documents none. It defaults to
120 s, well beyond the client's own read timeout.

This holds as long as this client is the only one submitting ``emoji-v1``
tasks on the account (a second process submitting at the same time could
have its task adopted here). Several processes on one account must share one
submitter, which is what shared pacing provides: with
:class:`~emoji_async.RedisPacing` the lock is the account's, held across the
submit and its settling by one process at a time, every task a submit
created is known to every process, and a submit left unanswered by a process
that stopped (its task may still appear) makes any match ambiguous for the
others until its window has passed.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import attrs

from ._api import GENERATE_MODEL, ServiceAPI
from ._errors import EmojiError, SubmissionUncertainError, UnexpectedResponseError
from ._models import BBox, TaskSnapshot, TaskSummary
from ._reporting import report
from ._wire import format_list_time
from .events import Reconciled

__all__ = ["CLOCK_SKEW", "RESENDS", "Settled", "Submitter"]

log = logging.getLogger("emoji_async")

#: How far apart the client's clock and the service's may be, in seconds.
CLOCK_SKEW = 10.0
#: Resends of one submit after the task list showed no task for it, at most.
RESENDS = 5
#: Task ids are remembered this long: the task list only shows the last 24 h.
_REMEMBER = 25 * 3600.0
_PAGE_SIZE = 100
#: Pages read per listing; a window of a few minutes at 1 submit/s fits in far fewer.
_MAX_PAGES = 20


@attrs.frozen
class Settled:
    """The task a submit created, and whether it was found in the task list."""

    snapshot: TaskSnapshot
    adopted: bool


def _digest(inputs: dict[str, Any]) -> str:
    """A submit's inputs, hashed: names them in shared state without showing them."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Submitter:
    """The client's paid submits: serialized, remembered, and settled when unanswered.

    The lock, the tasks known and the count in flight are the pacing
    backend's: this process's own by default, the account's with shared pacing.
    """

    def __init__(self, api: ServiceAPI) -> None:
        self._api = api
        self._account = api.pacing.backend
        self._known: dict[str, float] = {}
        #: Submits whose caller stopped waiting, and cancels of their tasks.
        self._background: set[asyncio.Future[Any]] = set()
        #: The account's tasks in flight a submit waits below (``None``: it never waits).
        self._cap: int | None = None

    def gated(self, cap: int | None) -> Submitter:
        """This submitter, its submits waiting until fewer than ``cap`` tasks are in flight.

        For a batch on shared pacing: all processes together keep the
        provider's queue fed without flooding it. Everything else is shared
        with this submitter (lock, tasks known, submits left to settle).
        """
        view = copy.copy(self)
        view._cap = cap
        return view

    def know(self, task_ids: Iterable[str]) -> None:
        """Remember tasks this client (or its journal) created: they are never adopted."""
        now = time.time()
        ids = list(task_ids)
        for task_id in ids:
            self._known[task_id] = now
        if len(self._known) > 10_000:
            for task_id in [t for t, at in self._known.items() if now - at >= _REMEMBER]:
                del self._known[task_id]
        if ids and self._account.shared:
            self._spawn(self._account.remember(ids), "record the tasks known")

    async def submit(
        self,
        image_url: str,
        driven_id: str,
        face: BBox,
        ext: BBox,
        *,
        before_send: Callable[[], Awaitable[None]] | None = None,
        on_uncertain: Callable[[SubmissionUncertainError], Awaitable[None]] | None = None,
        cancel_if_abandoned: bool = True,
    ) -> Settled:
        """Create the task, settling a lost answer through the task list.

        ``before_send`` is awaited right before each attempt leaves (the
        first, and each resend after the task list proved the previous one
        created nothing); ``on_uncertain`` when an answer was lost, before the
        search. Raises :class:`SubmissionUncertainError` when the search is
        ambiguous or the task list cannot be read.

        If the caller is cancelled, the submit still runs to its end so that
        its task is known; with ``cancel_if_abandoned`` that task is then
        cancelled (free while it is PENDING), since nobody waits for it.
        """
        work = asyncio.ensure_future(
            self._submit(image_url, driven_id, face, ext, before_send, on_uncertain)
        )
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            if not work.done():
                self._background.add(work)
                work.add_done_callback(self._background.discard)
            work.add_done_callback(lambda done: self._abandoned(done, cancel_if_abandoned))
            raise

    async def aclose(self, timeout: float) -> None:
        """Let submits whose caller stopped waiting settle (and their cancels finish)."""
        if not self._background:
            return
        try:
            async with asyncio.timeout(timeout):
                while self._background:
                    await asyncio.gather(*self._background, return_exceptions=True)
        except TimeoutError:
            log.warning(
                "%d abandoned submit(s) did not settle before the client closed",
                len(self._background),
            )

    async def settle(self, unsettled: SubmissionUncertainError) -> TaskSnapshot | None:
        """The task an earlier, unanswered submit created, or ``None`` if provably none.

        For a submit sent by an earlier run (its journal recorded the intent).
        """
        digest = _digest(unsettled.inputs)
        async with self._account.submit_lock():
            found = await self._search(unsettled, digest)
            # Settled either way (a task, or provably none): whoever sent it, it is this job's.
            await self._account.settled(digest)
            if found is not None:
                await self._account.occupy(found.task_id)
            return found

    async def _submit(
        self,
        image_url: str,
        driven_id: str,
        face: BBox,
        ext: BBox,
        before_send: Callable[[], Awaitable[None]] | None,
        on_uncertain: Callable[[SubmissionUncertainError], Awaitable[None]] | None,
    ) -> Settled:
        inputs = {
            "image_url": image_url,
            "driven_id": driven_id,
            "face_bbox": face.as_list(),
            "ext_bbox": ext.as_list(),
        }
        digest = _digest(inputs)
        while True:
            if self._cap is not None:
                await self._account.room(self._cap)
            async with self._account.submit_lock():
                if self._cap is not None and await self._account.in_flight() >= self._cap:
                    continue  # another process took the room first
                return await self._send(
                    image_url, driven_id, face, ext, digest, before_send, on_uncertain
                )

    async def _send(
        self,
        image_url: str,
        driven_id: str,
        face: BBox,
        ext: BBox,
        digest: str,
        before_send: Callable[[], Awaitable[None]] | None,
        on_uncertain: Callable[[SubmissionUncertainError], Awaitable[None]] | None,
    ) -> Settled:
        """Submit and settle, holding the submit lock."""
        record: str | None = None

        async def leaving() -> None:
            nonlocal record
            if record is None:
                record = await self._account.sending(digest)
            if before_send is not None:
                await before_send()

        try:
            settled = await self._send_and_settle(
                image_url, driven_id, face, ext, digest, leaving, on_uncertain
            )
        except SubmissionUncertainError:
            raise  # unsettled: it stays on record until a later run settles it
        except EmojiError:
            if record is not None:
                await self._account.settled(record)  # certain: it created nothing
            raise
        if record is not None:
            await self._account.settled(record)
        await self._account.occupy(settled.snapshot.task_id)
        return settled

    async def _send_and_settle(
        self,
        image_url: str,
        driven_id: str,
        face: BBox,
        ext: BBox,
        digest: str,
        before_send: Callable[[], Awaitable[None]],
        on_uncertain: Callable[[SubmissionUncertainError], Awaitable[None]] | None,
    ) -> Settled:
        resends = 0
        while True:
            try:
                snapshot = await self._api.submit(
                    image_url, driven_id, face, ext, before_send=before_send
                )
            except SubmissionUncertainError as exc:
                if self._api.retry.reconcile_window is None:
                    raise
                log.warning("%s; searching the task list", exc.reason)
                if on_uncertain is not None:
                    await on_uncertain(exc)
                found = await self._search(exc, digest)
                if found is not None:
                    return Settled(found, adopted=True)
                if resends == RESENDS:
                    # Settled all the same: no task came of it, so the failure is certain.
                    cause = exc.__cause__
                    raise (cause if isinstance(cause, EmojiError) else exc) from None
                resends += 1
                continue
            self.know([snapshot.task_id])
            await self._account.remember([snapshot.task_id])
            return Settled(snapshot, adopted=False)

    async def _search(
        self, unsettled: SubmissionUncertainError, digest: str
    ) -> TaskSnapshot | None:
        window = self._api.retry.reconcile_window or 0.0
        since = unsettled.sent_at - dt.timedelta(seconds=CLOCK_SKEW)
        until = unsettled.sent_at + dt.timedelta(seconds=window)
        wait = self._api.retry.wait_first
        while True:
            try:
                unknown = await self._unknown_since(since)
            except EmojiError as exc:
                raise SubmissionUncertainError(
                    sent_at=unsettled.sent_at,
                    inputs=unsettled.inputs,
                    reason=f"{unsettled.reason}; the task list could not be read: {exc}",
                ) from exc
            if len(unknown) > 1:
                raise SubmissionUncertainError(
                    sent_at=unsettled.sent_at,
                    inputs=unsettled.inputs,
                    reason=f"{unsettled.reason}; {len(unknown)} tasks this client does not"
                    " know appeared since",
                    candidates=[task.task_id for task in unknown],
                )
            if unknown and await self._others_unsettled(unsettled, digest):
                raise SubmissionUncertainError(
                    sent_at=unsettled.sent_at,
                    inputs=unsettled.inputs,
                    reason=f"{unsettled.reason}; task {unknown[0].task_id} appeared, but a"
                    " process that stopped while submitting may have created it",
                    candidates=[unknown[0].task_id],
                )
            if unknown:
                task_id = unknown[0].task_id
                self.know([task_id])
                await self._account.remember([task_id])
                snapshot = await self._api.get_task(task_id)
                log.info("the unanswered submit created task %s: adopted", task_id)
                report(Reconciled, task_id=task_id)
                return snapshot
            left = (until - dt.datetime.now(dt.UTC)).total_seconds()
            if left <= 0:
                log.info("no task appeared for the unanswered submit: sending it again")
                report(Reconciled, task_id=None)
                return None
            await asyncio.sleep(min(wait, left))
            wait = min(wait * 2, self._api.retry.wait_max)

    async def _others_unsettled(self, unsettled: SubmissionUncertainError, digest: str) -> bool:
        """Whether another submit, never settled, may have created a task we found."""
        horizon = (self._api.retry.reconcile_window or 0.0) + 2 * CLOCK_SKEW
        try:
            return await self._account.unsettled(digest, horizon) > 0
        except EmojiError as exc:
            raise SubmissionUncertainError(
                sent_at=unsettled.sent_at,
                inputs=unsettled.inputs,
                reason=f"{unsettled.reason}; the account's unsettled submits could not be read:"
                f" {exc}",
            ) from exc

    async def _unknown_since(self, since: dt.datetime) -> list[TaskSummary]:
        """The ``emoji-v1`` tasks created since ``since`` that no submit of the account knows."""
        unknown: list[TaskSummary] = []
        params = {
            "start_time": format_list_time(since),
            "model_name": GENERATE_MODEL,
            "page_size": str(_PAGE_SIZE),
        }
        page_no = 1
        while True:
            page = await self._api.list_tasks({**params, "page_no": str(page_no)})
            if len(page.tasks) < min(page.total - (page_no - 1) * _PAGE_SIZE, _PAGE_SIZE):
                # Fewer tasks than the page's own count: proof of nothing.
                raise UnexpectedResponseError(
                    f"a task list page holds {len(page.tasks)} tasks of {page.total}",
                    request_id=page.request_id,
                )
            unknown += [
                task
                for task in page.tasks
                if task.task_id not in self._known
                and (task.created_at is None or task.created_at >= since)
            ]
            if page_no >= min(page.total_pages, _MAX_PAGES):
                break
            page_no += 1
        if unknown and self._account.shared:
            elsewhere = await self._account.known([task.task_id for task in unknown])
            unknown = [task for task in unknown if task.task_id not in elsewhere]
        return unknown

    def _abandoned(self, done: asyncio.Future[Settled], cancel: bool) -> None:
        if done.cancelled():
            return
        if (exc := done.exception()) is not None:
            log.warning("a submit whose caller stopped waiting ended without a task: %s", exc)
            return
        task_id = done.result().snapshot.task_id
        if not cancel:
            # Nobody holds it now: forgotten, so that a later settle may adopt it.
            self._known.pop(task_id, None)
            self._account.forget(task_id)
            log.warning("task %s was created for a caller that stopped waiting", task_id)
            return
        log.warning("task %s was created for a caller that stopped waiting: cancelling it", task_id)
        self._spawn(self._cancel_quietly(task_id), None)

    def _spawn(self, work: Coroutine[Any, Any, None], what: str | None) -> None:
        """Run ``work`` in the background (``aclose`` waits for it); log a failure as ``what``."""

        async def quietly() -> None:
            try:
                await work
            except EmojiError as exc:
                log.warning("could not %s: %s", what, exc)

        running = asyncio.ensure_future(work if what is None else quietly())
        self._background.add(running)
        running.add_done_callback(self._background.discard)

    async def _cancel_quietly(self, task_id: str) -> None:
        try:
            await self._api.cancel(task_id)
        except Exception as exc:  # best effort, in the background: only logged
            log.warning("could not cancel abandoned task %s: %s", task_id, exc)

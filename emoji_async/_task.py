"""A handle on one task: look at it, watch it change, wait for its video, cancel it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Iterator
from typing import TypeVar, cast

from ._api import ServiceAPI
from ._checks import instance_of, optional, positive
from ._errors import (
    TaskCanceledError,
    TaskFailedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnexpectedResponseError,
    WaitTimeoutError,
)
from ._models import TaskSnapshot, TaskStatus, VideoResult
from ._notices import Inbox
from ._notify_policy import NotifyPolicy, safety_wait
from ._policy import PollPolicy, retries_end_at
from ._poll_placement import PollPlacement, placement_for
from ._task_board import TaskBoard

__all__ = ["Task", "check_timeout", "outcome_of"]

log = logging.getLogger("emoji_async")

_T = TypeVar("_T")

#: A queued task is polled at least this many ``wait_max`` apart (5 minutes by default),
#: in case the account runs more tasks at once than the client was told.
_QUEUED_RECHECK = 20


_TIMEOUT = optional(positive("a finite number of seconds > 0"))
_POLICY = optional(instance_of(PollPolicy, "a PollPolicy"))


def check_timeout(value: object, *, field: str = "timeout") -> float | None:
    """``value`` if it is ``None`` or a finite number of seconds > 0; else :class:`ValidationError`.

    Checked before a comparison or a sum: ``'5'`` would raise ``TypeError``
    there, and ``nan`` would make a deadline no clock reaches.
    """
    _TIMEOUT.validate(value, field=field)
    return cast("float | None", value)


def _check_policy(value: object) -> PollPolicy | None:
    _POLICY.validate(value, field="policy")
    return cast("PollPolicy | None", value)


def outcome_of(snapshot: TaskSnapshot) -> VideoResult:
    """The video of a SUCCEEDED snapshot, or the error its terminal state means."""
    match snapshot.status:
        case TaskStatus.SUCCEEDED:
            if snapshot.video_url is None:  # the wire layer requires it; kept for the type
                raise UnexpectedResponseError("a SUCCEEDED task without a video_url")
            usage = snapshot.usage
            return VideoResult(
                task_id=snapshot.task_id,
                video_url=snapshot.video_url,
                video_duration=usage.video_duration if usage is not None else 0,
                video_ratio=usage.video_ratio if usage is not None else None,
                submit_time=snapshot.submit_time,
                scheduled_time=snapshot.scheduled_time,
                end_time=snapshot.end_time,
                request_id=snapshot.request_id,
            )
        case TaskStatus.FAILED:
            raise TaskFailedError(snapshot)
        case TaskStatus.CANCELED:
            raise TaskCanceledError(snapshot)
        case TaskStatus.UNKNOWN:
            raise TaskNotFoundError(snapshot)
        case _:
            raise ValueError(f"task {snapshot.task_id} has not ended: {snapshot.raw_status}")


class Task:
    """A task of the service, by id. Cheap to create: it holds no connection and no timer.

    The handle remembers the furthest state it has seen (``last_snapshot``):
    a task never goes back from RUNNING to PENDING, nor out of a terminal
    state, so an out-of-order answer never undoes what was observed.
    """

    def __init__(
        self,
        api: ServiceAPI,
        task_id: str,
        *,
        poll: PollPolicy,
        snapshot: TaskSnapshot | None = None,
        submitted_at: float | None = None,
        template: str | None = None,
    ) -> None:
        self._api = api
        self._poll = poll
        self.task_id = task_id
        self._last = snapshot
        self._submitted_at = submitted_at
        self._template = template

    def __repr__(self) -> str:
        state = self._last.raw_status if self._last is not None else "not yet observed"
        return f"<Task {self.task_id} {state}>"

    @property
    def last_snapshot(self) -> TaskSnapshot | None:
        """The furthest state observed so far, or ``None`` before the first observation."""
        return self._last

    def _observe(self, snapshot: TaskSnapshot) -> TaskSnapshot:
        last = self._last
        if last is not None and (
            last.is_terminal or snapshot.status.progress < last.status.progress
        ):
            if snapshot.status is not last.status:
                log.debug(
                    "task %s: ignoring %s after %s",
                    self.task_id,
                    snapshot.raw_status,
                    last.raw_status,
                )
            return last
        self._last = snapshot
        if snapshot.status is TaskStatus.SUCCEEDED:
            self._learn(snapshot)
        return snapshot

    def _learn(self, snapshot: TaskSnapshot) -> None:
        if snapshot.scheduled_time is not None and snapshot.end_time is not None:
            run = (snapshot.end_time - snapshot.scheduled_time).total_seconds()
            self._api.pacing.durations.observe(self._template, run)

    async def refresh(self) -> TaskSnapshot:
        """Ask the service for the task's state once (retried after transient failures)."""
        return self._observe(await self._api.get_task(self.task_id))

    async def watch(
        self, *, timeout: float | None = None, policy: PollPolicy | None = None
    ) -> AsyncGenerator[TaskSnapshot, None]:
        """Yield each state the task is seen in, ending after a terminal one.

        Polls on ``policy`` (the client's by default); transient failures of a
        poll are retried until the deadline (``timeout`` seconds, default the
        policy's), which bounds sleeps and requests alike and raises
        :class:`WaitTimeoutError` when it passes (a 429 whose ``Retry-After``
        ends past it raises its :class:`RateLimitError` at once). The deadline is checked per
        step, never across a ``yield``, so time spent by the consumer between
        two snapshots counts toward it but is never interrupted by it.

        While the task is PENDING behind as many tasks this client is watching
        as the account has running slots (one), it is not polled: it cannot
        start before one of them ends, so its watcher sleeps until then (or
        ``20 * wait_max`` passes, in case something else moved the queue).

        With notifications on (``EmojiClient(notifications=...)``), the watcher
        sleeps until its task's event arrives, and confirms it with one query:
        the query's answer decides, never the event. Polls are only a safety
        net, placed by the :class:`NotifyPolicy` (the first one after the
        task's latest plausible end), so a late or lost event costs latency.

        A ``timeout`` that is not ``None`` or a finite number of seconds > 0
        raises :class:`ValidationError` before anything is sent.
        """
        timeout = check_timeout(timeout)
        policy = _check_policy(policy) or self._poll
        budget = policy.deadline if timeout is None else timeout
        deadline = asyncio.get_running_loop().time() + budget
        waits = policy.waits()
        placement = placement_for(policy)
        pacing = self._api.pacing
        board = pacing.board
        limits = pacing.limits
        notify = pacing.notify
        seen: str | None = None
        following = (
            pacing.notices.following(self.task_id)
            if notify is not None
            else contextlib.nullcontext(None)
        )
        with following as inbox:
            try:
                if inbox is not None and inbox.pending is None:
                    await self._before(deadline, budget, self._recall())
                # A state already known (the submit's answer) is not asked for again.
                snapshot = self._last
                if snapshot is None:
                    snapshot = await self._before(deadline, budget, self._poll_once(inbox))
                while True:
                    self._join(board, snapshot)
                    if inbox is not None and snapshot.is_terminal:
                        pacing.notices.ended(self.task_id)
                    if snapshot.raw_status != seen:
                        seen = snapshot.raw_status
                        yield snapshot
                    if snapshot.is_terminal:
                        return
                    woken = False
                    if (
                        limits is not None
                        and snapshot.status is TaskStatus.PENDING
                        and board.ahead(self.task_id) >= limits.running_tasks
                    ):
                        queued = self._queued(board, limits.running_tasks, policy, inbox)
                        await self._before(deadline, budget, queued)
                        woken = True
                    if inbox is None or notify is None:
                        wait = self._next_wait(snapshot, placement, waits, woken=woken)
                        await self._before(deadline, budget, asyncio.sleep(wait))
                    else:
                        wait = self._safety_wait(snapshot, notify, policy)
                        await self._before(deadline, budget, inbox.wait(wait))
                    snapshot = await self._before(deadline, budget, self._poll_once(inbox))
            finally:
                board.release(self.task_id)

    def _join(self, board: TaskBoard, snapshot: TaskSnapshot) -> None:
        if snapshot.is_terminal:
            ended = snapshot.end_time.timestamp() if snapshot.end_time is not None else None
            board.release(self.task_id, ended)
            return
        submitted = self._submitted_at
        if submitted is None and snapshot.submit_time is not None:
            submitted = snapshot.submit_time.timestamp()
        if submitted is not None:
            board.watch(self.task_id, submitted)

    def _next_wait(
        self,
        snapshot: TaskSnapshot,
        placement: PollPlacement,
        waits: Iterator[float],
        *,
        woken: bool,
    ) -> float:
        """Seconds until the next poll, where the policy's placement puts it."""
        return placement.next_wait(
            waits,
            woken=woken,
            started=functools.partial(self._started_at, snapshot),
            durations=self._api.pacing.durations,
            template=self._template,
        )

    def _safety_wait(
        self, snapshot: TaskSnapshot, notify: NotifyPolicy, policy: PollPolicy
    ) -> float:
        """Seconds until the safety net's next poll, from the task's start and learned run times."""
        start = self._started_at(snapshot)
        # A start not known (nothing says when it was submitted): counted from now.
        elapsed = 0.0 if start is None else max(0.0, time.time() - start)
        # The account's range of run times, not the template's narrower one: the net
        # must not come before the event for a task a little longer than its template's
        # runs so far (whether run times follow the template is not documented).
        lo, hi = self._api.pacing.durations.bounds(None, policy.run_time)
        return safety_wait(notify, elapsed, lo, hi)

    async def _recall(self) -> None:
        # An event another process relayed before this watcher started: it wakes at once.
        pacing = self._api.pacing
        event = await pacing.backend.recall(self.task_id)
        if event is not None:
            pacing.notices.relayed(event)

    def _started_at(self, snapshot: TaskSnapshot) -> float | None:
        """When the task started running (epoch seconds), as known or as the queue implies."""
        if snapshot.scheduled_time is not None:
            return snapshot.scheduled_time.timestamp()
        if snapshot.status not in (TaskStatus.PENDING, TaskStatus.RUNNING):
            return None
        pacing = self._api.pacing
        slots = pacing.limits.running_tasks if pacing.limits is not None else None
        if (
            snapshot.status is TaskStatus.PENDING
            and slots is not None
            and pacing.board.ahead(self.task_id) >= slots
        ):
            return None  # still behind the client's own tasks: not started
        # Nothing of ours ahead: it started when it was submitted, or when the task
        # before it ended, whichever came later (the account runs them one by one).
        known = [
            moment
            for moment in (
                self._submitted_at,
                snapshot.submit_time.timestamp() if snapshot.submit_time is not None else None,
                pacing.board.last_end,
            )
            if moment is not None
        ]
        return max(known) if known else None

    async def _queued(
        self, board: TaskBoard, slots: int, policy: PollPolicy, inbox: Inbox | None
    ) -> None:
        # While as many of our own tasks as the account has slots are ahead, this one
        # provably has not started: no poll could tell anything new. Only an event for
        # it (cancelled by someone else, say) is worth a look.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_QUEUED_RECHECK * policy.wait_max):
                while board.ahead(self.task_id) >= slots:
                    if inbox is None:
                        await board.next_release()
                        continue
                    if inbox.pending is not None:
                        return
                    await _first_of(board.next_release(), inbox.arrival())

    async def wait(
        self, *, timeout: float | None = None, policy: PollPolicy | None = None
    ) -> VideoResult:
        """Poll until the task ends; return its video or raise what its end means.

        SUCCEEDED returns a :class:`VideoResult`; FAILED raises
        :class:`TaskFailedError`, CANCELED :class:`TaskCanceledError`, UNKNOWN
        :class:`TaskNotFoundError`; a passed deadline :class:`WaitTimeoutError`.
        Cancelling the caller stops the wait at once and leaves nothing running.
        """
        check_timeout(timeout)
        _check_policy(policy)
        async with contextlib.aclosing(self.watch(timeout=timeout, policy=policy)) as snapshots:
            async for snapshot in snapshots:
                if snapshot.is_terminal:
                    return outcome_of(snapshot)
        raise AssertionError("watch() ends only after a terminal snapshot")

    async def cancel(self) -> None:
        """Cancel the task while it is PENDING.

        Raises :class:`TaskNotCancelableError` once it runs or has ended. A
        task already CANCELED counts as success, so a cancel whose answer was
        lost can be repeated safely.
        """
        try:
            await self._api.cancel(self.task_id)
        except TaskNotCancelableError:
            if (await self.refresh()).status is not TaskStatus.CANCELED:
                raise
        # Off the board: a watcher parked behind the queue wakes and sees it CANCELED.
        self._api.pacing.board.release(self.task_id)

    async def _poll_once(self, inbox: Inbox | None = None) -> TaskSnapshot:
        # An event that arrived before this query left is answered by it.
        event = inbox.take() if inbox is not None else None
        # Within a wait, a poll is retried for as long as the wait's deadline allows.
        snapshot = self._observe(await self._api.get_task(self.task_id, deadline=None))
        if event is not None and not snapshot.is_terminal and event.status.is_terminal:
            # Signed, but stale or forged: the service says the task goes on.
            log.info(
                "task %s: an event said %s; it is %s",
                self.task_id,
                event.raw_status,
                snapshot.raw_status,
            )
            self._api.pacing.notices.refuted(event)
        return snapshot

    async def _before(self, deadline: float, budget: float, step: Awaitable[_T]) -> _T:
        scope = asyncio.timeout_at(deadline)
        try:
            # A Retry-After that ends past the deadline fails the poll at once.
            with retries_end_at(deadline):
                async with scope:
                    return await step
        except TimeoutError:
            if not scope.expired():
                raise  # not our deadline: someone else's timeout
            raise WaitTimeoutError(
                task_id=self.task_id, snapshot=self._last, timeout=budget
            ) from None


async def _first_of(*steps: Awaitable[None]) -> None:
    """Return when the first of ``steps`` does; the others are cancelled."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

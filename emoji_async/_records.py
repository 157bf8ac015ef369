"""What a submitter records of the tasks no job holds, and the work it leaves running.

Orphans (tasks only submits whose job moved on may have made) and abandoned
tasks (created for a caller that stopped waiting) are kept here, oldest first,
and each is told to the listeners as it is recorded: a client's event hook, a
batch's journal. A submit whose caller stopped waiting runs on in the
background, and so do the cancels and the records of shared state it leads
to; :meth:`Records.drain` lets them finish before the client closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import attrs

from ._api import ServiceAPI
from ._errors import EmojiError
from ._models import AbandonedTask, OrphanTask
from ._paid_request import PaidRequest
from ._submission import Settled

__all__ = ["Listener", "Records", "SeenListener"]

log = logging.getLogger("emoji_async")

#: Told of each orphan and each abandoned task as it is recorded.
Listener = Callable[[OrphanTask | AbandonedTask], object]
#: Told of the tasks a listing showed for the first time, with when (epoch seconds).
SeenListener = Callable[[list[tuple[str, float]]], object]


class Records:
    """The orphans and abandoned tasks recorded, their listeners, and background work.

    One per submitter, shared by its views (see :meth:`Submitter.gated
    <emoji_async._reconcile.Submitter.gated>`).
    """

    def __init__(self, api: ServiceAPI) -> None:
        self._api = api
        self.background: set[asyncio.Future[Any]] = set()
        self.listeners: list[Listener] = []
        self.seen_listeners: list[SeenListener] = []
        self.orphans: list[OrphanTask] = []
        self.abandoned: list[AbandonedTask] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Tell ``listener`` of each orphan and abandoned task; returns the unsubscribe."""
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    @contextlib.contextmanager
    def listening(
        self, listener: Listener, *, on_seen: SeenListener | None = None
    ) -> Iterator[None]:
        """Within the block, ``listener`` is told of each orphan and abandoned task,
        ``on_seen`` of the tasks each listing showed for the first time (with when)."""
        unsubscribe = self.subscribe(listener)
        seen = self.seen_listeners
        if on_seen is not None:
            seen.append(on_seen)
        try:
            yield
        finally:
            unsubscribe()
            if on_seen is not None:
                seen.remove(on_seen)

    def tell(self, record: OrphanTask | AbandonedTask) -> None:
        """Tell every listener of ``record``; a listener that fails is logged, not raised."""
        for listener in list(self.listeners):
            try:
                listener(record)
            except Exception:
                log.exception("a listener failed on %s", type(record).__name__)

    def keep(self, work: asyncio.Future[Any]) -> None:
        """Hold ``work`` until it ends (:meth:`drain` waits for it)."""
        self.background.add(work)
        work.add_done_callback(self.background.discard)

    def spawn(self, work: Coroutine[Any, Any, Any], what: str | None) -> None:
        """Run ``work`` in the background (``aclose`` waits for it); log a failure as ``what``."""

        async def quietly() -> None:
            try:
                await work
            except EmojiError as exc:
                log.warning("could not %s: %s", what, exc)

        self.keep(asyncio.ensure_future(work if what is None else quietly()))

    async def drain(self, timeout: float) -> None:
        """Let submits whose caller stopped waiting settle (and their cancels finish)."""
        background = self.background
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

    def abandon(self, task_id: str, label: str, *, cancel: bool) -> None:
        """Record a task whose caller stopped waiting; cancel it while PENDING if asked."""
        record = AbandonedTask(
            task_id=task_id, label=label, cancelled=False, at=dt.datetime.now(dt.UTC)
        )
        self.abandoned.append(record)
        if cancel:
            log.warning(
                "task %s (%s) was created for a caller that stopped waiting: cancelling it",
                task_id,
                label,
            )
            self.spawn(self._cancel_abandoned(record), None)
        else:
            log.warning(
                "task %s (%s) was created for a caller that stopped waiting; it goes on"
                " (EmojiClient.abandoned lists it)",
                task_id,
                label,
            )
            self.tell(record)

    async def cancel_abandoned_tasks(self) -> list[str]:
        """Cancel every abandoned task still PENDING; the ids cancelled."""
        done: list[str] = []
        for record in [r for r in self.abandoned if not r.cancelled]:
            if await self._cancel_abandoned(record, quiet=True):
                done.append(record.task_id)
        return done

    async def _cancel_abandoned(self, record: AbandonedTask, *, quiet: bool = False) -> bool:
        try:
            await self._api.cancel(record.task_id)
        except EmojiError as exc:
            if not quiet:
                log.warning("could not cancel abandoned task %s: %s", record.task_id, exc)
                self.tell(record)
            return False
        cancelled = attrs.evolve(record, cancelled=True)
        abandoned = self.abandoned
        abandoned[abandoned.index(record)] = cancelled
        self.tell(cancelled)
        return True

    def left_behind(
        self, done: asyncio.Future[Settled], request: PaidRequest, cancel: bool
    ) -> None:
        """A submit whose caller stopped waiting ended: its task, if any, is abandoned."""
        if done.cancelled():
            return
        if (exc := done.exception()) is not None:
            log.warning("a submit whose caller stopped waiting ended without a task: %s", exc)
            return
        self.abandon(done.result().snapshot.task_id, request.label, cancel=cancel)

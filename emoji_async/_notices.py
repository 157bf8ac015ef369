"""The client's hub of task-finished notifications: what arrived, and who waits for it.

A receiver (:mod:`emoji_async.notify`) hands each verified event to
:meth:`Notices.deliver`. The hub keeps it (the same task and status twice is
one event: EventBridge may deliver it more than once, under several ids) and
wakes every waiter of its task (:meth:`Notices.following`). An event for a
task nobody here waits for is kept as *unclaimed*: another process may own
the task, or its waiter may start a moment later, and then wakes at once. One
for a task whose waiter here already saw it end (the safety net's poll came
first) is only counted, as *late*.

An event is never trusted alone: it is signed, but its status may be stale,
so a woken waiter confirms it with one query, and an event the query
contradicts is let go (:meth:`Notices.refuted`), so that a true one for the
same task and status wakes the waiter again. Memory is bounded: the newest
:data:`KEEP` events and unclaimed tasks are kept.

With shared pacing, an event delivered here is also relayed to the account's
other processes (the relay is the pacing backend's), and one they relay is
taken in without being relayed again (:meth:`Notices.relayed`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

import attrs

from ._models import TaskStatus
from ._notice import TaskFinished

__all__ = ["KEEP", "Inbox", "NoticeCounts", "Notices"]

#: Events (by task and status), unclaimed tasks and tasks seen ending that a hub
#: remembers, the oldest let go first.
KEEP = 10_000

_K = TypeVar("_K")
_V = TypeVar("_V")


@attrs.frozen(kw_only=True)
class NoticeCounts:
    """What a hub of notifications has done so far.

    ``delivered``: events taken in (duplicates left out), relayed ones
    included; ``duplicates``: events already seen for that task and status;
    ``woke``: events that woke a waiter; ``late``: events for a task whose
    waiter here had already seen it end; ``unclaimed``: events for a task
    nobody here waited for; ``claimed_late``: of those, the ones a waiter
    that started later found; ``refuted``: events the confirming query
    contradicted; ``relayed_in`` and ``relayed_out``: events received from,
    and sent to, the account's other processes.
    """

    delivered: int = 0
    duplicates: int = 0
    woke: int = 0
    late: int = 0
    unclaimed: int = 0
    claimed_late: int = 0
    refuted: int = 0
    relayed_in: int = 0
    relayed_out: int = 0


class Inbox:
    """One waiter's mailbox for its task's notifications."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self._event: TaskFinished | None = None
        self._arrived = asyncio.Event()

    def put(self, event: TaskFinished) -> None:
        """An event for this task arrived: the waiter wakes."""
        self._event = event
        self._arrived.set()

    @property
    def pending(self) -> TaskFinished | None:
        """The event that arrived since the waiter last took one, if any."""
        return self._event

    def take(self) -> TaskFinished | None:
        """The pending event, if any, now answered by the query about to be sent."""
        event, self._event = self._event, None
        self._arrived.clear()
        return event

    async def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` or until an event arrives; whether one did."""
        if self._event is not None:
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._arrived.wait()
        return self._event is not None

    async def arrival(self) -> None:
        """Return when an event is pending."""
        await self._arrived.wait()


class Notices:
    """The task-finished notifications this client received, and the waiters they wake.

    :meth:`deliver` is what a receiver calls for each verified event
    (:class:`~emoji_async.notify.TaskFinished`). :attr:`unclaimed` holds the
    events of tasks nobody here waited for; :attr:`counts` says what the hub
    did. It exists for the client's whole life: events that arrive before
    the client opens, or after it closed, are kept all the same.
    """

    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._seen: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._unclaimed: collections.OrderedDict[str, TaskFinished] = collections.OrderedDict()
        self._ended: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._inboxes: dict[str, set[Inbox]] = {}
        self._relay: Callable[[TaskFinished], bool] | None = None
        self._counts = NoticeCounts()

    def __repr__(self) -> str:
        counts = self._counts
        return (
            f"<Notices delivered={counts.delivered} woke={counts.woke}"
            f" unclaimed={len(self._unclaimed)}>"
        )

    async def deliver(self, event: TaskFinished) -> None:
        """Take in one verified event: record it, wake its task's waiters, relay it.

        An event seen before (same task, same status) changes nothing. With
        shared pacing it is relayed to the account's other processes.
        """
        if self._take(event) and self._relay is not None and self._relay(event):
            self._count(relayed_out=1)

    def relayed(self, event: TaskFinished) -> None:
        """Take in an event another process of the account relayed (never relayed again)."""
        if self._take(event):
            self._count(relayed_in=1)

    def relay_with(self, relay: Callable[[TaskFinished], bool] | None) -> None:
        """Send each event delivered here to the account's other processes too (``None``: not).

        ``relay`` says whether it sent the event to anyone (:attr:`counts`' ``relayed_out``).
        """
        self._relay = relay

    def _take(self, event: TaskFinished) -> bool:
        key = (event.task_id, event.raw_status)
        if key in self._seen:
            self._seen.move_to_end(key)
            self._count(duplicates=1)
            return False
        self._remember(self._seen, key, None)
        self._count(delivered=1)
        if not _wakes(event):
            return True
        inboxes = self._inboxes.get(event.task_id)
        if inboxes:
            for inbox in inboxes:
                inbox.put(event)
            self._count(woke=1)
        elif event.task_id in self._ended:
            self._count(late=1)
        else:
            self._remember(self._unclaimed, event.task_id, event)
            self._count(unclaimed=1)
        return True

    def refuted(self, event: TaskFinished) -> None:
        """The query that confirmed ``event`` says otherwise: let it go.

        A true event for the same task and status, delivered later, then wakes
        the waiter again instead of being taken for a duplicate.
        """
        self._seen.pop((event.task_id, event.raw_status), None)
        self._count(refuted=1)

    def ended(self, task_id: str) -> None:
        """A waiter here saw ``task_id`` end: an event for it that comes later is only late."""
        self._remember(self._ended, task_id, None)

    @contextlib.contextmanager
    def following(self, task_id: str) -> Iterator[Inbox]:
        """An inbox for ``task_id``'s events while the block runs.

        An unclaimed event of that task is in it at once.
        """
        inbox = Inbox(task_id)
        early = self._unclaimed.pop(task_id, None)
        if early is not None:
            inbox.put(early)
            self._count(claimed_late=1)
        self._inboxes.setdefault(task_id, set()).add(inbox)
        try:
            yield inbox
        finally:
            inboxes = self._inboxes.get(task_id)
            if inboxes is not None:
                inboxes.discard(inbox)
                if not inboxes:
                    del self._inboxes[task_id]

    @property
    def unclaimed(self) -> tuple[TaskFinished, ...]:
        """Events of tasks nobody here waited for (the newest :data:`KEEP`), oldest first."""
        return tuple(self._unclaimed.values())

    @property
    def counts(self) -> NoticeCounts:
        """What the hub has done so far."""
        return self._counts

    def _remember(self, store: collections.OrderedDict[_K, _V], key: _K, value: _V) -> None:
        """``store[key] = value``, newest last, the oldest let go past the hub's bound."""
        store[key] = value
        store.move_to_end(key)
        if len(store) > self._keep:
            store.popitem(last=False)

    def _count(self, **more: int) -> None:
        counts = self._counts
        self._counts = attrs.evolve(
            counts, **{name: getattr(counts, name) + n for name, n in more.items()}
        )


def _wakes(event: TaskFinished) -> bool:
    """Whether ``event`` says its task ended (or a state this version does not know).

    A PENDING or RUNNING event is not worth a query: the waiter's own schedule
    already counts on the task running.
    """
    return event.status.is_terminal or event.status is TaskStatus.OTHER

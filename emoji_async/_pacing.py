"""How one client keeps under the account's limits, and where it keeps that state.

Two mechanisms, both client-wide (shared by every task of one client): a
:class:`~emoji_async._pacer.Pacer` per endpoint group spaces requests by when they leave,
and the :class:`~emoji_async._task_board.TaskBoard` lets a queued task's
watcher sleep until a task ahead of it ends.

Where the account's state lives is a :class:`PacingBackend`, an interface
whose every method is abstract: each backend says what it does for each of
them, and no caller asks which backend it has. :class:`InProcess` (the
default) keeps the state in this process: its own pacers and one submit lock;
it creates no task another process could adopt, sees no unsettled submit but
its own, and lets a batch's own gate bound the tasks in flight, so those
methods do nothing, each saying why. :class:`~emoji_async._shared.RedisBackend`
keeps the state in Redis, so that every process of the account shares the
request pacing, one lock serializing the paid submits, and the count of the
account's tasks in flight; it also relays task-finished notifications between
the account's processes, which :class:`InProcess` has none to relay to.

:class:`Pacing` is what one client holds: its limits, its backend, its task
board, the run times it has learned, and its hub of notifications (with the
safety net's schedule when waiting uses them).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Collection, Coroutine
from typing import Any

from ._adaptive import DurationModel
from ._lane_lock import LaneLock
from ._lanes import Lanes
from ._limits import RateLimits, group_of
from ._notice import TaskFinished
from ._notices import Notices
from ._notify_policy import NotifyPolicy
from ._pacer import FREE, Pacer, Turn
from ._task_board import TaskBoard
from ._values import Endpoint, Lane

__all__ = ["InProcess", "Pacing", "PacingBackend"]


class PacingBackend(abc.ABC):
    """Where one client keeps what it shares with the rest of the account.

    Three things, each either this process's own (:class:`InProcess`) or the
    account's, shared by every process through Redis:

    * the request pacing of each endpoint group (:meth:`acquire`, :meth:`hold`);
    * the paid submits: a lock serializing them (:meth:`submit_lock`), the tasks
      created (:meth:`remember`, :meth:`remember_later`, :meth:`known`), and
      submits sent whose answer nobody has seen yet (:meth:`sending`,
      :meth:`settled`, :meth:`unsettled`);
    * the account's tasks in flight, each a lease renewed while a process
      follows it (:meth:`occupy`, :meth:`vacate`, :meth:`room`), and the cap
      on them that every process's batches keep together (:meth:`batch_cap`);
    * the task-finished notifications: each delivered here told to the other
      processes (:meth:`relay`), theirs taken in (:meth:`listen`), and the
      latest of a task asked for when a waiter starts (:meth:`recall`).
    """

    @abc.abstractmethod
    def attach(self, board: TaskBoard, lanes: Lanes) -> None:
        """The board of the tasks this process follows (its leases are renewed), and
        its lanes (its bulk tasks, moved aside for other processes' interactive ones)."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect to where the state lives."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Let go of everything held (locks, leases) and disconnect."""

    @abc.abstractmethod
    async def acquire(self, endpoint: Endpoint) -> Turn:
        """Wait until a request to ``endpoint`` may start; its :class:`Turn` is told when it
        leaves or ends, and the group's next turn waits for that."""

    @abc.abstractmethod
    def hold(self, endpoint: Endpoint, seconds: float | None) -> float | None:
        """Hold back ``endpoint``'s group after a 429; the wait imposed, or ``None`` if unpaced."""

    @abc.abstractmethod
    def submit_lock(self, lane: Lane | None = None) -> contextlib.AbstractAsyncContextManager[None]:
        """Held across a paid submit and its settling: one at a time on the account.

        Waiters of :attr:`Lane.INTERACTIVE` are served before those of
        :attr:`Lane.BULK`, a bulk one passed at most
        :data:`~emoji_async._lane_lock.MAX_OVERTAKEN` times; ``None`` (a look at
        the task list, short) goes first too.
        """

    @abc.abstractmethod
    async def remember(self, task_ids: Collection[str]) -> None:
        """Tasks created by a submit of this process: never adopted by another one's."""

    @abc.abstractmethod
    def remember_later(
        self, task_ids: Collection[str], spawn: Callable[[Coroutine[Any, Any, None]], None]
    ) -> None:
        """:meth:`remember` in the background, for a caller that must not wait.

        ``spawn`` runs the work (and says what a failure is); it is called
        only when there is something to remember.
        """

    @abc.abstractmethod
    def forget(self, task_id: str) -> None:
        """A task nobody holds any more: a later settling may adopt it."""

    @abc.abstractmethod
    async def known(self, task_ids: Collection[str]) -> set[str]:
        """Those of ``task_ids`` that a submit of any process of the account created."""

    @abc.abstractmethod
    async def sending(self, digest: str) -> str:
        """A submit of these inputs (``digest``) leaves now; the name of its record."""

    @abc.abstractmethod
    async def settled(self, name: str) -> None:
        """A submit is settled (its task known, or provably none).

        ``name`` is a record :meth:`sending` returned, or a digest: every
        record of those inputs, a stopped process's included.
        """

    @abc.abstractmethod
    async def unsettled(self, digest: str, horizon: float) -> int:
        """Submits of other inputs sent in the last ``horizon`` seconds and never settled.

        Only a process that stopped while its submit was on the wire leaves
        one: its task may still appear in the task list, so it must not be
        taken for another submit's.
        """

    @abc.abstractmethod
    def announce(self, task_id: str) -> None:
        """``task_id``, counted in flight (:meth:`occupy`), is an interactive task.

        The account's other processes move aside their movable bulk tasks
        submitted before it (each process only its own: only the owner of a
        batch can journal and resubmit its jobs).
        """

    @abc.abstractmethod
    async def occupy(self, task_id: str) -> None:
        """Count ``task_id`` in flight on the account."""

    @abc.abstractmethod
    def vacate(self, task_id: str, ended: float | None) -> None:
        """``task_id`` ended (at ``ended``, epoch seconds), or nobody here follows it any more."""

    @abc.abstractmethod
    async def in_flight(self) -> int:
        """The account's tasks in flight, as far as this backend knows."""

    @abc.abstractmethod
    async def room(self, cap: int) -> None:
        """Wait until fewer than ``cap`` of the account's tasks are in flight."""

    @abc.abstractmethod
    def batch_cap(self, default: int) -> int | None:
        """The account's tasks in flight that all its batches keep together, at most.

        ``default`` is what one batch would keep in flight alone; ``None``
        when a batch's own gate is the only bound needed.
        """

    @abc.abstractmethod
    def relay(self, event: TaskFinished) -> bool:
        """Tell the account's other processes of ``event``, delivered here (in the background).

        Whether it was sent to anyone.
        """

    @abc.abstractmethod
    def listen(self, notices: Notices) -> None:
        """Until the backend closes, hand ``notices`` the events other processes relay."""

    @abc.abstractmethod
    async def recall(self, task_id: str) -> TaskFinished | None:
        """The event another process relayed lately for ``task_id``, if any.

        For a waiter that starts after the event went by: it wakes at once.
        """


class InProcess(PacingBackend):
    """The account as this process sees it: its own pacers and one submit lock.

    No other process shares this state, so what a backend shares with them
    does nothing here: no task is created elsewhere, no submit of another
    process is left unsettled, and a batch's own gate bounds the tasks in flight.
    """

    def __init__(self, limits: RateLimits | None) -> None:
        self.limits = limits
        self._lock = LaneLock()
        self._pacers: dict[str, Pacer] = {}
        if limits is not None:
            for endpoint in Endpoint:
                group = group_of(endpoint)
                if group not in self._pacers:
                    self._pacers[group] = Pacer(limits.interval(endpoint), limits.window)

    def attach(self, board: TaskBoard, lanes: Lanes) -> None:
        """The board and the lanes already hold every task there is to know of."""

    async def open(self) -> None:
        """Nothing to open in this process."""

    async def aclose(self) -> None:
        """Nothing held outside this process."""

    async def acquire(self, endpoint: Endpoint) -> Turn:
        pacer = self._pacers.get(group_of(endpoint))
        return FREE if pacer is None else await pacer.acquire()

    def hold(self, endpoint: Endpoint, seconds: float | None) -> float | None:
        pacer = self._pacers.get(group_of(endpoint))
        return None if pacer is None else pacer.hold(seconds)

    def submit_lock(self, lane: Lane | None = None) -> contextlib.AbstractAsyncContextManager[None]:
        return self._lock.turn(lane)

    async def remember(self, task_ids: Collection[str]) -> None:
        """No other process here to keep from adopting them."""

    def remember_later(
        self, task_ids: Collection[str], spawn: Callable[[Coroutine[Any, Any, None]], None]
    ) -> None:
        """No other process here to keep from adopting them: nothing to spawn."""

    def forget(self, task_id: str) -> None:
        """Nothing was remembered."""

    async def known(self, task_ids: Collection[str]) -> set[str]:
        """No submit of another process: none."""
        return set()

    async def sending(self, digest: str) -> str:
        """No record kept: the digest names it."""
        return digest

    async def settled(self, name: str) -> None:
        """No record kept."""

    async def unsettled(self, digest: str, horizon: float) -> int:
        """No other process to have left one."""
        return 0

    def announce(self, task_id: str) -> None:
        """No other process to tell: this client's :class:`Lanes` moved its own bulk tasks."""

    async def occupy(self, task_id: str) -> None:
        """In one process, a batch's gate counts its tasks."""

    def vacate(self, task_id: str, ended: float | None) -> None:
        """Nothing was counted."""

    async def in_flight(self) -> int:
        """Nothing is counted here."""
        return 0

    async def room(self, cap: int) -> None:
        """In one process, a batch's gate is enough."""

    def batch_cap(self, default: int) -> int | None:
        """In one process, a batch's gate is enough."""
        return None

    def relay(self, event: TaskFinished) -> bool:
        """No other process to tell: the hub here has the event already."""
        return False

    def listen(self, notices: Notices) -> None:
        """No other process relays anything here."""

    async def recall(self, task_id: str) -> TaskFinished | None:
        """No other process relays anything here: the hub here knows every event there is."""
        return None


class Pacing:
    """What one client knows of its account: pacing, its task board, and learned run times.

    ``notices`` is the client's hub of task-finished notifications (its own,
    by default), relayed through the backend; ``notify`` the safety net's
    schedule when waiting uses them (``None``: waiting polls, as without them).
    """

    def __init__(
        self,
        limits: RateLimits | None,
        backend: PacingBackend | None = None,
        *,
        notices: Notices | None = None,
        notify: NotifyPolicy | None = None,
    ) -> None:
        self.limits = limits
        self.backend = backend if backend is not None else InProcess(limits)
        self.board = TaskBoard(on_release=self.backend.vacate)
        #: This client's tasks by lane, and the batches' movers of bulk ones.
        self.lanes = Lanes()
        self.backend.attach(self.board, self.lanes)
        self.durations = DurationModel()
        self.notices = notices if notices is not None else Notices()
        self.notify = notify
        self.notices.relay_with(self.backend.relay)
        if notify is not None:
            self.backend.listen(self.notices)

    def created(self, task_id: str, lane: Lane) -> None:
        """A submit of this client created ``task_id`` in ``lane``, counted in flight.

        Called in creation order: an interactive task moves aside this client's
        bulk tasks created before it (:class:`Lanes`), and the account's other
        processes are told to move theirs (:meth:`PacingBackend.announce`).
        """
        self.lanes.created(task_id, lane)
        if lane is Lane.INTERACTIVE:
            self.backend.announce(task_id)

    async def acquire(self, endpoint: Endpoint) -> Turn:
        """Wait until a request to ``endpoint`` may start; tell its :class:`Turn` when it
        leaves (:meth:`Turn.sent`) and, in any case, when the attempt ends (:meth:`Turn.end`)."""
        return await self.backend.acquire(endpoint)

    def hold(self, endpoint: Endpoint, seconds: float | None) -> float | None:
        """Hold back ``endpoint``'s group after a 429; the wait imposed, or ``None`` if unpaced.

        Never longer than ``RateLimits.max_hold``, whatever the service asked for.
        """
        if seconds is not None and self.limits is not None:
            seconds = min(seconds, self.limits.max_hold)
        return self.backend.hold(endpoint, seconds)

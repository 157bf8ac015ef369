"""The account's tasks: a FIFO queue in front of a fixed number of running slots.

The model is advanced lazily and exactly. Nothing runs in the background: every
access first calls ``advance(now)``, which replays what happened since the last
access: while the earliest-ending running task ends at or before ``now``, it
finishes *at its end time* and the head of the queue starts at that same
instant. The answers are therefore the same whether a client polls every
millisecond or once an hour, and a queued task's ``scheduled_at`` equals its
predecessor's ``ended_at`` to the last bit.

A task's run time is drawn when it is submitted. One longer than the provider's
3 h timeout stops at the 3 h mark (counted from its start) and FAILS with
``InternalError.Timeout``. A task is forgotten 24 h after its submission.

A ``TaskWatcher`` (the simulated EventBridge, when notifications are on) hears
of every start and every end as the replay reaches it; each end is reported
at the instant it happened (``ended_at``), whenever the replay finds it.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import Protocol

import attrs

from ._clock import Clock
from ._config import TASK_RETENTION, TASK_TIMEOUT
from ._records import SimulatorStats
from ._wire import FAILURE_MESSAGES, fault_message

__all__ = ["TERMINAL", "SimulatedTask", "TaskBoard", "TaskWatcher"]

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED = (
    "PENDING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELED})

#: A box as the submit sent it: ``(x1, y1, x2, y2)`` in pixels.
Box = tuple[int, int, int, int]


@attrs.frozen
class SimulatedTask:
    """The true record of one task, as the simulator holds it.

    Times are model instants (``time.monotonic()``, like ``RequestRecord.at``);
    ``duration`` is the drawn run time in provider seconds, before scaling.
    ``code``/``message`` are set for FAILED tasks; ``request_id`` is the one the
    submit was answered with. ``image_url``, ``driven_id``, ``face_bbox`` and
    ``ext_bbox`` are the inputs the task was made from, as the submit sent
    them: no answer of the provider shows them, so only here can a test check
    which job each task really belongs to. ``api_key_id`` names the key that
    submitted it, as the task list shows it.
    """

    task_id: str
    status: str
    model: str
    image_url: str
    driven_id: str
    face_bbox: Box
    ext_bbox: Box
    duration: float
    video_seconds: int
    request_id: str
    submitted_at: float
    scheduled_at: float | None
    ended_at: float | None
    code: str | None
    message: str | None
    api_key_id: str = ""


@attrs.define
class _Task:
    task_id: str
    seq: int
    model: str
    image_url: str
    driven_id: str
    face_bbox: Box
    ext_bbox: Box
    duration: float
    video_seconds: int
    request_id: str
    fail_code: str | None
    submitted_at: float
    api_key_id: str = ""
    fail_message: str | None = None
    status: str = PENDING
    scheduled_at: float | None = None
    ends_at: float | None = None
    ended_at: float | None = None
    code: str | None = None
    message: str | None = None

    def view(self) -> SimulatedTask:
        return SimulatedTask(
            task_id=self.task_id,
            status=self.status,
            model=self.model,
            image_url=self.image_url,
            driven_id=self.driven_id,
            face_bbox=self.face_bbox,
            ext_bbox=self.ext_bbox,
            duration=self.duration,
            video_seconds=self.video_seconds,
            request_id=self.request_id,
            submitted_at=self.submitted_at,
            scheduled_at=self.scheduled_at,
            ended_at=self.ended_at,
            code=self.code,
            message=self.message,
            api_key_id=self.api_key_id,
        )


class TaskWatcher(Protocol):
    """Hears of the board's changes: a task starting (which moves the next end), a task ending."""

    def started(self, ends_at: float) -> None: ...

    def ended(self, task: SimulatedTask) -> None: ...


class TaskBoard:
    """Every task of the account, the queue and the running slots.

    ``watcher``, if set, hears of every start and end (``TaskWatcher``).
    """

    def __init__(
        self,
        clock: Clock,
        stats: SimulatorStats,
        *,
        slots: int | None,
        on_success: Callable[[SimulatedTask], None],
    ) -> None:
        self._clock = clock
        self._stats = stats
        self._slots = slots
        self._on_success = on_success
        self._tasks: dict[str, _Task] = {}
        self._order: deque[_Task] = deque()  # by submission, oldest first
        self._queue: deque[_Task] = deque()
        self._running: list[tuple[float, int, _Task]] = []  # heap by end time
        self._seq = itertools.count()
        self.watcher: TaskWatcher | None = None

    def create(
        self,
        *,
        task_id: str,
        model: str,
        image_url: str,
        driven_id: str,
        face_bbox: Box,
        ext_bbox: Box,
        duration: float,
        video_seconds: int,
        request_id: str,
        fail_code: str | None,
        now: float,
        api_key_id: str = "",
        fail_message: str | None = None,
    ) -> SimulatedTask:
        """Accept a task at ``now``: it starts at once if a slot is free, else it queues."""
        self.advance(now)
        task = _Task(
            task_id=task_id,
            seq=next(self._seq),
            model=model,
            image_url=image_url,
            driven_id=driven_id,
            face_bbox=face_bbox,
            ext_bbox=ext_bbox,
            duration=duration,
            video_seconds=video_seconds,
            request_id=request_id,
            fail_code=fail_code,
            submitted_at=now,
            api_key_id=api_key_id,
            fail_message=fail_message,
        )
        self._tasks[task_id] = task
        self._order.append(task)
        self._stats.tasks_created += 1
        if not self._queue and (self._slots is None or len(self._running) < self._slots):
            self._start(task, now)
        else:
            self._queue.append(task)
        return task.view()

    def _start(self, task: _Task, at: float) -> None:
        run = min(task.duration, TASK_TIMEOUT)
        task.status = RUNNING
        task.scheduled_at = at
        task.ends_at = at + self._clock.scaled(run)
        heapq.heappush(self._running, (task.ends_at, task.seq, task))
        if self.watcher is not None:
            self.watcher.started(task.ends_at)

    def _finish(self, task: _Task, at: float) -> None:
        task.ended_at = at
        if task.duration > TASK_TIMEOUT:
            task.status = FAILED
            task.code = "InternalError.Timeout"
            task.message = FAILURE_MESSAGES["InternalError.Timeout"]
        elif task.fail_code is not None:
            task.status = FAILED
            task.code = task.fail_code
            task.message = task.fail_message or fault_message(task.fail_code)
        else:
            task.status = SUCCEEDED
            self._stats.video_seconds_billed += task.video_seconds
            self._on_success(task.view())
        if self.watcher is not None:
            self.watcher.ended(task.view())

    def advance(self, now: float) -> None:
        """Replay every end (and the start it frees) up to ``now``, in time order."""
        while self._running and self._running[0][0] <= now:
            ends_at, _, task = heapq.heappop(self._running)
            self._finish(task, ends_at)
            if self._queue:
                self._start(self._queue.popleft(), ends_at)
        retention = self._clock.scaled(TASK_RETENTION)
        while self._order and self._order[0].status in TERMINAL:
            oldest = self._order[0]
            if oldest.submitted_at + retention > now:
                break
            self._order.popleft()
            del self._tasks[oldest.task_id]

    def _visible(self, task: _Task, now: float) -> bool:
        return task.submitted_at + self._clock.scaled(TASK_RETENTION) > now

    def get(self, task_id: str, now: float) -> SimulatedTask | None:
        """The task as of ``now``; ``None`` if unknown or older than the retention."""
        self.advance(now)
        task = self._tasks.get(task_id)
        if task is None or not self._visible(task, now):
            return None
        return task.view()

    def cancel(self, task_id: str, now: float) -> bool:
        """Cancel a PENDING task at ``now``; ``False`` (nothing changes) for any other."""
        self.advance(now)
        task = self._tasks.get(task_id)
        if task is None or task.status != PENDING or not self._visible(task, now):
            return False
        self._queue.remove(task)
        task.status = CANCELED
        task.ended_at = now
        if self.watcher is not None:
            self.watcher.ended(task.view())
        return True

    def next_end(self) -> float | None:
        """When the earliest running task ends (a model instant), or ``None`` if none runs."""
        return self._running[0][0] if self._running else None

    def newest_first(self, now: float) -> list[SimulatedTask]:
        """Every task still retained at ``now``, the most recently submitted first."""
        self.advance(now)
        views: list[SimulatedTask] = []
        for task in reversed(self._order):
            if not self._visible(task, now):
                break
            views.append(task.view())
        return views

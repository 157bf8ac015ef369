"""What a batch reports while it runs: typed, frozen events for ``on_event``.

Used with ``EmojiClient.generate_many`` and ``EmojiClient.as_completed``.

Every event names its job by ``key`` and carries ``at``, a ``time.monotonic()``
reading. Job events follow a job's life (``Started``, ``Detected``, ``Submitted``,
``Queued``, ``Running``, ``Succeeded`` or ``Failed``, ``Downloaded``);
``Retrying`` and ``Throttled`` tell of requests that had to be repeated,
``Reconciled`` of a submit whose answer was lost, ``Preempted`` of a bulk
job's task moved aside for an interactive one;
``Resumed`` says the journal knew the job from an earlier run; ``Billed``
carries what a job was billed and the batch's running totals; ``Skipped``
says a job was not started (for the budget, or because the account was
refused); ``Requeued`` says a throttled job went back in line.

Two events speak of a task rather than a job's step: ``Orphaned`` (a task
no job holds, found in the task list; its ``key`` is the job whose submit
made it when only one may have, else ``""``) and ``Abandoned`` (a task whose
caller stopped waiting). They also reach ``EmojiClient(on_event=...)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import attrs

from ._budget import Spending
from ._errors import EmojiError
from ._models import BBox, VideoResult

__all__ = [
    "Abandoned",
    "Billed",
    "Detected",
    "Downloaded",
    "EventHandler",
    "Failed",
    "JobEvent",
    "Orphaned",
    "Preempted",
    "Queued",
    "Reconciled",
    "Requeued",
    "Resumed",
    "Retrying",
    "Running",
    "Skipped",
    "Started",
    "Submitted",
    "Succeeded",
    "Throttled",
]


@attrs.frozen(kw_only=True)
class JobEvent:
    """The base of every batch event."""

    key: str
    at: float = attrs.field(factory=time.monotonic)


@attrs.frozen(kw_only=True)
class Started(JobEvent):
    """The job took its place among the ``concurrency`` jobs in flight, in its ``lane``
    (``"interactive"`` or ``"bulk"``, a :class:`~emoji_async.Lane`'s value)."""

    lane: str = "bulk"


@attrs.frozen(kw_only=True)
class Resumed(JobEvent):
    """The journal knew this job; ``state`` is where the earlier run left it."""

    state: str
    task_id: str | None = None


@attrs.frozen(kw_only=True)
class Detected(JobEvent):
    """The face was found (one detection billed)."""

    face_bbox: BBox
    ext_bbox: BBox


@attrs.frozen(kw_only=True)
class Submitted(JobEvent):
    """The service accepted the job's task (the paid step)."""

    task_id: str


@attrs.frozen(kw_only=True)
class Billed(JobEvent):
    """The job was billed: a detection (``detections``, a rejection too) or a video.

    A detection whose answer was lost or unreadable counts as billed when it
    is sent (the service may have processed it), so a detection sent again
    after a lost answer is billed twice here.

    ``spent`` is the batch's running totals after it (with a journal, the
    earlier runs' spending included).
    """

    detections: int = 0
    video_seconds: int = 0
    spent: Spending


@attrs.frozen(kw_only=True)
class Skipped(JobEvent):
    """The job was not started: the budget's remainder could not cover what it may cost,
    or the account was refused before its turn (``reason`` says which)."""

    reason: str


@attrs.frozen(kw_only=True)
class Requeued(JobEvent):
    """The job was still throttled when its request's retry deadline passed.

    Nothing of it was created (a 429 proves that), so instead of failing it
    goes back in line after ``wait`` seconds: this is its ``round``-th time
    (at most ``limit``, after which the throttling is its outcome).
    """

    round: int
    limit: int
    wait: float
    reason: str


@attrs.frozen(kw_only=True)
class Reconciled(JobEvent):
    """A submit's answer was lost, and the task list settled it.

    ``task_id``: the task it created, found and adopted; ``None``: no task
    appeared within the reconcile window, so the submit is sent again.
    """

    task_id: str | None


@attrs.frozen(kw_only=True)
class Orphaned(JobEvent):
    """A task no job holds: a submit whose answer was lost made it, unproved or late.

    ``cancelled``: it was cancelled while PENDING and costs nothing; otherwise
    it was already ``status`` and bills if it succeeds. ``owners`` names the
    jobs whose submits may have made it.
    """

    task_id: str
    status: str
    cancelled: bool
    owners: tuple[str, ...]


@attrs.frozen(kw_only=True)
class Abandoned(JobEvent):
    """The caller stopped waiting after the paid submit left; ``task_id`` goes on.

    Unless ``cancelled`` (cancelled while PENDING), it bills if it succeeds:
    ``EmojiClient.abandoned`` lists it, ``EmojiClient.cancel_abandoned_tasks()``
    cancels what is still PENDING.
    """

    task_id: str
    cancelled: bool


@attrs.frozen(kw_only=True)
class Queued(JobEvent):
    """The task is PENDING; ``ahead`` tasks are in front of it.

    ``ahead`` counts this client's own tasks, or, when pacing is shared
    through Redis, the whole account's.
    """

    task_id: str
    ahead: int


@attrs.frozen(kw_only=True)
class Preempted(JobEvent):
    """The job's PENDING task was cancelled (free) to let the interactive task ``by``
    start first; the job is submitted again, behind it. ``moves``: how many times
    this job was moved aside so far."""

    task_id: str
    by: str
    moves: int


@attrs.frozen(kw_only=True)
class Running(JobEvent):
    """The task is generating."""

    task_id: str


@attrs.frozen(kw_only=True)
class Succeeded(JobEvent):
    """The task produced its video."""

    task_id: str
    video: VideoResult


@attrs.frozen(kw_only=True)
class Failed(JobEvent):
    """The job ended without a video; ``error`` says why."""

    error: EmojiError
    task_id: str | None = None


@attrs.frozen(kw_only=True)
class Downloaded(JobEvent):
    """The video is saved at ``path`` (``size`` bytes)."""

    path: Path
    size: int


@attrs.frozen(kw_only=True)
class Retrying(JobEvent):
    """A request of this job failed transiently and is sent again after ``wait`` seconds."""

    endpoint: str
    attempt: int
    wait: float
    reason: str


@attrs.frozen(kw_only=True)
class Throttled(JobEvent):
    """The service answered 429; every request to ``endpoint`` now waits ``wait`` seconds."""

    endpoint: str
    wait: float


#: What ``on_event`` is: called in the event loop, its return value ignored.
EventHandler = Callable[[JobEvent], object]

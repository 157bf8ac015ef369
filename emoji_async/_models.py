"""The values the client hands out: frozen, typed, and free of wire spellings."""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Sequence
from typing import Any, cast

import attrs

from ._checks import Check, matches

__all__ = [
    "AbandonedTask",
    "BBox",
    "FaceDetection",
    "OrphanTask",
    "TaskPage",
    "TaskSnapshot",
    "TaskStatus",
    "TaskSummary",
    "Usage",
    "VideoResult",
    "check_task_id",
]

#: How long a result URL stays valid after the task ends.
VIDEO_URL_LIFETIME = dt.timedelta(hours=24)


class TaskStatus(enum.StrEnum):
    """Where a task is in its life: ``PENDING -> RUNNING -> SUCCEEDED | FAILED``.

    ``CANCELED`` follows a cancel of a PENDING task; ``UNKNOWN`` is the
    service's answer for an id that never existed or is older than 24 h.
    ``OTHER`` stands for a status this version does not know yet: the task is
    treated as still in progress, and the snapshot's ``raw_status`` holds
    the word the service used.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"
    OTHER = "OTHER"

    @property
    def is_terminal(self) -> bool:
        """Whether the task can no longer change."""
        return self in _TERMINAL

    @property
    def progress(self) -> int:
        """0 while queued, 1 while running, 2 once ended: a task never goes back.

        ``OTHER`` counts as running: it is observed only on a live task.
        """
        if self is TaskStatus.PENDING:
            return 0
        return 2 if self.is_terminal else 1

    @classmethod
    def from_wire(cls, word: str) -> TaskStatus:
        """The member for a wire word, ``OTHER`` for a word this version does not know."""
        try:
            member = cls(word)
        except ValueError:
            return cls.OTHER
        return cls.OTHER if member is cls.OTHER else member


_TERMINAL = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.UNKNOWN}
)


#: What a task id is made of. The provider's are UUIDs (``0385dc79-5ff8-...``);
#: anything else (``..``, a slash, 10 kB) is not one, and never becomes part of a URL.
TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_TASK_IDS = matches(TASK_ID, "a task id: 1 to 128 letters, digits, '_' or '-'")


def check_task_id(value: object, *, field: str = "task_id") -> str:
    """``value`` if it is a task id (:data:`TASK_ID`), else a :class:`ValidationError`."""
    _TASK_IDS.validate(value, field=field)
    return cast(str, value)  # _TASK_IDS passes only a str


#: The largest box coordinate: far past any image (at most 7000 px a side), and
#: within the 32-bit integers a service stores.
MAX_COORDINATE = 2**31 - 1
_BOX = f"four ints [x1, y1, x2, y2] from 0 to {MAX_COORDINATE} with x1 < x2 and y1 < y2"


def _well_formed(values: Sequence[Any]) -> bool:
    if not all(type(v) is int and 0 <= v <= MAX_COORDINATE for v in values):
        return False
    x1, y1, x2, y2 = values
    return bool(x1 < x2 and y1 < y2)


def _four_ints(value: object) -> bool:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return False
    try:
        count = len(value)
    except OverflowError:  # a range() too long for len()
        count = -1
    return count == 4 and _well_formed(value)


#: A built box's own four ints, and anything given as a box.
_WELL_FORMED = Check(_BOX, _well_formed)
_BOX_GIVEN = Check(_BOX, _four_ints)


@attrs.frozen
class BBox:
    """A box in pixels: top-left ``(x1, y1)``, bottom-right ``(x2, y2)``.

    Every box is well formed: building one that is not raises :class:`ValidationError`.
    """

    x1: int
    y1: int
    x2: int
    y2: int

    def __attrs_post_init__(self) -> None:
        _WELL_FORMED.validate(self.as_list(), field="bbox")

    @classmethod
    def parse(cls, value: BBox | Sequence[int], *, field: str = "bbox") -> BBox:
        """A box from a :class:`BBox` or four ints, or :class:`ValidationError` naming ``field``."""
        if isinstance(value, BBox):
            return value
        _BOX_GIVEN.validate(value, field=field)
        x1, y1, x2, y2 = value
        return cls(x1, y1, x2, y2)

    def contains(self, other: BBox) -> bool:
        """Whether ``other`` lies inside this box (edges included)."""
        return (
            self.x1 <= other.x1
            and self.y1 <= other.y1
            and other.x2 <= self.x2
            and other.y2 <= self.y2
        )

    def as_list(self) -> list[int]:
        """The wire form ``[x1, y1, x2, y2]``."""
        return [self.x1, self.y1, self.x2, self.y2]


@attrs.frozen
class FaceDetection:
    """A portrait that passed detection: the boxes to submit with it.

    ``image_count`` is what the detection was billed (one image).
    """

    face_bbox: BBox
    ext_bbox: BBox
    request_id: str | None
    image_count: int = 1


@attrs.frozen
class Usage:
    """What a successful task was billed: ``video_duration`` whole seconds."""

    video_duration: int
    video_ratio: str | None = None


@attrs.frozen(kw_only=True)
class TaskSnapshot:
    """One observation of a task, as the task-status endpoint answered it.

    Times are timezone-aware. ``video_url`` and ``usage`` are set only on
    SUCCEEDED; ``code`` and ``message`` explain a FAILED task.
    """

    task_id: str
    status: TaskStatus
    raw_status: str
    submit_time: dt.datetime | None = None
    scheduled_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    video_url: str | None = None
    usage: Usage | None = None
    code: str | None = None
    message: str | None = None
    request_id: str | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the task can no longer change."""
        return self.status.is_terminal


@attrs.frozen(kw_only=True)
class VideoResult:
    """A finished video: where to fetch it, how long it is, and when its URL expires."""

    task_id: str
    video_url: str
    video_duration: int
    video_ratio: str | None = None
    submit_time: dt.datetime | None = None
    scheduled_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    request_id: str | None = None

    @property
    def url_expires_at(self) -> dt.datetime | None:
        """When the signed URL stops working (24 h after the task ended)."""
        return None if self.end_time is None else self.end_time + VIDEO_URL_LIFETIME


@attrs.frozen(kw_only=True)
class TaskSummary:
    """One task as the task list shows it (no video URL: query the task for that)."""

    task_id: str
    status: TaskStatus
    raw_status: str
    model_name: str | None = None
    region: str | None = None
    request_id: str | None = None
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class TaskPage:
    """One page of the task list.

    ``unreadable`` counts the rows of the page that could not be read: they are
    left out of ``tasks`` (each named in a WARNING), and still counted in ``total``.
    """

    tasks: tuple[TaskSummary, ...]
    total: int
    total_pages: int
    page_no: int
    page_size: int
    request_id: str | None = None
    unreadable: int = 0


@attrs.frozen(kw_only=True)
class OrphanTask:
    """A task no job holds: a submit whose answer was lost made it, and could not be proved to.

    Found in the task list by the client: made by a submit processed after its
    job had been sent again (late), or a candidate whose maker could not be
    told. ``cancelled``: it was cancelled while PENDING, so it costs nothing;
    otherwise it was already ``status`` (RUNNING, say) and is billed if it
    succeeds. ``owners`` names the jobs (or images) whose submits may have
    made it; ``seen_at`` is when the client found it (UTC).
    """

    task_id: str
    status: TaskStatus
    cancelled: bool
    owners: tuple[str, ...]
    seen_at: dt.datetime


@attrs.frozen(kw_only=True)
class AbandonedTask:
    """A paid task whose caller stopped waiting (it was cancelled) after the submit left.

    The task goes on and bills if it succeeds, unless ``cancelled`` (it was
    cancelled while PENDING). ``label`` names the job or image it was for;
    ``at`` is when the caller stopped waiting (UTC).
    """

    task_id: str
    label: str
    cancelled: bool
    at: dt.datetime

"""The shapes of the service's JSON answers, as attrs classes the converter fills.

One class per object of docs/wire.md, named for it; :mod:`~emoji_async._wire`
structures an answer into them and turns them into models. The validators here
hold what the types cannot: a task id is one (never ``..`` or a slash), an epoch
time and every other time lies where converting it cannot overflow, and a
video URL is an http(s) URL with a host. ``output.task_status`` picks one class
of :data:`AnyOutput` (:data:`STATUS_OF` names each one's status), so the fields
a state promises (``video_url`` on SUCCEEDED) are required exactly there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NewType

import attrs

from ._models import BBox, TaskStatus, Usage, check_task_id
from ._urls import check_http_url

__all__ = [
    "EARLIEST",
    "LATEST",
    "STATUS_OF",
    "AnyOutput",
    "DetectBody",
    "ErrorBody",
    "ListBody",
    "ListEntry",
    "OtherOutput",
    "Rows",
    "SubmitBody",
    "SucceededOutput",
    "TaskBody",
    "Url",
]

#: The times an answer may hold. Any real one is far inside; past these bounds,
#: converting a time to UTC or adding the URL lifetime to it would overflow.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
LATEST_MS = int(LATEST.timestamp()) * 1000


def _task_id(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    check_task_id(value, field=attribute.name)


def _epoch_ms(instance: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and value >= LATEST_MS:
        raise ValueError(f"{attribute.name} is not a time: {value} ms after 1970")


def _http_url(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    check_http_url(value, attribute.name)


@attrs.frozen(kw_only=True)
class DetectOutput:
    bbox_face: BBox | None = None
    ext_bbox_face: BBox | None = None
    code: str | None = None
    message: str | None = None


@attrs.frozen(kw_only=True)
class ImageUsage:
    image_count: int = 1


@attrs.frozen(kw_only=True)
class DetectBody:
    output: DetectOutput
    usage: ImageUsage | None = None
    request_id: str | None = None


@attrs.frozen(kw_only=True)
class SubmitOutput:
    task_id: str = attrs.field(validator=_task_id)
    task_status: str


@attrs.frozen(kw_only=True)
class SubmitBody:
    output: SubmitOutput
    request_id: str | None = None


@attrs.frozen(kw_only=True)
class TaskOutput:
    task_id: str = attrs.field(validator=_task_id)
    submit_time: dt.datetime | None = None
    scheduled_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    code: str | None = None
    message: str | None = None


@attrs.frozen(kw_only=True)
class PendingOutput(TaskOutput):
    pass


@attrs.frozen(kw_only=True)
class RunningOutput(TaskOutput):
    pass


#: A URL the client fetches: taken as it is, not redacted (a signed URL could
#: hold ``-sk-`` and 8 characters by chance, and a changed one would not download).
Url = NewType("Url", str)


@attrs.frozen(kw_only=True)
class SucceededOutput(TaskOutput):
    video_url: Url = attrs.field(validator=_http_url)


@attrs.frozen(kw_only=True)
class FailedOutput(TaskOutput):
    pass


@attrs.frozen(kw_only=True)
class CanceledOutput(TaskOutput):
    pass


@attrs.frozen(kw_only=True)
class UnknownOutput(TaskOutput):
    pass


@attrs.frozen(kw_only=True)
class OtherOutput(TaskOutput):
    task_status: str


AnyOutput = (
    PendingOutput
    | RunningOutput
    | SucceededOutput
    | FailedOutput
    | CanceledOutput
    | UnknownOutput
    | OtherOutput
)

STATUS_OF: dict[type, TaskStatus] = {
    PendingOutput: TaskStatus.PENDING,
    RunningOutput: TaskStatus.RUNNING,
    SucceededOutput: TaskStatus.SUCCEEDED,
    FailedOutput: TaskStatus.FAILED,
    CanceledOutput: TaskStatus.CANCELED,
    UnknownOutput: TaskStatus.UNKNOWN,
    # A tag no member claims; the default class catches every unknown word.
    OtherOutput: TaskStatus.OTHER,
}


@attrs.frozen(kw_only=True)
class TaskBody:
    output: AnyOutput
    usage: Usage | None = None
    request_id: str | None = None


@attrs.frozen(kw_only=True)
class ListEntry:
    task_id: str = attrs.field(validator=_task_id)
    status: str
    model_name: str | None = None
    region: str | None = None
    request_id: str | None = None
    gmt_create: int | None = attrs.field(default=None, validator=_epoch_ms)
    start_time: int | None = attrs.field(default=None, validator=_epoch_ms)
    end_time: int | None = attrs.field(default=None, validator=_epoch_ms)


#: The task list's rows, as they came: each is read into a :class:`ListEntry` on its
#: own, so that one row that cannot be read does not make the whole page unreadable.
Rows = NewType("Rows", list[Any])


@attrs.frozen(kw_only=True)
class ListBody:
    # ``total`` is required, and ``data`` unless ``total`` is 0: a page without them
    # must not read as an empty list (a search for an unanswered submit's task
    # would take it as proof of none). Whether an empty page carries ``data``
    # and ``total_page`` at all is not documented, so there both may be missing.
    data: Rows | None = None
    total: int
    total_page: int | None = None
    page_no: int = 1
    page_size: int = 10
    request_id: str | None = None


@attrs.frozen(kw_only=True)
class ErrorBody:
    code: str | None = None
    message: str | None = None
    request_id: str | None = None

"""Wire JSON to models, through the one cattrs converter of the library.

The shapes are the provider's (docs/wire.md), drawn in :mod:`~emoji_async._wire_shapes`.
``output.task_status`` picks one class of a tagged union, so the fields a state
promises (``video_url`` on SUCCEEDED) are required exactly there; a status this
version does not know falls to ``OtherOutput`` instead of failing. Anything that does not fit raises
:class:`UnexpectedResponseError`; cattrs' own errors never leave this module. One row of a
task list page that does not fit is left out of the page instead, named in a WARNING and
counted, unless the page is read whole (:func:`parse_task_page`).

What comes out is safe to compute with: a task id is 1 to 128 letters, digits,
``_`` or ``-`` (never ``..`` or a slash that would take a poll elsewhere), every integer
(a count, a size, epoch milliseconds) is non-negative, every time lies in a
range where converting it to UTC or adding a day cannot overflow, a video URL
is an http(s) URL with a host, and a detection's extended box contains its face.

And safe to repeat: every string of an answer but the video URL, and every
quote of one in an error, passes through :func:`~emoji_async._redact.redact`,
so a gateway that echoes the ``Authorization`` header puts no key into a
message, a journal or a log.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

import cattrs
from cattrs.strategies import configure_tagged_union

from ._errors import EmojiError, FaceRejectedError, UnexpectedResponseError
from ._models import TASK_ID, BBox, FaceDetection, TaskPage, TaskSnapshot, TaskStatus, TaskSummary
from ._redact import redact, redact_error
from ._wire_shapes import (
    EARLIEST,
    LATEST,
    STATUS_OF,
    AnyOutput,
    DetectBody,
    ErrorBody,
    ListBody,
    ListEntry,
    OtherOutput,
    Rows,
    SubmitBody,
    SucceededOutput,
    TaskBody,
    Url,
)

__all__ = [
    "BEIJING",
    "format_list_time",
    "parse_detection",
    "parse_error_body",
    "parse_submit",
    "parse_task",
    "parse_task_page",
    "task_id_in",
]

log = logging.getLogger("emoji_async")

#: The zone of the service's time strings (they carry none).
BEIJING = dt.timezone(dt.timedelta(hours=8), "UTC+08:00")

_T = TypeVar("_T")

# --- the converter -----------------------------------------------------------


def _strict(kind: type[_T], name: str) -> Callable[[Any, type], _T]:
    # cattrs' default hooks coerce (str(None) == "None", int("7") == 7, int(1.9) == 1);
    # an answer that breaks the protocol must fail instead.
    def hook(value: Any, _: type) -> _T:
        if type(value) is not kind and not (kind is float and type(value) is int):
            raise TypeError(f"expected {name}, got {type(value).__name__}")
        return kind(value)  # type: ignore[call-arg]

    return hook


def _structure_text(value: Any, _: type) -> str:
    # The one way a string enters from an answer: strict, and with no credential in it.
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return redact(value)


def _structure_count(value: Any, _: type) -> int:
    # Every integer of the protocol is a count, a size or epoch milliseconds.
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"expected an integer >= 0, got {value}")
    return value


def _structure_time(value: Any, _: type) -> dt.datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected a time string, got {type(value).__name__}")
    # fromisoformat reads "YYYY-MM-DD HH:MM:SS[.fff]" at a fraction of strptime's cost.
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"{value!r} is not a time of this service")
    return moment


def _structure_bbox(value: Any, _: type) -> BBox:
    return BBox.parse(value, field="bbox")


def _tag(cls: type) -> str:
    return STATUS_OF[cls].value


def make_converter() -> cattrs.Converter:
    """The library's converter: strict scalars, counts, Beijing times, boxes, the task union."""
    converter = cattrs.Converter()
    converter.register_structure_hook(str, _structure_text)
    converter.register_structure_hook(Url, _strict(str, "a string"))
    converter.register_structure_hook(Rows, _strict(list, "a list"))
    converter.register_structure_hook(int, _structure_count)
    converter.register_structure_hook(float, _strict(float, "a number"))
    converter.register_structure_hook(dt.datetime, _structure_time)
    converter.register_structure_hook(BBox, _structure_bbox)
    configure_tagged_union(
        AnyOutput, converter, tag_generator=_tag, tag_name="task_status", default=OtherOutput
    )
    return converter


_converter = make_converter()


def _structure(body: Any, cls: type[_T], what: str, http_status: int | None) -> _T:
    request_id = body.get("request_id") if isinstance(body, dict) else None
    request_id = redact(request_id) if isinstance(request_id, str) else None
    if not isinstance(body, dict):
        raise UnexpectedResponseError(
            f"{what}: expected a JSON object, got {type(body).__name__}",
            http_status=http_status,
            request_id=request_id,
        )
    try:
        return _converter.structure(body, cls)
    except _MISMATCH as exc:
        raise UnexpectedResponseError(
            f"{what} did not match the protocol: {_detail(exc)}",
            http_status=http_status,
            request_id=request_id,
        ) from redact_error(exc)


#: What structuring an answer that does not fit its shape raises.
_MISMATCH = (cattrs.BaseValidationError, EmojiError, TypeError, ValueError, KeyError)


def _detail(exc: Exception) -> str:
    """What did not fit, redacted."""
    if isinstance(exc, cattrs.BaseValidationError):
        return redact("; ".join(cattrs.transform_error(exc)))
    return redact(str(exc))


def _ms(value: int | None) -> dt.datetime | None:
    if value is None:
        return None
    return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)


# --- public parsers ----------------------------------------------------------


def parse_detection(body: Any, *, http_status: int = 200) -> FaceDetection:
    """A passed detection, or :class:`FaceRejectedError` for a rejected (still billed) one."""
    parsed = _structure(body, DetectBody, "the face-detect answer", http_status)
    out = parsed.output
    image_count = parsed.usage.image_count if parsed.usage is not None else 1
    if out.code is not None:
        raise FaceRejectedError(
            out.code, out.message or "", request_id=parsed.request_id, image_count=image_count
        )
    if out.bbox_face is None or out.ext_bbox_face is None:
        raise UnexpectedResponseError(
            "the face-detect answer has neither boxes nor an error code",
            http_status=http_status,
            request_id=parsed.request_id,
        )
    # The boxes are passed on as they came, nested or not: the provider never
    # promises that the extended box contains the face box (docs/wire.md).
    return FaceDetection(
        face_bbox=out.bbox_face,
        ext_bbox=out.ext_bbox_face,
        request_id=parsed.request_id,
        image_count=image_count,
    )


#: A task id inside a submit answer's bytes, whole (a closing quote) or cut short
#: (the characters of :data:`~emoji_async._models.TASK_ID`).
_TASK_ID_BYTES = re.compile(rb'"task_id"\s*:\s*"([A-Za-z0-9_-]{1,128})("?)')


def task_id_in(raw: bytes) -> tuple[str | None, bool]:
    """The task id a damaged submit answer still holds, and whether it arrived whole.

    A body cut short may end inside the id: its first characters still name
    the task among those in the list.
    """
    found = _TASK_ID_BYTES.search(raw)
    if found is None:
        return None, False
    return found.group(1).decode("ascii"), bool(found.group(2))


def parse_submit(body: Any, *, http_status: int = 200) -> TaskSnapshot:
    """The first snapshot of a task the service accepted.

    An answer that does not match the protocol but still names a task id (its
    status dropped, say) raises with that id in ``task_id_seen``. One whose task
    id is impossible (``..``, 10 kB) raises without: the submit is settled as
    one whose answer was lost, through the task list.
    """
    try:
        parsed = _structure(body, SubmitBody, "the submit answer", http_status)
    except UnexpectedResponseError as exc:
        output = body.get("output") if isinstance(body, dict) else None
        task_id = output.get("task_id") if isinstance(output, dict) else None
        if isinstance(task_id, str) and TASK_ID.fullmatch(task_id):
            exc.task_id_seen, exc.task_id_complete = task_id, True
        raise
    raw = parsed.output.task_status
    return TaskSnapshot(
        task_id=parsed.output.task_id,
        status=TaskStatus.from_wire(raw),
        raw_status=raw,
        request_id=parsed.request_id,
    )


def parse_task(body: Any, *, http_status: int = 200) -> TaskSnapshot:
    """A snapshot from the task-status endpoint."""
    parsed = _structure(body, TaskBody, "the task answer", http_status)
    out = parsed.output
    status = STATUS_OF[type(out)]
    raw = out.task_status if isinstance(out, OtherOutput) else status.value
    return TaskSnapshot(
        task_id=out.task_id,
        status=status,
        raw_status=raw,
        submit_time=out.submit_time,
        scheduled_time=out.scheduled_time,
        end_time=out.end_time,
        video_url=out.video_url if isinstance(out, SucceededOutput) else None,
        usage=parsed.usage if status is TaskStatus.SUCCEEDED else None,
        code=out.code,
        message=out.message,
        request_id=parsed.request_id,
    )


def parse_task_page(body: Any, *, http_status: int = 200, whole: bool = False) -> TaskPage:
    """One page of the task list.

    A row that cannot be read is left out, named in a WARNING, and counted
    (``TaskPage.unreadable``): the rest of the page is still read. With
    ``whole`` it makes the page unreadable instead (:class:`UnexpectedResponseError`):
    a search for an unanswered submit's task reads the list so, since a row left
    out could be the very task it looks for, and a page without it would read as
    proof of none.
    """
    parsed = _structure(body, ListBody, "the task list", http_status)
    if parsed.data is None and parsed.total != 0:
        raise UnexpectedResponseError(
            f"the task list counts {parsed.total} tasks but carries no data",
            http_status=http_status,
            request_id=parsed.request_id,
        )
    tasks: list[TaskSummary] = []
    unreadable = 0
    for index, row in enumerate(parsed.data or ()):
        try:
            entry = _converter.structure(row, ListEntry)
        except _MISMATCH as exc:
            if whole:
                raise UnexpectedResponseError(
                    f"the task list did not match the protocol: row {index}: {_detail(exc)}",
                    http_status=http_status,
                    request_id=parsed.request_id,
                ) from redact_error(exc)
            _left_out(row, index, parsed.page_no, exc)
            unreadable += 1
            continue
        tasks.append(
            TaskSummary(
                task_id=entry.task_id,
                status=TaskStatus.from_wire(entry.status),
                raw_status=entry.status,
                model_name=entry.model_name,
                region=entry.region,
                request_id=entry.request_id,
                created_at=_ms(entry.gmt_create),
                started_at=_ms(entry.start_time),
                ended_at=_ms(entry.end_time),
            )
        )
    pages = parsed.total_page
    if pages is None:
        pages = -(-parsed.total // parsed.page_size) if parsed.page_size > 0 else 0
    return TaskPage(
        tasks=tuple(tasks),
        total=parsed.total,
        total_pages=pages,
        page_no=parsed.page_no,
        page_size=parsed.page_size,
        request_id=parsed.request_id,
        unreadable=unreadable,
    )


def _left_out(row: Any, index: int, page_no: int, exc: Exception) -> None:
    """Say which row of a task list page is left out, and why: its index, its id if readable."""
    task_id = row.get("task_id") if isinstance(row, dict) else None
    named = (
        f"task {redact(task_id)}"
        if isinstance(task_id, str) and TASK_ID.fullmatch(task_id)
        else "no task id readable"
    )
    why = _detail(exc) if isinstance(row, dict) else f"not an object but {type(row).__name__}"
    log.warning(
        "the task list's page %d: row %d (%s) could not be read, so it is left out: %s",
        page_no,
        index,
        named,
        why,
    )


def parse_error_body(body: Any) -> tuple[str | None, str | None, str | None]:
    """``(code, message, request_id)`` of an error answer; ``None`` where it says nothing."""
    if not isinstance(body, dict):
        return None, None, None
    try:
        parsed = _converter.structure(body, ErrorBody)
    except (cattrs.BaseValidationError, TypeError, ValueError):
        return None, None, None
    return parsed.code, parsed.message, parsed.request_id


def format_list_time(moment: dt.datetime) -> str:
    """A time as the task list's ``start_time``/``end_time`` want it (Beijing time)."""
    if moment.tzinfo is None:
        raise ValueError("a list time must be timezone-aware")
    return moment.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")

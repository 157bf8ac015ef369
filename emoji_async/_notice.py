"""The task-finished event EventBridge delivers, and its lenient reading.

Every async task of the account publishes ``dashscope:System:AsyncTaskFinish``
(source ``acs.dashscope``) when it ends, as a CloudEvents 1.0 JSON document
(the HTTP target's body set to "complete event"). What the client needs of it
is small and firm: the event's ``source`` and ``id`` (unique per event), the
``data.task_id`` and ``data.task_status``. The rest is read leniently and never
trusted for anything that matters: the provider's own sample carries a
malformed ``time`` (``2023-1-25T01:45:16.969Z``), time stamps come as ``...Z``,
``+08:00`` or ``... PRC``, and ``data.start_time``/``end_time`` carry no zone
(Beijing time fits the sample). A time that cannot be read is ``None``, never
an error: the event still wakes its waiter, which confirms it with one query.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import attrs

from ._models import TaskStatus

__all__ = [
    "EVENT_SOURCE",
    "EVENT_TYPE",
    "MalformedEvent",
    "TaskFinished",
    "parse_event",
    "read_time",
]

#: The source and type of the provider's task-finished events.
EVENT_SOURCE = "acs.dashscope"
EVENT_TYPE = "dashscope:System:AsyncTaskFinish"

#: The zone the provider's zone-less times are read in.
_BEIJING = dt.timezone(dt.timedelta(hours=8), "UTC+08:00")
#: The longest identifier kept (an event id, a task id): anything longer is not the provider's.
_MAX_ID = 128
_TIMES = ("published", "start_time", "end_time")
_ZONE_WORDS = {"Z": "+00:00", "UTC": "+00:00", "GMT": "+00:00", "PRC": "+08:00", "CST": "+08:00"}
_MOMENT = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})[T ](\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,](\d{1,9}))?"
    r"\s*(Z|UTC|GMT|PRC|CST|[+-]\d{2}:?\d{2})?\s*$",
    re.IGNORECASE,
)


class MalformedEvent(ValueError):
    """The body is not a task-finished event this client can act on; the message says why.

    The message names fields, never quotes the body (it may carry account ids).
    """


@attrs.frozen(kw_only=True)
class TaskFinished:
    """One task-finished notification: which task, in which state, and what else was said.

    ``status`` is the task state the event reports (``OTHER`` for a word this
    version does not know; ``raw_status`` holds it). ``published`` (the
    event's ``time``, else ``aliyunpublishtime``), ``start_time`` and
    ``end_time`` are ``None`` when absent or unreadable. ``key`` (source and
    id) is unique per event; the same task may still be reported more than
    once, under several ids.
    """

    event_id: str
    source: str
    task_id: str
    status: TaskStatus
    raw_status: str
    request_id: str | None = None
    published: dt.datetime | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    region: str | None = None

    @property
    def key(self) -> str:
        """``source`` and ``event_id``: the same key is the same event delivered again."""
        return f"{self.source}/{self.event_id}"

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON values (times as ISO 8601), as :func:`from_json` reads them."""
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "source": self.source,
            "task_id": self.task_id,
            "raw_status": self.raw_status,
        }
        for name in ("request_id", "region"):
            if (value := getattr(self, name)) is not None:
                out[name] = value
        for name in _TIMES:
            if (moment := getattr(self, name)) is not None:
                out[name] = moment.isoformat()
        return out

    @classmethod
    def from_json(cls, value: Any) -> TaskFinished:
        """The event :meth:`to_json` wrote (another process's, through Redis)."""
        if not isinstance(value, dict):
            raise MalformedEvent("a relayed event is not an object")
        raw = _text(value, "raw_status")
        times = {
            name: read_time(value.get(name)) for name in ("published", "start_time", "end_time")
        }
        return cls(
            event_id=_text(value, "event_id"),
            source=_text(value, "source"),
            task_id=_text(value, "task_id"),
            status=_status(raw),
            raw_status=raw,
            request_id=_optional_text(value, "request_id"),
            region=_optional_text(value, "region"),
            **times,
        )


def read_time(value: object, *, zone: dt.tzinfo = _BEIJING) -> dt.datetime | None:
    """A time stamp in any of the forms the provider's events use, or ``None``.

    Month, day and hour may have one digit; a zone may be ``Z``, ``UTC``,
    ``PRC``/``CST`` (Beijing) or an offset; a time without one is in ``zone``.
    """
    if not isinstance(value, str) or len(value) > 64:
        return None
    found = _MOMENT.match(value)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in found.groups()[:6])
    fraction = (found.group(7) or "0")[:6].ljust(6, "0")
    word = found.group(8)
    tz: dt.tzinfo = zone
    if word is not None:
        offset = _ZONE_WORDS.get(word.upper(), word)
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return dt.datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=tz)
    except ValueError:
        return None


def parse_event(body: bytes | str) -> TaskFinished:
    """Read a delivered task-finished event; :class:`MalformedEvent` if it is not one.

    Firm: a JSON object, ``source`` and ``id`` strings, ``type`` the
    task-finished type, ``data.task_id`` and ``data.task_status`` strings.
    Lenient: everything else (see the module's note on time stamps).
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedEvent("the body is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedEvent("the body is not a JSON object")
    kind = document.get("type")
    if kind != EVENT_TYPE:
        raise MalformedEvent(f"type is not {EVENT_TYPE!r}")
    data = document.get("data")
    if isinstance(data, str):  # a target that delivers data as a JSON string
        try:
            data = json.loads(data)
        except ValueError:
            raise MalformedEvent("data is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedEvent("data is not an object")
    raw = _text(data, "task_status", where="data.")
    published = read_time(document.get("time")) or read_time(document.get("aliyunpublishtime"))
    return TaskFinished(
        event_id=_text(document, "id"),
        source=_text(document, "source"),
        task_id=_text(data, "task_id", where="data."),
        status=_status(raw),
        raw_status=raw,
        request_id=_optional_text(data, "request_id"),
        published=published,
        start_time=read_time(data.get("start_time")),
        end_time=read_time(data.get("end_time")),
        region=_optional_text(data, "region"),
    )


def _text(document: dict[str, Any], name: str, *, where: str = "") -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MalformedEvent(f"{where}{name} is missing or not a string")
    if len(value) > _MAX_ID or not value.isprintable():
        raise MalformedEvent(f"{where}{name} is not an identifier")
    return value.strip()


def _optional_text(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    if not isinstance(value, str) or len(value) > _MAX_ID or not value.isprintable():
        return None
    return value


def _status(raw: str) -> TaskStatus:
    try:
        status = TaskStatus(raw.upper())
    except ValueError:
        return TaskStatus.OTHER
    return status

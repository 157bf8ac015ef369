"""The checks of a task list query (:meth:`EmojiClient.list_tasks`), before anything is sent.

Each argument is refused with a :class:`ValidationError` naming it: a naive
time, a window over the service's 24 h, a status the service does not list by,
a page or page size outside what it takes.
"""

from __future__ import annotations

import datetime as dt

from ._checks import Check, optional, whole
from ._errors import ValidationError
from ._models import TaskStatus

__all__ = ["MAX_PAGE", "check_list_query"]

#: The largest page number taken: any real one is far below, and a number past it
#: (10**5000) could not even be written in a request or a message.
MAX_PAGE = 2**31 - 1

_AWARE = optional(
    Check(
        "a timezone-aware datetime",
        lambda moment: isinstance(moment, dt.datetime) and moment.tzinfo is not None,
    ),
    "a timezone-aware datetime",
)
_STATUS = optional(
    Check(
        "a TaskStatus other than OTHER",
        lambda status: isinstance(status, TaskStatus) and status is not TaskStatus.OTHER,
    ),
    "a TaskStatus other than OTHER",
)
_MODEL = optional(
    Check("a model name such as 'emoji-v1'", lambda model: isinstance(model, str) and model != ""),
    "a model name such as 'emoji-v1'",
)
_PAGE = whole(f"an int from 1 to {MAX_PAGE}", lambda page: 1 <= page <= MAX_PAGE)
_PAGE_SIZE = whole("an int from 1 to 100", lambda size: 1 <= size <= 100)


def check_list_query(
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    status: TaskStatus | None,
    model: str | None,
    page: int,
    page_size: int,
) -> None:
    """Raise :class:`ValidationError` for the first argument the task list would not take."""
    _AWARE.validate(start, field="start")
    _AWARE.validate(end, field="end")
    if (
        start is not None
        and end is not None
        and not (dt.timedelta(0) <= end - start <= dt.timedelta(hours=24))
    ):
        raise ValidationError("end", "a time 0 to 24 h after start", end)
    _STATUS.validate(status, field="status")
    _MODEL.validate(model, field="model")
    _PAGE.validate(page, field="page")
    _PAGE_SIZE.validate(page_size, field="page_size")

"""The checks of a task list query (:meth:`EmojiClient.list_tasks`), before anything is sent.

Each argument is refused with a :class:`ValidationError` naming it: a naive
time, a window over the service's 24 h, a status the service does not list by,
a page or page size outside what it takes.
"""

from __future__ import annotations

import datetime as dt

from ._errors import ValidationError
from ._models import TaskStatus

__all__ = ["MAX_PAGE", "check_list_query"]

#: The largest page number taken: any real one is far below, and a number past it
#: (10**5000) could not even be written in a request or a message.
MAX_PAGE = 2**31 - 1


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
    for name, moment in (("start", start), ("end", end)):
        if moment is not None and moment.tzinfo is None:
            raise ValidationError(name, "a timezone-aware datetime", moment)
    if (
        start is not None
        and end is not None
        and not (dt.timedelta(0) <= end - start <= dt.timedelta(hours=24))
    ):
        raise ValidationError("end", "a time 0 to 24 h after start", end)
    if status is not None and (not isinstance(status, TaskStatus) or status is TaskStatus.OTHER):
        raise ValidationError("status", "a TaskStatus other than OTHER", status)
    if model is not None and (not isinstance(model, str) or not model):
        raise ValidationError("model", "a model name such as 'emoji-v1'", model)
    if type(page) is not int or not 1 <= page <= MAX_PAGE:
        raise ValidationError("page", f"an int from 1 to {MAX_PAGE}", page)
    if type(page_size) is not int or not 1 <= page_size <= 100:
        raise ValidationError("page_size", "an int from 1 to 100", page_size)

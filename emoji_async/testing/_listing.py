"""The task list, ``GET /tasks``: its time window, its filters, its rows and pages.

The list shows the tasks the ``TaskBoard`` retains, as the provider's list
page does: rows of the account's ids, times in epoch milliseconds, and the
readings the documentation leaves open (``list_zone``, ``list_order``,
``empty_page``) taken from ``SimulatorConfig``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from ._clock import BEIJING, Clock
from ._config import SimulatorConfig
from ._tasks import TaskBoard
from ._validation import invalid, positive_param
from ._wire import SUBMIT_MODEL, new_request_id

__all__ = ["ACCOUNT_UID", "UNIQUE_KEY", "list_tasks"]

#: The account's ids as the task list shows them (the list's example shows none:
#: plausible Alibaba Cloud uids, the caller being the main account itself).
ACCOUNT_UID = "1587923346021841"
#: ``apikey:v1:<group>:<task>:<function>:<model>`` of an Emoji task. Inferred: the
#: provider shows this key only for other models (``apikey:v1:audio:asr:transcription:
#: paraformer-8k-v1``, whose service path is ``services/audio/asr/transcription``); the
#: same reading of ``services/aigc/image2video/video-synthesis`` gives these groups.
UNIQUE_KEY = f"apikey:v1:aigc:image2video:video-synthesis:{SUBMIT_MODEL}"
_LIST_WINDOW = 24 * 3600  # wall-clock seconds; a query parameter, so never scaled
_TIME_FORMAT = "%Y%m%d%H%M%S"


def _list_zone(config: SimulatorConfig) -> dt.tzinfo:
    return BEIJING if config.list_zone == "UTC+8" else dt.UTC


def _list_time(query: Mapping[str, str], name: str, zone: dt.tzinfo) -> float | None:
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        moment = dt.datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=zone)
    except ValueError:
        raise invalid(f"{name} must be formatted as YYYYMMDDhhmmss, got {text!r}.") from None
    return float(calendar.timegm(moment.utctimetuple()))


def list_tasks(
    query: Mapping[str, str], *, board: TaskBoard, clock: Clock, config: SimulatorConfig
) -> dict[str, Any]:
    """A page of tasks, as ``GET /tasks`` shows them.

    Newest first unless ``list_order`` says otherwise; the time filters are
    read in ``list_zone`` on the service's (skewed) clock; a page without
    rows is shaped as ``empty_page`` says.
    """
    page_no = positive_param(query, "page_no", 1)
    page_size = positive_param(query, "page_size", 10)
    now = clock.now()
    zone = _list_zone(config)
    start = _list_time(query, "start_time", zone)
    end = _list_time(query, "end_time", zone)
    if end is None:
        end = math.floor(clock.wall(now)) if start is None else start + _LIST_WINDOW
    if start is None:
        start = end - _LIST_WINDOW
    if start > end:
        raise invalid("start_time must not be later than end_time.")
    if end - start > _LIST_WINDOW:
        raise invalid("The time range between start_time and end_time cannot exceed 24 hours.")
    low, high = int(start * 1000), int(end * 1000) + 999
    wanted = {
        "task_id": query.get("task_id") or None,
        "model": query.get("model_name") or None,
        "status": query.get("status") or None,
    }
    rows: list[dict[str, Any]] = []
    for task in board.newest_first(now):
        created = clock.epoch_ms(task.submitted_at)
        if not low <= created <= high:
            continue
        if any(
            value is not None and getattr(task, field) != value for field, value in wanted.items()
        ):
            continue
        row: dict[str, Any] = {
            "task_id": task.task_id,
            "status": task.status,
            "model_name": task.model,
            "region": "cn-beijing",
            "request_id": task.request_id,
            "api_key_id": task.api_key_id,
            "caller_parent_id": ACCOUNT_UID,
            "caller_uid": ACCOUNT_UID,
            "user_api_unique_key": UNIQUE_KEY,
            "gmt_create": created,
        }
        if task.scheduled_at is not None:
            row["start_time"] = clock.epoch_ms(task.scheduled_at)
        if task.ended_at is not None:
            row["end_time"] = clock.epoch_ms(task.ended_at)
        rows.append(row)
    if config.list_order == "oldest_first":
        rows.reverse()
    first = (page_no - 1) * page_size
    page = rows[first : first + page_size]
    answer: dict[str, Any] = {"total": len(rows)}
    if page or config.empty_page == "data":
        answer["total_page"] = math.ceil(len(rows) / page_size)
    answer.update(page_no=page_no, page_size=page_size, request_id=new_request_id())
    if page or config.empty_page == "data":
        answer["data"] = page
    return answer

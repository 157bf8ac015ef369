"""The task-finished event as the simulated EventBridge writes it, and where its certificate is.

The document copies the provider's sample (docs/wire.md, "Task-finished
notifications"): a CloudEvents 1.0 JSON object, source ``acs.dashscope``, type
``dashscope:System:AsyncTaskFinish``, a fresh id, and ``data`` with the task's
id, state, start and end (``yyyy-MM-dd HH:mm:ss``, Beijing time, no zone
given), its submit's ``request_id``, ``region`` ``cn-beijing`` and
``contain_result`` false. Its ``time`` and ``aliyunpublishtime`` come in the
forms the provider's pages show, each drawn at random so that a receiver meets
them all: ``...Z``, ``+08:00``, ``... PRC``, and the sample's malformed
``2023-1-25T01:45:16.969Z`` (an event of 25 October: the month cut to its
first digit). The simulator writes its own constants rather than share the
client's, so a mistake on either side shows.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid

import attrs

from ._clock import BEIJING, Clock
from ._tasks import SimulatedTask

__all__ = ["CERTIFICATE_PATH", "EVENT_SOURCE", "EVENT_TYPE", "TIME_FORMS", "Event", "event_for"]

#: Where the simulator serves its signing certificate (the ``x-eventbridge-signature-url``).
CERTIFICATE_PATH = "/eventbridge/cert.pem"
EVENT_SOURCE = "acs.dashscope"
EVENT_TYPE = "dashscope:System:AsyncTaskFinish"
#: The simulated account, as the event names it (the provider's sample hides its own).
ACCOUNT_ID = "1000000000000001"
#: What the sample's ``user_api_unique_key`` would read for this model (a guess: the
#: sample is a speech model's, ``apikey:v1:audio:asr:transcription:paraformer-8k-v1``).
API_UNIQUE_KEY = "apikey:v1:aigc:image2video:video-synthesis:emoji-v1"
REGION = "cn-beijing"
#: How long after the event's ``time`` EventBridge stamps it published (the sample's 24 ms).
PUBLISH_DELAY = 0.024
#: The forms of a time stamp the provider's pages show.
TIME_FORMS = ("utc", "offset", "prc", "short_month")


@attrs.frozen
class Event:
    """One published event: what a delivery sends (``body``) and what the records say of it."""

    event_id: str
    task_id: str
    task_status: str
    ended_at: float
    body: bytes


def stamp(wall: float, form: str) -> str:
    """The POSIX time ``wall`` written in one of :data:`TIME_FORMS`."""
    utc = dt.datetime.fromtimestamp(wall, dt.UTC)
    local = utc.astimezone(BEIJING)
    ms = f"{utc.microsecond // 1000:03d}"
    if form == "utc":
        return f"{utc:%Y-%m-%dT%H:%M:%S}.{ms}Z"
    if form == "offset":
        return f"{local:%Y-%m-%dT%H:%M:%S}.{ms}+08:00"
    if form == "prc":
        return f"{local:%Y-%m-%d %H:%M:%S} PRC"
    if form == "short_month":
        return f"{utc.year}-{str(utc.month)[0]}-{utc:%dT%H:%M:%S}.{ms}Z"
    raise ValueError(f"unknown time form {form!r}; expected one of {TIME_FORMS}")


def _beijing_seconds(clock: Clock, at: float) -> str:
    """``at`` as ``yyyy-MM-dd HH:mm:ss`` in Beijing time, no zone: as ``data`` shows times."""
    return f"{dt.datetime.fromtimestamp(int(clock.wall(at)), BEIJING):%Y-%m-%d %H:%M:%S}"


def event_for(task: SimulatedTask, clock: Clock, rng: random.Random) -> Event:
    """The event ``task``'s end publishes (``task`` has ended); ``rng`` picks the time forms."""
    assert task.ended_at is not None, "only an ended task publishes an event"
    started = task.scheduled_at if task.scheduled_at is not None else task.submitted_at
    wall = clock.wall(task.ended_at)
    event_id = str(uuid.uuid4())
    document = {
        "datacontenttype": "application/json;charset=utf-8",
        "aliyunaccountid": ACCOUNT_ID,
        "aliyunpublishtime": stamp(wall + PUBLISH_DELAY, rng.choice(TIME_FORMS)),
        "data": {
            "start_time": _beijing_seconds(clock, started),
            "user_api_unique_key": API_UNIQUE_KEY,
            "task_status": task.status,
            "contain_result": False,
            "end_time": _beijing_seconds(clock, task.ended_at),
            "task_id": task.task_id,
            "region": REGION,
            "request_id": task.request_id,
            "api_key_id": task.api_key_id,
        },
        "aliyunoriginalaccountid": ACCOUNT_ID,
        "specversion": "1.0",
        "aliyuneventbusname": "default",
        "id": event_id,
        "source": EVENT_SOURCE,
        "time": stamp(wall, rng.choice(TIME_FORMS)),
        "aliyunregionid": REGION,
        "type": EVENT_TYPE,
    }
    return Event(
        event_id=event_id,
        task_id=task.task_id,
        task_status=task.status,
        ended_at=task.ended_at,
        body=json.dumps(document).encode(),
    )

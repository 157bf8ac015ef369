"""The simulator plays the Emoji service as the provider's pages describe it (docs/wire.md).

Every test talks to a real simulator over loopback HTTP with a plain
``aiohttp.ClientSession``: no client code of ours, no mocks. Small time scales
keep provider hours down to milliseconds.
"""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import io
import pathlib
import re
import struct
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import attrs
import pytest

import emoji_async.testing
from emoji_async._templates import TEMPLATES, template_info
from emoji_async.testing import (
    Fault,
    ServiceLimits,
    SimulatorConfig,
    fixed_duration,
    uniform_durations,
)

from .simhttp import DETECT, KEY, SUBMIT, UNTHROTTLED, Answer, RawApi, simulators

IMAGE = "https://example.com/portrait.png"
BEIJING = dt.timezone(dt.timedelta(hours=8))
WIRE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
INVALID_FILE_CODES = (
    "InvalidFile.NoHuman",
    "InvalidFile.MultiHuman",
    "InvalidFile.FacePose",
    "InvalidFile.FullFace",
    "InvalidFile.BodyProportion",
    "InvalidFile.Resolution",
    "InvalidFile.Value",
    "InvalidFile.Format",
)
FAST = SimulatorConfig(time_scale=0.001, limits=UNTHROTTLED)
#: The provider's message for a body that is not the documented shape.
BODY_INVALID = "Required body invalid, please check the request body format."


class Api(RawApi):
    """The simulator's endpoints, spoken in plain HTTP."""

    async def detect(self, image_url: str = IMAGE, **headers: str) -> Answer:
        body = {"model": "emoji-detect-v1", "input": {"image_url": image_url}}
        return await self.call(
            "POST", DETECT, json={**body, "parameters": {"ratio": "1:1"}}, headers=headers
        )

    def body(self, image_url: str = IMAGE, driven_id: str = "mengwa_kaixin") -> dict[str, Any]:
        face, ext = self.sim.boxes_for(image_url)
        inputs = {
            "image_url": image_url,
            "driven_id": driven_id,
            "face_bbox": face,
            "ext_bbox": ext,
        }
        return {"model": "emoji-v1", "input": inputs}

    async def submit(
        self,
        image_url: str = IMAGE,
        driven_id: str = "mengwa_kaixin",
        *,
        body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        sent = {"X-DashScope-Async": "enable", **(headers or {})}
        payload = body if body is not None else self.body(image_url, driven_id)
        return await self.call("POST", SUBMIT, json=payload, headers=sent)

    async def submitted(self, image_url: str = IMAGE, driven_id: str = "mengwa_kaixin") -> str:
        answer = await self.submit(image_url, driven_id)
        assert answer.status == 200, answer.body
        task_id: str = answer.body["output"]["task_id"]
        return task_id

    async def query(self, task_id: str) -> dict[str, Any]:
        answer = await self.call("GET", f"/tasks/{task_id}")
        assert answer.status == 200, answer.body
        output: dict[str, Any] = answer.body["output"]
        return output

    async def until(self, task_id: str, *statuses: str) -> Answer:
        """Poll the task until its status is one of ``statuses``."""
        async with asyncio.timeout(10):
            while True:
                answer = await self.call("GET", f"/tasks/{task_id}")
                if answer.body["output"]["task_status"] in statuses:
                    return answer
                await asyncio.sleep(0.005)


Start = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Starts simulators on loopback; all are stopped, and the session closed, at teardown."""
    async with simulators(Api, FAST) as factory:
        yield factory


def wall_of(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=BEIJING).timestamp()


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


# -- the package -------------------------------------------------------------------------


def test_public_names_are_sorted_and_include_the_documented_api() -> None:
    names = emoji_async.testing.__all__
    assert names == sorted(names)
    documented = {
        "Simulator",
        "SimulatorConfig",
        "ServiceLimits",
        "Fault",
        "RequestRecord",
        "SimulatorStats",
        "SimulatorServer",
        "serve",
        "uniform_durations",
        "fixed_duration",
        "run_forever",
    }
    assert documented <= set(names)
    assert all(hasattr(emoji_async.testing, name) for name in names)


def test_simulator_imports_nothing_of_the_client_but_the_template_table() -> None:
    package = pathlib.Path(emoji_async.testing.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("emoji_async"):
                    assert name == "emoji_async._templates", f"{source.name} imports {name}"


def test_config_normalises_the_prefix_and_refuses_a_non_positive_time_scale() -> None:
    assert SimulatorConfig(api_prefix="qwen/api/v1/").api_prefix == "/qwen/api/v1"
    assert SimulatorConfig().api_keys == frozenset({"sk-simulator"})
    with pytest.raises(ValueError, match="time_scale"):
        SimulatorConfig(time_scale=0)
    with pytest.raises(ValueError, match="unknown endpoint"):
        Fault("nope", "status")


# -- authentication and headers ----------------------------------------------------------


async def test_missing_api_key_is_401_no_api_key_provided(start: Start) -> None:
    api = await start()
    answer = await api.call("GET", "/tasks/abc", key=None)
    assert answer.status == 401
    assert answer.body["code"] == "InvalidApiKey"
    assert answer.body["message"] == "No API-key provided."
    assert is_uuid(answer.body["request_id"])


async def test_wrong_api_key_is_401_invalid_api_key_provided(start: Start) -> None:
    api = await start()
    answer = await api.call("POST", DETECT, json={}, key="sk-wrong")
    assert answer.status == 401
    assert answer.body == {
        "request_id": answer.body["request_id"],
        "code": "InvalidApiKey",
        "message": "Invalid API-key provided.",
    }


async def test_every_answer_carries_a_fresh_request_id(start: Start) -> None:
    api = await start()
    ids = {(await api.call("GET", "/tasks/x", key=None)).body["request_id"] for _ in range(3)}
    ids |= {(await api.call("GET", "/tasks/x")).body["request_id"] for _ in range(3)}
    assert len(ids) == 6
    assert all(is_uuid(i) for i in ids)


async def test_submit_without_async_header_is_403_access_denied(start: Start) -> None:
    api = await start()
    answer = await api.call("POST", SUBMIT, json=api.body())
    assert answer.status == 403
    assert answer.body["code"] == "AccessDenied"
    assert answer.body["message"] == "current user api does not support synchronous calls"
    assert api.sim.tasks_created == 0


# -- validation --------------------------------------------------------------------------


DETECT_CASES: list[tuple[Any, dict[str, str], int, str, str]] = [
    (b"{not json", {}, 400, "InvalidParameter", BODY_INVALID),
    ([1], {}, 400, "InvalidParameter", BODY_INVALID),
    (
        {"input": {"image_url": IMAGE}, "parameters": {"ratio": "1:1"}},
        {},
        400,
        "InvalidParameter",
        "Field required: model",
    ),
    (
        {"model": "emoji-v1", "input": {"image_url": IMAGE}, "parameters": {"ratio": "1:1"}},
        {},
        400,
        "InvalidParameter",
        "Model not exist.",
    ),
    (
        {"model": "emoji-detect-v1", "parameters": {"ratio": "1:1"}},
        {},
        400,
        "InvalidParameter",
        "Field required: input",
    ),
    (
        {"model": "emoji-detect-v1", "input": {}, "parameters": {"ratio": "1:1"}},
        {},
        400,
        "InvalidParameter",
        "Field required: image_url",
    ),
    (
        {"model": "emoji-detect-v1", "input": {"image_url": IMAGE}},
        {},
        400,
        "InvalidParameter",
        "Field required: parameters",
    ),
    (
        {"model": "emoji-detect-v1", "input": {"image_url": IMAGE}, "parameters": {}},
        {},
        400,
        "InvalidParameter",
        "Field required: ratio",
    ),
    (
        {"model": "emoji-detect-v1", "input": "x", "parameters": {"ratio": "1:1"}},
        {},
        400,
        "InvalidParameter",
        BODY_INVALID,
    ),
    (
        {"model": "emoji-detect-v1", "input": {"image_url": IMAGE}, "parameters": {"ratio": "3:4"}},
        {},
        400,
        "InvalidParameter",
        'The parameter ratio must be "1:1".',
    ),
    (
        {
            "model": "emoji-detect-v1",
            "input": {"image_url": "ftp://example.com/p.png"},
            "parameters": {"ratio": "1:1"},
        },
        {},
        400,
        "InvalidURL",
        "The provided URL does not appear to be valid. Ensure it is correctly formatted.",
    ),
    (
        {"model": "emoji-detect-v1", "input": {"image_url": IMAGE}, "parameters": {"ratio": "1:1"}},
        {"X-DashScope-Async": "enable"},
        403,
        "AccessDenied",
        "current user api does not support asynchronous calls",
    ),
]


@pytest.mark.parametrize(("body", "headers", "status", "code", "message"), DETECT_CASES)
async def test_detect_refuses_a_bad_request_with_the_provider_message_and_no_bill(
    start: Start, body: Any, headers: dict[str, str], status: int, code: str, message: str
) -> None:
    api = await start()
    if isinstance(body, bytes):
        answer = await api.call("POST", DETECT, data=body, headers=headers)
    else:
        answer = await api.call("POST", DETECT, json=body, headers=headers)
    assert (answer.status, answer.body["code"], answer.body["message"]) == (status, code, message)
    assert set(answer.body) == {"request_id", "code", "message"}
    assert api.sim.stats.detections_billed == 0


def _submit_case(**changes: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "image_url": IMAGE,
        "driven_id": "mengwa_kaixin",
        "face_bbox": None,
        "ext_bbox": None,
    }
    inputs.update(changes)
    return {k: v for k, v in inputs.items() if v != "DROP"}


SUBMIT_CASES: list[tuple[dict[str, Any] | str, int, str, str]] = [
    ("wrong-model", 400, "InvalidParameter", "Model not exist."),
    ("no-input", 400, "InvalidParameter", "Field required: input"),
    (_submit_case(image_url="DROP"), 400, "InvalidParameter", "Field required: image_url"),
    (_submit_case(driven_id="DROP"), 400, "InvalidParameter", "Field required: driven_id"),
    (_submit_case(face_bbox="DROP"), 400, "InvalidParameter", "Field required: face_bbox"),
    (_submit_case(ext_bbox="DROP"), 400, "InvalidParameter", "Field required: ext_bbox"),
    (_submit_case(face_bbox=[1, 2, 3]), 400, "InvalidParameter", BODY_INVALID),
    (_submit_case(driven_id=7), 400, "InvalidParameter", BODY_INVALID),
    (
        _submit_case(driven_id="mengwa_unknown"),
        400,
        "InvalidParameter",
        "Driven not exist: driven_id.",
    ),
    (
        _submit_case(image_url="file:///tmp/p.png"),
        400,
        "InvalidURL",
        "The provided URL does not appear to be valid. Ensure it is correctly formatted.",
    ),
    (_submit_case(ext_bbox="WRONG"), 400, "InvalidParameter", "Invalid ext_bbox."),
    (_submit_case(face_bbox="WRONG"), 400, "InvalidParameter", "Invalid face_bbox."),
    (
        _submit_case(image_url=IMAGE + "?sim_moderation=1"),
        400,
        "DataInspectionFailed",
        "Input data may contain inappropriate content.",
    ),
    (
        _submit_case(image_url=IMAGE + "?sim_reject=InvalidFile.FacePose"),
        400,
        "InvalidFile.FacePose",
        "The pose of the detected face is invalid, please upload a frontal face without excessive "
        "head tilt.",
    ),
]


@pytest.mark.parametrize(("case", "status", "code", "message"), SUBMIT_CASES)
async def test_submit_refuses_a_bad_request_with_the_provider_message_and_creates_no_task(
    start: Start, case: dict[str, Any] | str, status: int, code: str, message: str
) -> None:
    api = await start()
    good = api.body()
    if case == "wrong-model":
        body: dict[str, Any] = {**good, "model": "emoji-detect-v1"}
    elif case == "no-input":
        body = {"model": "emoji-v1"}
    else:
        assert isinstance(case, dict)
        inputs = dict(case)
        face, ext = api.sim.boxes_for(inputs.get("image_url", IMAGE))
        for name, box in (("face_bbox", face), ("ext_bbox", ext)):
            if name in inputs and inputs[name] is None:
                inputs[name] = box
            elif inputs.get(name) == "WRONG":
                inputs[name] = [box[0] + 1, *box[1:]]
        body = {"model": "emoji-v1", "input": inputs}
    answer = await api.submit(body=body)
    assert (answer.status, answer.body["code"], answer.body["message"]) == (status, code, message)
    assert api.sim.tasks_created == 0


# -- detection ---------------------------------------------------------------------------


async def test_detection_passes_with_deterministic_plausible_boxes_and_is_billed(
    start: Start,
) -> None:
    api = await start()
    answer = await api.detect()
    assert answer.status == 200
    assert set(answer.body) == {"output", "usage", "request_id"}
    assert answer.body["usage"] == {"image_count": 1}
    face, ext = answer.body["output"]["bbox_face"], answer.body["output"]["ext_bbox_face"]
    assert (face, ext) == api.sim.boxes_for(IMAGE)
    assert ext[0] <= face[0] < face[2] <= ext[2]
    assert ext[1] <= face[1] < face[3] <= ext[3]
    assert abs((ext[2] - ext[0]) - (ext[3] - ext[1])) <= 2  # roughly square
    assert min(ext) >= 0
    again = await api.detect()
    assert again.body["output"] == answer.body["output"]
    other = await api.detect("https://example.com/someone-else.jpg")
    assert other.body["output"] != answer.body["output"]
    assert api.sim.stats.detections_billed == 3


@pytest.mark.parametrize("code", INVALID_FILE_CODES)
async def test_detection_rejection_is_http_200_with_output_code_and_still_billed(
    start: Start, code: str
) -> None:
    api = await start()
    answer = await api.detect(f"{IMAGE}?sim_reject={code}")
    assert answer.status == 200
    assert answer.body["output"]["code"] == code
    assert len(answer.body["output"]["message"]) > 20
    assert answer.body["usage"] == {"image_count": 1}
    assert api.sim.stats.detections_billed == 1
    submit = await api.submit(f"{IMAGE}?sim_reject={code}")
    assert (submit.status, submit.body["code"]) == (400, code)
    assert submit.body["message"] == answer.body["output"]["message"]


async def test_every_invalid_file_code_has_its_own_message(start: Start) -> None:
    api = await start()
    messages = {
        (await api.detect(f"{IMAGE}?sim_reject={code}")).body["output"]["message"]
        for code in INVALID_FILE_CODES
    }
    assert len(messages) == len(INVALID_FILE_CODES)


# -- the task lifecycle ------------------------------------------------------------------


async def test_tasks_run_one_at_a_time_in_fifo_order_each_starting_when_the_last_ends(
    start: Start,
) -> None:
    api = await start(attrs.evolve(FAST, durations=fixed_duration(150.0)))
    first = await api.submitted(IMAGE, "mengwa_kaixin")
    second = await api.submitted(IMAGE, "dagong_weixiao")
    third = await api.submitted(IMAGE, "mengwa_kun_1")

    running, pending = await api.query(first), await api.query(second)
    assert running["task_status"] == "RUNNING"
    assert set(running) == {"task_id", "task_status", "submit_time", "scheduled_time"}
    assert pending == {
        "task_id": second,
        "task_status": "PENDING",
        "submit_time": pending["submit_time"],
    }
    assert (await api.query(third))["task_status"] == "PENDING"

    await api.until(second, "RUNNING")
    assert (await api.query(first))["task_status"] == "SUCCEEDED"
    assert (await api.query(third))["task_status"] == "PENDING"
    await api.until(third, "SUCCEEDED")

    records = [api.sim.task(t) for t in (first, second, third)]
    assert all(r is not None and r.status == "SUCCEEDED" for r in records)
    a, b, c = (r for r in records if r is not None)
    assert a.scheduled_at == a.submitted_at
    assert b.scheduled_at == a.ended_at  # exactly, not approximately
    assert c.scheduled_at == b.ended_at
    assert a.ended_at is not None
    assert a.scheduled_at is not None
    assert a.ended_at - a.scheduled_at == pytest.approx(0.150)
    wire = [await api.query(t) for t in (first, second, third)]
    assert wire[1]["scheduled_time"] == wire[0]["end_time"]
    assert wire[2]["scheduled_time"] == wire[1]["end_time"]
    assert wire[0]["scheduled_time"] == wire[0]["submit_time"]


async def test_a_succeeded_task_shows_times_in_beijing_video_url_and_template_usage(
    start: Start,
) -> None:
    api = await start(attrs.evolve(FAST, durations=fixed_duration(30.0)))
    before = time.time()
    task_id = await api.submitted(IMAGE, "mengwa_kun_1")
    answer = await api.until(task_id, "SUCCEEDED")
    output = answer.body["output"]
    assert set(answer.body) == {"request_id", "output", "usage"}
    assert answer.body["usage"] == {"video_duration": 5, "video_ratio": "standard"}
    assert set(output) == {
        "task_id",
        "task_status",
        "submit_time",
        "scheduled_time",
        "end_time",
        "video_url",
    }
    for name in ("submit_time", "scheduled_time", "end_time"):
        assert WIRE_TIME.match(output[name])
    submitted, ended = wall_of(output["submit_time"]), wall_of(output["end_time"])
    assert before - 1 <= submitted <= time.time() + 1  # Beijing time, no zone on the wire
    assert ended - submitted == pytest.approx(0.030, abs=0.002)
    assert output["video_url"].startswith(f"{api.server.origin}/results/{task_id}.mp4?")
    assert "Expires=" in output["video_url"]
    assert "Signature=" in output["video_url"]
    stats = api.sim.stats
    assert stats.video_seconds_billed == 5
    await api.query(task_id)
    assert api.sim.stats.video_seconds_billed == 5  # billed once, not per query


async def test_sim_fail_ends_the_task_failed_with_that_code_and_a_message(start: Start) -> None:
    api = await start()
    task_id = await api.submitted(f"{IMAGE}?sim_fail=InternalError.Algo&sim_duration=20")
    answer = await api.until(task_id, "FAILED", "SUCCEEDED")
    output = answer.body["output"]
    assert output["task_status"] == "FAILED"
    assert output["code"] == "InternalError.Algo"
    assert output["message"]
    assert "usage" not in answer.body
    assert "video_url" not in output
    assert {"submit_time", "scheduled_time", "end_time"} <= set(output)
    assert api.sim.stats.video_seconds_billed == 0


async def test_a_task_longer_than_3_hours_fails_with_timeout_at_the_3_hour_mark(
    start: Start,
) -> None:
    scale = 2e-5
    api = await start(SimulatorConfig(time_scale=scale, limits=UNTHROTTLED))
    task_id = await api.submitted(f"{IMAGE}?sim_duration=20000")
    output = (await api.until(task_id, "FAILED", "SUCCEEDED")).body["output"]
    assert (output["task_status"], output["code"]) == ("FAILED", "InternalError.Timeout")
    record = api.sim.task(task_id)
    assert record is not None
    assert record.ended_at is not None
    assert record.scheduled_at is not None
    assert record.ended_at - record.scheduled_at == pytest.approx(3 * 3600 * scale)
    assert record.duration == 20000


async def test_sim_duration_fixes_the_run_time_and_durations_are_drawn_from_the_sampler(
    start: Start,
) -> None:
    api = await start(attrs.evolve(FAST, limits=None, durations=uniform_durations(60, 300)))
    fixed = await api.submitted(f"{IMAGE}?sim_duration=42.5")
    drawn = [await api.submitted(f"{IMAGE}?n={n}") for n in range(5)]
    fixed_record = api.sim.task(fixed)
    assert fixed_record is not None
    assert fixed_record.duration == 42.5
    durations = [r.duration for r in map(api.sim.task, drawn) if r is not None]
    assert len(durations) == 5
    assert all(60 <= d <= 300 for d in durations)
    replay = await start(attrs.evolve(FAST, limits=None, durations=uniform_durations(60, 300)))
    await replay.submitted(f"{IMAGE}?sim_duration=42.5")
    again = [await replay.submitted(f"{IMAGE}?n={n}") for n in range(5)]
    assert [r.duration for r in map(replay.sim.task, again) if r is not None] == durations


async def test_without_limits_every_task_runs_at_once_and_nothing_is_throttled(
    start: Start,
) -> None:
    api = await start(SimulatorConfig(time_scale=0.01, limits=None))
    ids = [await api.submitted(f"{IMAGE}?n={n}") for n in range(4)]
    assert [(await api.query(t))["task_status"] for t in ids] == ["RUNNING"] * 4
    assert [(await api.detect()).status for _ in range(5)] == [200] * 5
    assert api.sim.stats.throttled == 0


# -- cancel ------------------------------------------------------------------------------


async def test_cancel_of_a_pending_task_succeeds_and_it_leaves_the_queue(start: Start) -> None:
    api = await start(attrs.evolve(FAST, durations=fixed_duration(100.0)))
    first = await api.submitted()
    second = await api.submitted()
    third = await api.submitted()
    answer = await api.call("POST", f"/tasks/{second}/cancel")
    assert answer.status == 200
    assert set(answer.body) == {"request_id"}
    canceled = await api.query(second)
    assert canceled["task_status"] == "CANCELED"
    assert set(canceled) == {"task_id", "task_status", "submit_time", "end_time"}
    await api.until(third, "RUNNING", "SUCCEEDED")
    a, b, c = api.sim.task(first), api.sim.task(second), api.sim.task(third)
    assert a is not None
    assert b is not None
    assert c is not None
    assert c.scheduled_at == a.ended_at
    assert b.status == "CANCELED"
    assert b.scheduled_at is None


async def test_cancel_of_a_running_or_finished_task_is_400_unsupported_operation(
    start: Start,
) -> None:
    api = await start(attrs.evolve(FAST, durations=fixed_duration(20.0)))
    running = await api.submitted(f"{IMAGE}?sim_duration=100000")
    answer = await api.call("POST", f"/tasks/{running}/cancel")
    assert answer.status == 400
    assert answer.body["code"] == "UnsupportedOperation"
    assert answer.body["message"] == (
        "Failed to cancel the task, please confirm if the task is in PENDING status."
    )
    assert (await api.query(running))["task_status"] == "RUNNING"
    unknown = await api.call("POST", f"/tasks/{uuid.uuid4()}/cancel")
    assert (unknown.status, unknown.body["code"]) == (400, "UnsupportedOperation")


# -- unknown and expired -----------------------------------------------------------------


async def test_an_unknown_task_id_answers_200_unknown(start: Start) -> None:
    api = await start()
    task_id = str(uuid.uuid4())
    answer = await api.call("GET", f"/tasks/{task_id}")
    assert answer.status == 200
    assert answer.body["output"] == {"task_id": task_id, "task_status": "UNKNOWN"}
    assert api.sim.task(task_id) is None


async def test_a_task_query_with_a_trailing_slash_answers_like_one_without(start: Start) -> None:
    api = await start()
    task_id = await api.submitted()
    plain = await api.call("GET", f"/tasks/{task_id}")
    slashed = await api.call("GET", f"/tasks/{task_id}/")
    assert slashed.status == plain.status == 200
    assert slashed.body["output"]["task_id"] == task_id
    assert slashed.body["output"]["task_status"] == plain.body["output"]["task_status"]
    assert [r.endpoint for r in api.sim.requests[-2:]] == ["query", "query"]


async def test_a_task_older_than_24_hours_scaled_answers_unknown_and_leaves_the_list(
    start: Start,
) -> None:
    scale = 5e-6  # 24 h -> 0.432 s
    api = await start(SimulatorConfig(time_scale=scale, limits=UNTHROTTLED))
    task_id = await api.submitted()
    answer = await api.until(task_id, "SUCCEEDED")
    listed = await api.call("GET", "/tasks")
    assert [row["task_id"] for row in listed.body["data"]] == [task_id]
    video = await api.call("GET", answer.body["output"]["video_url"], key=None)
    assert video.status == 200
    await asyncio.sleep(24 * 3600 * scale + 0.05)
    assert (await api.query(task_id))["task_status"] == "UNKNOWN"
    assert api.sim.task(task_id) is None
    assert (await api.call("GET", "/tasks")).body["total"] == 0
    expired = await api.call("GET", answer.body["output"]["video_url"], key=None)
    assert expired.status == 403
    assert b"Request has expired." in expired.body


# -- the task list -----------------------------------------------------------------------


async def test_list_has_the_documented_shape_newest_first_in_epoch_ms(start: Start) -> None:
    api = await start(attrs.evolve(FAST, durations=fixed_duration(10.0)))
    before = int(time.time() * 1000)
    first = await api.submitted()
    second = await api.submitted()
    await api.until(second, "SUCCEEDED")
    answer = await api.call("GET", "/tasks")
    assert answer.status == 200
    body = answer.body
    assert set(body) == {"total", "total_page", "page_no", "page_size", "request_id", "data"}
    assert (body["total"], body["total_page"], body["page_no"], body["page_size"]) == (2, 1, 1, 10)
    assert [row["task_id"] for row in body["data"]] == [second, first]
    row = body["data"][1]
    assert set(row) == {
        "task_id",
        "status",
        "model_name",
        "region",
        "request_id",
        "api_key_id",
        "caller_parent_id",
        "caller_uid",
        "user_api_unique_key",
        "gmt_create",
        "start_time",
        "end_time",
    }
    assert (row["status"], row["model_name"], row["region"]) == (
        "SUCCEEDED",
        "emoji-v1",
        "cn-beijing",
    )
    assert before - 1000 <= row["gmt_create"] <= row["start_time"] <= row["end_time"]
    assert row["end_time"] <= int(time.time() * 1000) + 1000
    record = api.sim.task(first)
    assert record is not None
    assert row["request_id"] == record.request_id


async def test_list_filters_by_task_id_status_model_and_time_window(start: Start) -> None:
    api = await start(attrs.evolve(FAST, durations=fixed_duration(100000.0)))
    running = await api.submitted()
    pending = await api.submitted()

    async def ids(**params: str) -> list[str]:
        answer = await api.call("GET", "/tasks", params=params)
        assert answer.status == 200, answer.body
        return [row["task_id"] for row in answer.body["data"]]

    assert await ids(task_id=running) == [running]
    assert await ids(status="PENDING") == [pending]
    assert await ids(status="RUNNING") == [running]
    assert await ids(model_name="emoji-v1") == [pending, running]
    assert await ids(model_name="emoji-detect-v1") == []
    now = dt.datetime.now(BEIJING)
    fmt = "%Y%m%d%H%M%S"
    hour_ago, soon = now - dt.timedelta(hours=1), now + dt.timedelta(minutes=1)
    assert await ids(start_time=f"{hour_ago:{fmt}}", end_time=f"{soon:{fmt}}") == [pending, running]
    two_hours_ago = now - dt.timedelta(hours=2)
    assert await ids(start_time=f"{two_hours_ago:{fmt}}", end_time=f"{hour_ago:{fmt}}") == []
    too_wide = await api.call(
        "GET",
        "/tasks",
        params={"start_time": f"{now - dt.timedelta(hours=25):{fmt}}", "end_time": f"{now:{fmt}}"},
    )
    assert (too_wide.status, too_wide.body["code"]) == (400, "InvalidParameter")
    assert "24 hours" in too_wide.body["message"]
    garbled = await api.call("GET", "/tasks", params={"start_time": "yesterday"})
    assert (garbled.status, garbled.body["code"]) == (400, "InvalidParameter")


async def test_list_pages_through_tasks(start: Start) -> None:
    api = await start(attrs.evolve(FAST, limits=None))
    ids = [await api.submitted(f"{IMAGE}?n={n}") for n in range(5)]
    page = await api.call("GET", "/tasks", params={"page_no": "2", "page_size": "2"})
    assert (page.body["total"], page.body["total_page"]) == (5, 3)
    assert (page.body["page_no"], page.body["page_size"]) == (2, 2)
    assert [row["task_id"] for row in page.body["data"]] == [ids[2], ids[1]]
    last = await api.call("GET", "/tasks", params={"page_no": "3", "page_size": "2"})
    assert [row["task_id"] for row in last.body["data"]] == [ids[0]]
    bad = await api.call("GET", "/tasks", params={"page_size": "0"})
    assert (bad.status, bad.body["code"]) == (400, "InvalidParameter")


# -- rate limits -------------------------------------------------------------------------


async def test_a_second_detect_within_a_second_is_429_throttling_rate_quota(start: Start) -> None:
    api = await start(SimulatorConfig())
    assert (await api.detect()).status == 200
    answer = await api.detect()
    assert answer.status == 429
    assert answer.body["code"] == "Throttling.RateQuota"
    assert answer.body["message"] == "Requests rate limit exceeded, please try again later."
    assert "Retry-After" not in answer.headers
    stats = api.sim.stats
    assert stats.throttled == 1
    assert stats.throttled_by_endpoint == {"detect": 1}
    assert stats.detections_billed == 1  # the 429 is not billed


async def test_a_throttled_submit_creates_no_task(start: Start) -> None:
    api = await start(SimulatorConfig())
    assert (await api.submit()).status == 200
    assert (await api.submit()).status == 429
    assert api.sim.tasks_created == 1
    assert (await api.call("GET", "/tasks")).body["total"] == 1


async def test_rate_limit_admits_n_per_window_per_endpoint(start: Start) -> None:
    api = await start(SimulatorConfig(limits=ServiceLimits(query_per_second=3)))
    statuses = [(await api.call("GET", "/tasks/x")).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert (await api.call("GET", "/tasks")).status == 200  # another endpoint, another window


async def test_rejected_requests_do_not_count_toward_the_window(start: Start) -> None:
    api = await start(SimulatorConfig(time_scale=0.2))  # detect: 1 per 0.2 s
    assert (await api.detect()).status == 200
    first_at = api.sim.requests[-1].at
    await asyncio.sleep(max(0.0, first_at + 0.12 - time.monotonic()))
    assert (await api.detect()).status == 429
    await asyncio.sleep(max(0.0, first_at + 0.21 - time.monotonic()))
    # Had the 429 at ~0.12 s counted, the window would stay full until ~0.32 s.
    assert (await api.detect()).status == 200


async def test_auth_comes_before_the_rate_limit_and_validation_after_it(start: Start) -> None:
    api = await start(SimulatorConfig())
    bad_key = await api.call("POST", DETECT, json={}, key="sk-wrong")
    assert bad_key.status == 401
    invalid = await api.call("POST", DETECT, json={"model": "emoji-detect-v1"})
    assert invalid.status == 400  # admitted, then refused by validation: it counts
    assert (await api.detect()).status == 429


async def test_retry_after_header_on_429_when_configured(start: Start) -> None:
    api = await start(SimulatorConfig(retry_after=True))
    await api.detect()
    answer = await api.detect()
    assert answer.status == 429
    assert answer.headers["Retry-After"] == "1"


# -- uploads -----------------------------------------------------------------------------


def bmp_image(width: int = 400, height: int = 400, shade: int = 90) -> bytes:
    """A valid, flat 24-bit BMP, written by hand: uploads are checked like images now."""
    row = bytes([shade, 128, 255 - shade]) * width
    row += b"\0" * (-len(row) % 4)
    pixels = row * height
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


async def upload(api: Api, model: str, content: bytes, name: str = "face.png") -> str:
    policy = await api.call("GET", "/uploads", params={"action": "getPolicy", "model": model})
    assert policy.status == 200, policy.body
    data = policy.body["data"]
    form = aiohttp.FormData()
    key = f"{data['upload_dir']}/{name}"
    for field, value in (
        ("OSSAccessKeyId", data["oss_access_key_id"]),
        ("Signature", data["signature"]),
        ("policy", data["policy"]),
        ("key", key),
        ("x-oss-object-acl", data["x_oss_object_acl"]),
        ("x-oss-forbid-overwrite", data["x_oss_forbid_overwrite"]),
        ("success_action_status", "200"),
    ):
        form.add_field(field, value)
    form.add_field("file", content, filename=name, content_type="image/png")
    answer = await api.call("POST", data["upload_host"], data=form, key=None)
    assert answer.status == 200, answer.body
    return f"oss://{key}"


async def test_upload_policy_answers_the_documented_fields_pointing_at_the_simulator(
    start: Start,
) -> None:
    api = await start()
    answer = await api.call("GET", "/uploads", params={"action": "getPolicy", "model": "emoji-v1"})
    assert answer.status == 200
    assert set(answer.body) == {"request_id", "data"}
    data = answer.body["data"]
    assert set(data) == {
        "policy",
        "signature",
        "upload_dir",
        "upload_host",
        "expire_in_seconds",
        "max_file_size_mb",
        "capacity_limit_mb",
        "oss_access_key_id",
        "x_oss_object_acl",
        "x_oss_forbid_overwrite",
    }
    assert data["upload_host"] == f"{api.server.origin}/oss-upload"
    missing = await api.call("GET", "/uploads", params={"action": "getPolicy"})
    assert (missing.status, missing.body["code"]) == (400, "InvalidParameter")


async def test_an_uploaded_file_is_usable_as_oss_url_only_with_the_resolve_header(
    start: Start,
) -> None:
    api = await start()
    photo = bmp_image()
    detect_url = await upload(api, "emoji-detect-v1", photo, "face.bmp")
    without = await api.detect(detect_url)
    assert (without.status, without.body["code"]) == (400, "InvalidParameter")
    assert without.body["message"].startswith("The provided URL does not appear to be valid")
    resolved = await api.detect(detect_url, **{"X-DashScope-OssResourceResolve": "enable"})
    assert resolved.status == 200, resolved.body
    boxes = resolved.body["output"]["bbox_face"], resolved.body["output"]["ext_bbox_face"]

    submit_url = await upload(api, "emoji-v1", photo, "face.bmp")
    assert api.sim.boxes_for(submit_url) == boxes  # same photo, same boxes
    body = {
        "model": "emoji-v1",
        "input": {
            "image_url": submit_url,
            "driven_id": "mengwa_kaixin",
            "face_bbox": boxes[0],
            "ext_bbox": boxes[1],
        },
    }
    header = {"X-DashScope-OssResourceResolve": "enable"}
    accepted = await api.submit(body=body, headers=header)
    assert accepted.status == 200, accepted.body
    assert (await api.submit(body=body)).body["code"] == "InvalidParameter"


async def test_an_upload_is_bound_to_the_model_it_was_issued_for(start: Start) -> None:
    api = await start()
    detect_url = await upload(api, "emoji-detect-v1", b"photo")
    face, ext = api.sim.boxes_for(detect_url)
    body = {
        "model": "emoji-v1",
        "input": {
            "image_url": detect_url,
            "driven_id": "mengwa_kaixin",
            "face_bbox": face,
            "ext_bbox": ext,
        },
    }
    answer = await api.submit(body=body, headers={"X-DashScope-OssResourceResolve": "enable"})
    assert (answer.status, answer.body["code"]) == (400, "InvalidURL")
    assert "emoji-detect-v1" in answer.body["message"]
    assert api.sim.tasks_created == 0


async def test_an_upload_expires_after_48_hours_scaled(start: Start) -> None:
    scale = 5e-6  # 48 h -> 0.864 s
    api = await start(SimulatorConfig(time_scale=scale, limits=UNTHROTTLED))
    url = await upload(api, "emoji-detect-v1", bmp_image(), "face.bmp")
    resolve = {"X-DashScope-OssResourceResolve": "enable"}
    usable = await api.detect(url, **resolve)
    assert usable.status == 200
    assert "bbox_face" in usable.body["output"]
    await asyncio.sleep(48 * 3600 * scale + 0.05)
    answer = await api.detect(url, **resolve)
    assert (answer.status, answer.body["code"]) == (400, "InvalidURL")


async def test_the_upload_host_refuses_a_forged_signature_and_an_overwrite(start: Start) -> None:
    api = await start()
    policy = await api.call("GET", "/uploads", params={"action": "getPolicy", "model": "emoji-v1"})
    data = policy.body["data"]

    async def post(signature: str, key: str) -> Answer:
        form = aiohttp.FormData()
        form.add_field("OSSAccessKeyId", data["oss_access_key_id"])
        form.add_field("Signature", signature)
        form.add_field("policy", data["policy"])
        form.add_field("key", key)
        form.add_field("success_action_status", "200")
        form.add_field("file", b"x", filename="a.png")
        return await api.call("POST", data["upload_host"], data=form, key=None)

    forged = await post("Zm9yZ2Vk", f"{data['upload_dir']}/a.png")
    assert forged.status == 403
    assert b"SignatureDoesNotMatch" in forged.body
    outside = await post(data["signature"], "elsewhere/a.png")
    assert outside.status == 403
    assert (await post(data["signature"], f"{data['upload_dir']}/a.png")).status == 200
    again = await post(data["signature"], f"{data['upload_dir']}/a.png")
    assert again.status == 409
    assert b"FileAlreadyExists" in again.body


# -- result videos -----------------------------------------------------------------------


@pytest.mark.parametrize("driven_id", ["dagong_weixiao", "mengwa_kun_1"])
async def test_the_video_is_an_h264_mp4_512px_15fps_as_long_as_its_template(
    start: Start, driven_id: str
) -> None:
    av = pytest.importorskip("av")
    api = await start(attrs.evolve(FAST, durations=fixed_duration(5.0)))
    task_id = await api.submitted(IMAGE, driven_id)
    url = (await api.until(task_id, "SUCCEEDED")).body["output"]["video_url"]
    answer = await api.call("GET", url, key=None)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "video/mp4"
    assert int(answer.headers["Content-Length"]) == len(answer.body)
    seconds = template_info(driven_id).video_seconds  # type: ignore[union-attr]
    with av.open(io.BytesIO(answer.body)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (512, 512)
        assert stream.average_rate == 15
        assert sum(1 for _ in container.decode(stream)) == 15 * seconds
        assert float(stream.duration * stream.time_base) == pytest.approx(seconds)
    head = await api.call("HEAD", url, key=None)
    assert head.status == 200
    assert head.headers["Content-Length"] == answer.headers["Content-Length"]
    assert head.body == b""


async def test_templates_render_different_videos(start: Start) -> None:
    pytest.importorskip("av")
    api = await start(attrs.evolve(FAST, limits=None, durations=fixed_duration(5.0)))
    bodies = set()
    for info in (TEMPLATES[0], TEMPLATES[7]):
        task_id = await api.submitted(IMAGE, info.driven_id)
        url = (await api.until(task_id, "SUCCEEDED")).body["output"]["video_url"]
        bodies.add((await api.call("GET", url, key=None)).body)
    assert len(bodies) == 2


async def test_a_video_url_with_a_bad_signature_is_403(start: Start) -> None:
    api = await start(attrs.evolve(FAST, durations=fixed_duration(5.0), render_videos=False))
    task_id = await api.submitted()
    url = (await api.until(task_id, "SUCCEEDED")).body["output"]["video_url"]
    forged = re.sub(r"Signature=[^&]+", "Signature=forged", url)
    answer = await api.call("GET", forged, key=None)
    assert answer.status == 403
    assert b"SignatureDoesNotMatch" in answer.body
    stretched = re.sub(r"Expires=\d+", "Expires=9999999999", url)
    assert (await api.call("GET", stretched, key=None)).status == 403


async def test_without_rendering_the_video_is_a_labelled_placeholder(start: Start) -> None:
    api = await start(attrs.evolve(FAST, durations=fixed_duration(5.0), render_videos=False))
    assert not api.sim.renders_videos
    task_id = await api.submitted()
    url = (await api.until(task_id, "SUCCEEDED")).body["output"]["video_url"]
    answer = await api.call("GET", url, key=None)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.headers["X-Emoji-Simulator"] == "placeholder"
    assert int(answer.headers["Content-Length"]) == len(answer.body) > 0


# -- the mount point ---------------------------------------------------------------------


async def test_a_free_form_prefix_mounts_the_whole_api_there(start: Start) -> None:
    api = await start(attrs.evolve(FAST, api_prefix="/qwen/api/v1"))
    assert api.server.base_url == f"{api.server.origin}/qwen/api/v1"
    assert (await api.detect()).status == 200
    task_id = await api.submitted()
    assert (await api.query(task_id))["task_status"] in ("RUNNING", "SUCCEEDED")
    elsewhere = await api.call("GET", f"{api.server.origin}/api/v1/tasks/{task_id}")
    assert elsewhere.status == 404
    assert api.sim.requests[-1].endpoint == "other"


# -- scripted faults ---------------------------------------------------------------------


async def test_a_status_fault_answers_that_error_without_processing(start: Start) -> None:
    api = await start()
    api.sim.faults.add(
        Fault("submit", "status", status=503, code="ServiceUnavailable", retry_after=2)
    )
    answer = await api.submit()
    assert answer.status == 503
    assert answer.body["code"] == "ServiceUnavailable"
    assert answer.body["message"]
    assert answer.headers["Retry-After"] == "2"
    assert api.sim.tasks_created == 0
    assert (await api.submit()).status == 200  # fired once only
    assert len(api.sim.faults) == 0


async def test_a_fault_fires_for_its_next_times_matching_requests(start: Start) -> None:
    api = await start()
    api.sim.faults.add(Fault("query", "status", times=2, status=500, retry_after=0.25))
    statuses = [(await api.call("GET", "/tasks/x")).status for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert (await api.detect()).status == 200  # another endpoint is untouched


async def test_a_reset_fault_drops_the_connection_and_is_recorded_as_status_0(
    start: Start,
) -> None:
    api = await start()
    # aiohttp's client retries an idempotent request once when the server hangs up,
    # so it takes two resets in a row to reach the caller of a GET.
    api.sim.faults.add(Fault("query", "reset", times=2))
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.call("GET", "/tasks/x")
    assert [r.status for r in api.sim.requests] == [0, 0]
    assert (await api.call("GET", "/tasks/x")).status == 200


async def test_a_delay_fault_answers_normally_after_the_delay_and_is_listed_in_flight(
    start: Start,
) -> None:
    api = await start()
    api.sim.faults.add(Fault("detect", "delay", delay=0.2))
    began = time.monotonic()
    pending = asyncio.create_task(api.detect())
    await asyncio.sleep(0.1)
    assert [(r.endpoint, r.status) for r in api.sim.requests] == [("detect", 0)]  # in flight
    answer = await pending
    assert time.monotonic() - began >= 0.2
    assert answer.status == 200
    assert [(r.endpoint, r.status) for r in api.sim.requests] == [("detect", 200)]


async def test_a_fault_after_processing_hides_a_submit_that_created_its_task(
    start: Start,
) -> None:
    api = await start()
    api.sim.faults.add(Fault("submit", "status", status=500, after_processing=True))
    answer = await api.submit()
    assert answer.status == 500
    assert api.sim.tasks_created == 1
    listed = await api.call("GET", "/tasks")
    assert listed.body["total"] == 1
    api.sim.faults.add(Fault("submit", "reset", after_processing=True))
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.submit()
    assert api.sim.tasks_created == 2


async def test_faults_apply_after_authentication(start: Start) -> None:
    api = await start()
    api.sim.faults.add(Fault("*", "status", status=502))
    assert (await api.call("GET", "/tasks/x", key="sk-wrong")).status == 401
    assert len(api.sim.faults) == 1
    assert (await api.call("GET", "/tasks")).status == 502
    api.sim.faults.add(Fault("detect", "status"))
    api.sim.faults.clear()
    assert (await api.detect()).status == 200


# -- records and counters ----------------------------------------------------------------


async def test_every_request_is_recorded_and_counted_by_endpoint(start: Start) -> None:
    # The real clock: the second detect must fall inside the first one's window of
    # 1 s (at 0.001, a 1 ms window, a loaded machine let it through).
    api = await start(SimulatorConfig(time_scale=1.0))
    began = time.monotonic()
    await api.detect()
    await api.detect()  # throttled
    task_id = await api.submitted()
    await api.query(task_id)
    await api.call("GET", "/tasks")
    await api.call("POST", f"/tasks/{task_id}/cancel")
    await api.call("GET", "/uploads", params={"action": "getPolicy", "model": "emoji-v1"})
    await api.call("GET", "/tasks/x", key=None)
    await api.call("GET", "/nowhere")
    records = api.sim.requests
    assert [(r.endpoint, r.status) for r in records] == [
        ("detect", 200),
        ("detect", 429),
        ("submit", 200),
        ("query", 200),
        ("list", 200),
        ("cancel", 400),
        ("upload_policy", 200),
        ("query", 401),
        ("other", 404),
    ]
    assert records[0].method == "POST"
    assert records[0].path == f"/api/v1{DETECT}"
    assert all(began <= r.at <= time.monotonic() for r in records)
    assert [r.at for r in records] == sorted(r.at for r in records)
    stats = api.sim.stats
    assert stats.requests_by_endpoint == {
        "detect": 2,
        "submit": 1,
        "query": 2,
        "list": 1,
        "cancel": 1,
        "upload_policy": 1,
        "other": 1,
    }
    assert (stats.throttled, stats.throttled_by_endpoint) == (1, {"detect": 1})
    assert (stats.tasks_created, stats.detections_billed) == (1, 1)
    frozen = stats.snapshot()
    await api.detect()
    assert frozen.requests_by_endpoint["detect"] == 2
    assert api.sim.stats.requests_by_endpoint["detect"] == 3


async def test_boxes_and_video_seconds_follow_the_template_table(start: Start) -> None:
    api = await start(
        attrs.evolve(FAST, limits=None, durations=fixed_duration(1.0), render_videos=False)
    )
    ids = [await api.submitted(IMAGE, info.driven_id) for info in TEMPLATES]
    for task_id in ids:
        await api.until(task_id, "SUCCEEDED")
    assert api.sim.stats.video_seconds_billed == sum(info.video_seconds for info in TEMPLATES)


async def test_a_submit_answered_too_late_still_creates_its_task_after_the_client_gave_up(
    start: Start,
) -> None:
    api = await start()
    api.sim.faults.add(Fault("submit", "delay", delay=0.3, after_processing=True))
    with pytest.raises(asyncio.TimeoutError):
        async with asyncio.timeout(0.05):
            await api.submit()
    assert api.sim.tasks_created == 1  # processed before the (late) answer
    api.sim.faults.add(Fault("submit", "delay", delay=0.2))
    with pytest.raises(asyncio.TimeoutError):
        async with asyncio.timeout(0.05):
            await api.submit()
    assert api.sim.tasks_created == 1  # not yet: the request takes effect late
    await asyncio.sleep(0.3)
    assert api.sim.tasks_created == 2  # ... but it does, after the client gave up
    assert (await api.call("GET", "/tasks")).body["total"] == 2


async def test_run_forever_prints_the_base_url_and_serves_until_cancelled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = asyncio.create_task(emoji_async.testing.run_forever(FAST, "127.0.0.1", 0))
    async with asyncio.timeout(5):
        while not (printed := capsys.readouterr().out):  # noqa: ASYNC110 - stdout has no event
            await asyncio.sleep(0.01)
    base_url = printed.strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", base_url)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/tasks/x", headers={"Authorization": f"Bearer {KEY}"}) as answer,
    ):
        assert answer.status == 200
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server

"""A hostile service, played on demand: each misbehaviour goes over the wire as its fault says.

Every test talks to a real simulator over loopback HTTP with a plain
``aiohttp.ClientSession`` (no client code of ours) and asserts what was sent:
sizes, headers, the pace of a drip (in generous bounds), the key where a
careless server repeats it, and the simulator's own record of what was true.
"""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import attrs
import pytest

from emoji_async.testing import (
    CHAOS_KINDS,
    HOSTILE_KINDS,
    Chaos,
    Fault,
    SimulatorConfig,
    fixed_duration,
)
from emoji_async.testing._chaos_source import ChaosSource
from emoji_async.testing._faults import fault_label
from emoji_async.testing._wire import BILLING_CODES, FAILURE_MESSAGES

from .simhttp import DETECT, KEY, SUBMIT, UNTHROTTLED, RawApi, simulators

IMAGE = "https://example.com/portraits/hostile.png"
CALM = SimulatorConfig(
    time_scale=0.001,
    limits=UNTHROTTLED,
    durations=fixed_duration(1.0),
    render_videos=False,
)
AUTHORIZATION = f"Bearer {KEY}"
MiB = 1024 * 1024


class Api(RawApi):
    """Plain HTTP with what these tests need: raw bodies, submits, a finished task's video."""

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.server.base_url + path

    def submit_body(self, image: str = IMAGE) -> dict[str, Any]:
        face, ext = self.sim.boxes_for(image)
        inputs = {"image_url": image, "driven_id": "mengwa_kaixin", "face_bbox": face}
        return {"model": "emoji-v1", "input": {**inputs, "ext_bbox": ext}}

    async def submit(self, image: str = IMAGE) -> Any:
        headers = {"X-DashScope-Async": "enable"}
        answer = await self.call("POST", SUBMIT, json=self.submit_body(image), headers=headers)
        return answer.body

    async def finished(self, task_id: str) -> dict[str, Any]:
        """The task's query output once it has ended."""
        async with asyncio.timeout(10):
            while True:
                output: dict[str, Any] = (await self.call("GET", f"/tasks/{task_id}")).body[
                    "output"
                ]
                if output["task_status"] in ("SUCCEEDED", "FAILED"):
                    return output
                await asyncio.sleep(0.005)

    async def video_url(self) -> str:
        task_id = (await self.submit())["output"]["task_id"]
        url: str = (await self.finished(task_id))["video_url"]
        return url

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """An ``aiohttp`` request context with the key, for reading the answer as it comes."""
        headers = {"Authorization": AUTHORIZATION, **kwargs.pop("headers", {})}
        return self.session.request(method, self.url(path), headers=headers, **kwargs)


Start = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    async with simulators(Api, CALM) as factory:
        yield factory


def only(kind: str, **settings: Any) -> Chaos:
    return Chaos(**{kind: 1.0, **settings})


async def count_body(response: aiohttp.ClientResponse, *, tail: int = 65536) -> tuple[int, bytes]:
    """How many body bytes arrived, and the last ``tail`` of them (the rest is not kept)."""
    size, last = 0, b""
    async for chunk in response.content.iter_any():
        size += len(chunk)
        last = (last + chunk)[-tail:]
    return size, last


def inflate_counting(compressed: bytes, *, tail: int = 65536) -> tuple[int, bytes, bool]:
    """Inflate a gzip body a mebibyte at a time: its size, its last bytes, whether it ended.

    zlib checks the member's CRC-32 and length as it ends.
    """
    inflater = zlib.decompressobj(31)
    size, last, data = 0, b"", compressed
    while data:
        out = inflater.decompress(data, MiB)
        size += len(out)
        last = (last + out)[-tail:]
        data = inflater.unconsumed_tail
    return size, last, inflater.eof


# -- huge answers --------------------------------------------------------------------------------


async def test_a_huge_answer_is_the_real_answer_after_whitespace_to_the_size_asked(
    start: Start,
) -> None:
    api = await start()
    size = 3 * MiB + 5
    api.sim.faults.add(Fault("query", "huge", size=size))
    async with api.request("GET", "/tasks/some-task") as response:
        assert response.status == 200
        assert response.content_length == size
        assert response.content_type == "application/json"
        body = await response.read()
    assert len(body) == size
    answer = json.loads(body)  # leading whitespace is JSON all the same
    assert answer["output"] == {"task_id": "some-task", "task_status": "UNKNOWN"}
    assert body[: size - 200].strip() == b""
    assert api.sim.stats.faults_by_kind == {"huge_answer": 1}
    assert [r.fault for r in api.sim.requests] == ["huge_answer"]


async def test_a_chunked_huge_answer_gives_no_size_up_front_and_is_streamed(
    start: Start,
) -> None:
    api = await start()
    size = 128 * MiB
    api.sim.faults.add(Fault("query", "huge", size=size, chunked=True))
    tracemalloc.start()
    try:
        async with api.request("GET", "/tasks/t") as response:
            assert response.content_length is None
            assert response.headers["Transfer-Encoding"] == "chunked"
            received, last = await count_body(response)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert json.loads(last)["output"]["task_id"] == "t"
    # Server and reader together held a sliver of it: the body was never built whole.
    assert peak < size / 8


async def test_a_huge_answer_leaves_answers_without_a_json_object_alone(start: Start) -> None:
    api = await start()
    url = await api.video_url()
    async with api.session.get(url) as response:
        whole = await response.read()
    api.sim.faults.add(Fault("download", "huge", size=MiB))
    async with api.session.get(url) as response:
        assert await response.read() == whole
    assert "huge_answer" not in api.sim.stats.faults_by_kind


# -- gzip bombs ------------------------------------------------------------------------------------


async def test_a_gzip_bomb_of_a_gibibyte_is_about_a_mebibyte_on_the_wire(start: Start) -> None:
    api = await start()
    api.sim.faults.add(Fault("detect", "gzip_bomb", size=1024 * MiB))
    body = {
        "model": "emoji-detect-v1",
        "input": {"image_url": IMAGE},
        "parameters": {"ratio": "1:1"},
    }
    tracemalloc.start()
    try:
        async with api.request("POST", DETECT, json=body, auto_decompress=False) as response:
            assert response.status == 200
            assert response.headers["Content-Encoding"] == "gzip"
            compressed = await response.read()
            assert response.content_length == len(compressed)
        inflated, last, ended = inflate_counting(compressed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(compressed) < 2 * MiB
    assert (inflated, ended) == (1024 * MiB, True)
    assert json.loads(last)["output"]["bbox_face"]  # the real detection, last
    assert peak < 64 * MiB  # neither side ever held the gibibyte
    assert api.sim.stats.faults_by_kind == {"gzip_bomb": 1}
    assert api.sim.stats.detections_billed == 1


async def test_a_chunked_gzip_bomb_inflates_for_any_client_to_the_real_answer(
    start: Start,
) -> None:
    api = await start()
    size = 5 * MiB + 3
    api.sim.faults.add(Fault("query", "gzip_bomb", size=size, chunked=True, times=2))
    async with api.request("GET", "/tasks/b", auto_decompress=False) as response:
        assert response.content_length is None
        compressed = await response.read()
    assert inflate_counting(compressed)[0] == size
    async with api.request("GET", "/tasks/b") as response:  # aiohttp inflates it
        body = await response.read()
    assert len(body) == size
    assert json.loads(body)["output"]["task_id"] == "b"


# -- dripping answers ------------------------------------------------------------------------------


async def test_a_drip_sends_headers_at_once_then_a_byte_at_a_time_until_its_bound(
    start: Start,
) -> None:
    api = await start()
    task_id = (await api.submit())["output"]["task_id"]
    interval, bound = 0.05, 0.6
    api.sim.faults.add(Fault("query", "drip", interval=interval, delay=bound))
    sent = time.monotonic()
    async with api.request("GET", f"/tasks/{task_id}") as response:
        headers_after = time.monotonic() - sent
        length = response.content_length
        assert length is not None
        reads, body = 0, b""
        async for chunk in response.content.iter_any():
            reads += 1
            body += chunk
    whole_after = time.monotonic() - sent
    assert json.loads(body)["output"]["task_id"] == task_id
    assert len(body) == length
    # Dripped in full, it would take length * interval seconds; it ends at the bound.
    assert length * interval > 4 * bound
    assert headers_after < bound
    assert bound <= whole_after < length * interval / 2
    assert reads >= 3  # the bytes came one by one, then the rest
    assert api.sim.stats.faults_by_kind == {"drip": 1}


async def test_a_drip_ends_when_the_client_hangs_up(start: Start) -> None:
    api = await start()
    api.sim.faults.add(Fault("query", "drip", interval=0.02, delay=60.0))
    async with api.request("GET", "/tasks/t") as response:
        first = await response.content.readexactly(2)
        response.close()  # hang up mid-body
    assert first == b'{"'
    async with asyncio.timeout(5):  # far below the drip's 60 s bound
        while api.sim.requests[-1].fault != "drip":  # noqa: ASYNC110 - settled when it ends
            await asyncio.sleep(0.01)
    assert api.sim.requests[-1].status == 0  # nobody was left to answer


async def test_a_video_can_drip_too(start: Start) -> None:
    api = await start()
    url = await api.video_url()
    async with api.session.get(url) as response:
        whole = await response.read()
    api.sim.faults.add(Fault("download", "drip", interval=0.01, delay=0.3))
    sent = time.monotonic()
    async with api.session.get(url) as response:
        assert response.content_length == len(whole)
        assert await response.read() == whole
    assert time.monotonic() - sent >= 0.3
    assert api.sim.stats.faults_by_kind == {"drip": 1}


# -- huge Retry-After, billing ---------------------------------------------------------------------


async def test_a_huge_retry_after_is_a_429_asking_for_ten_to_the_twelve_seconds(
    start: Start,
) -> None:
    api = await start()
    api.sim.faults.add(
        Fault("detect", "status", status=429, code="Throttling.RateQuota", retry_after=1e12)
    )
    api.sim.set_chaos(only("huge_retry_after", endpoints={"query"}))
    scripted = await api.call("POST", DETECT, json={})
    drawn = await api.call("GET", "/tasks/x")
    for answer in (scripted, drawn):
        assert answer.status == 429
        assert answer.headers["Retry-After"] == "1000000000000"
        assert answer.body["code"] == "Throttling.RateQuota"
    assert api.sim.stats.faults_by_kind == {"huge_retry_after": 2}
    assert api.sim.stats.detections_billed == 0


async def test_billing_answers_refuse_the_account_with_the_codes_and_messages_of_the_table(
    start: Start,
) -> None:
    api = await start(attrs.evolve(CALM, chaos=only("billing", seed=1, endpoints={"query"})))
    answers = [await api.call("GET", "/tasks/x") for _ in range(30)]
    seen = {(a.status, a.body["code"]) for a in answers}
    assert seen == {
        (429, "PrepaidBillOverdue"),
        (429, "PostpaidBillOverdue"),
        (429, "CommodityNotPurchased"),
        (429, "Throttling.AllocationQuota"),
        (400, "Arrearage"),
    }
    assert all(a.body["message"] == FAILURE_MESSAGES[a.body["code"]] for a in answers)
    assert FAILURE_MESSAGES["Throttling.AllocationQuota"] == "Free allocated quota exceeded"
    assert all(a.body["request_id"] and "Retry-After" not in a.headers for a in answers)
    assert api.sim.stats.faults_by_kind == {"billing": 30}


async def test_a_scripted_billing_refusal_creates_nothing_and_counts_as_billing(
    start: Start,
) -> None:
    api = await start()
    for code in sorted(BILLING_CODES):
        status = 400 if code == "Arrearage" else 429
        api.sim.faults.add(Fault("submit", "status", status=status, code=code))
        answer = await api.call(
            "POST", SUBMIT, json=api.submit_body(), headers={"X-DashScope-Async": "enable"}
        )
        assert (answer.status, answer.body["code"]) == (status, code)
        assert answer.body["message"] == FAILURE_MESSAGES[code]
    assert api.sim.tasks_created == 0
    assert api.sim.stats.faults_by_kind == {"billing": len(BILLING_CODES)}


# -- echoed keys -----------------------------------------------------------------------------------


async def test_a_4xx_can_echo_the_key_in_its_json_message(start: Start) -> None:
    api = await start()
    api.sim.faults.add(Fault("query", "echo_key", status=401))
    api.sim.faults.add(Fault("query", "echo_key", status=403, code="AccessDenied"))
    unknown_key = await api.call("GET", "/tasks/x")
    denied = await api.call("GET", "/tasks/x")
    assert (unknown_key.status, unknown_key.body["code"]) == (401, "InvalidApiKey")
    assert (denied.status, denied.body["code"]) == (403, "AccessDenied")
    assert all(AUTHORIZATION in a.body["message"] for a in (unknown_key, denied))
    assert api.sim.stats.faults_by_kind == {"echoed_key": 2}


async def test_a_gateway_502_echoes_the_request_headers_in_plain_text(start: Start) -> None:
    api = await start()
    api.sim.faults.add(Fault("submit", "echo_key", status=502))
    api.sim.faults.add(Fault("submit", "echo_key", status=502, after_processing=True))
    headers = {"X-DashScope-Async": "enable"}
    before = await api.call("POST", SUBMIT, json=api.submit_body(), headers=headers)
    assert api.sim.tasks_created == 0
    after = await api.call("POST", SUBMIT, json=api.submit_body(), headers=headers)
    assert api.sim.tasks_created == 1  # a gateway lost the answer of a task made
    for answer in (before, after):
        assert answer.status == 502
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.body.decode()
        assert text.startswith("502 Bad Gateway\n")
        assert f"Authorization: {AUTHORIZATION}\n" in text
        assert f"POST /api/v1{SUBMIT}\n" in text
    assert api.sim.stats.faults_by_kind == {"echoed_key": 2}


async def test_chaos_echoes_the_key_in_a_gateways_502(start: Start) -> None:
    api = await start(attrs.evolve(CALM, chaos=only("echoed_key", seed=2, endpoints={"list"})))
    answers = [await api.call("GET", "/tasks") for _ in range(6)]
    assert {a.status for a in answers} == {502}
    assert all(AUTHORIZATION.encode() in a.body for a in answers)
    assert api.sim.stats.faults_by_kind == {"echoed_key": 6}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("sim_echo_key=1", "InternalError"),
        ("sim_fail=InternalError.Algo&sim_echo_key=1", "InternalError.Algo"),
    ],
)
async def test_a_task_can_fail_with_a_message_quoting_the_key(
    start: Start, query: str, code: str
) -> None:
    api = await start()
    task_id = (await api.submit(f"{IMAGE}?{query}"))["output"]["task_id"]
    output = await api.finished(task_id)
    assert (output["task_status"], output["code"]) == ("FAILED", code)
    assert AUTHORIZATION in output["message"]
    assert output["message"].startswith(FAILURE_MESSAGES[code])


# -- impossible task ids ---------------------------------------------------------------------------


async def test_a_submit_can_name_an_impossible_task_id_while_the_real_one_exists(
    start: Start,
) -> None:
    api = await start()
    api.sim.faults.add(Fault("submit", "odd_task_id"))
    api.sim.faults.add(Fault("submit", "odd_task_id", task_id="{task_id}/cancel"))
    api.sim.faults.add(Fault("submit", "odd_task_id", task_id="x" * 10_240))
    shown = [(await api.submit())["output"]["task_id"] for _ in range(3)]
    real = list(api.sim.task_states())
    assert len(real) == 3
    assert shown == ["..", f"{real[1]}/cancel", "x" * 10_240]
    listed = (await api.call("GET", "/tasks")).body["data"]
    assert {row["task_id"] for row in listed} == set(real)  # settled by the list, found there
    assert api.sim.stats.faults_by_kind == {"odd_task_id": 3}


async def test_chaos_draws_each_impossible_task_id(start: Start) -> None:
    api = await start(attrs.evolve(CALM, chaos=only("odd_task_id", seed=5)))
    shown = [(await api.submit())["output"]["task_id"] for _ in range(25)]
    real = list(api.sim.task_states())
    shapes = set()
    for odd, task_id in zip(shown, real, strict=True):
        shape = odd.replace(task_id, "ID") if task_id in odd else odd
        shapes.add("ID+10k" if shape.startswith("ID0") and len(shape) > 10_000 else shape)
    assert shapes == {"..", ".", "../ID", "ID/cancel", "ID+10k"}


# -- gzip-encoded videos ---------------------------------------------------------------------------


async def test_a_gzip_video_has_the_compressed_size_as_its_content_length(start: Start) -> None:
    api = await start()
    url = await api.video_url()
    async with api.session.get(url) as response:
        whole = await response.read()
    api.sim.set_chaos(only("gzip_download"))
    async with api.session.get(url, auto_decompress=False) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        raw = await response.read()
        assert response.content_length == len(raw)
    assert zlib.decompress(raw, 31) == whole
    async with api.session.get(url) as response:  # aiohttp inflates it
        assert await response.read() == whole
    assert api.sim.stats.faults_by_kind == {"gzip_download": 2}


# -- the dice --------------------------------------------------------------------------------------


def test_uniform_leaves_the_hostile_kinds_off_unless_asked() -> None:
    assert CHAOS_KINDS[-len(HOSTILE_KINDS) :] == HOSTILE_KINDS
    transit = Chaos.uniform(0.1).probabilities
    assert {transit[k] for k in HOSTILE_KINDS} == {0.0}
    assert {p for k, p in transit.items() if k not in HOSTILE_KINDS} == {0.1}
    assert set(Chaos.uniform(0.1, hostile=True).probabilities.values()) == {0.1}
    assert Chaos.uniform(0.1, drip=0.5).drip == 0.5


def test_the_hostile_dice_leave_the_faults_in_transit_where_they_were() -> None:
    calm = ChaosSource(Chaos.uniform(0.04, seed=9))
    hostile = ChaosSource(Chaos.uniform(0.04, seed=9, hostile=True))
    replaced = same = 0
    for _ in range(2000):
        before, after = calm.take("submit"), hostile.take("submit")
        if after is not None and fault_label(after, "submit") in HOSTILE_KINDS:
            replaced += 1
        else:
            assert after == before
            same += before is not None
    assert replaced > 0
    assert same > 0


def test_each_hostile_kind_is_counted_under_its_own_name() -> None:
    for kind in HOSTILE_KINDS:
        endpoint = "download" if kind == "gzip_download" else "submit"
        fault = ChaosSource(only(kind)).take(endpoint)
        assert fault is not None, kind
        assert fault_label(fault, endpoint) == kind


def test_where_the_hostile_kinds_play() -> None:
    chaos = Chaos.uniform(1.0, hostile=True)
    assert not set(HOSTILE_KINDS) & set(chaos.kinds_at("upload"))
    assert set(HOSTILE_KINDS) & set(chaos.kinds_at("download")) == {"drip", "gzip_download"}
    for endpoint in ("detect", "query", "list", "cancel", "upload_policy"):
        assert set(HOSTILE_KINDS) - set(chaos.kinds_at(endpoint)) == {
            "odd_task_id",
            "gzip_download",
        }
    assert set(HOSTILE_KINDS) - set(chaos.kinds_at("submit")) == {"gzip_download"}


def test_hostile_settings_are_checked_with_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"Chaos\.huge_bytes must be a whole number of bytes"):
        Chaos(huge_bytes=0)
    with pytest.raises(ValueError, match=r"Chaos\.drip_interval must be a positive number"):
        Chaos(drip_interval=0)
    with pytest.raises(ValueError, match=r"Chaos\.huge_wait must be a number of seconds over"):
        Chaos(huge_wait=60)
    with pytest.raises(ValueError, match="size must be a whole number of bytes >= 1"):
        Fault("query", "huge", size=0)
    with pytest.raises(ValueError, match="interval must be a positive number of seconds"):
        Fault("query", "drip", interval=-1)
    with pytest.raises(ValueError, match=r"echo_key fault answers an error status \(400 to 599\)"):
        Fault("query", "echo_key", status=200)
    with pytest.raises(ValueError, match="always comes after processing"):
        Fault("query", "drip", after_processing=False)
    assert Fault("query", "drip").delay == 60.0
    assert Fault("query", "delay").delay == 0.0

"""Chaos: the simulator's random faults happen, each as its kind says, reproducibly from a seed.

Every test talks to a real simulator over loopback HTTP with a plain
``aiohttp.ClientSession``: no client code of ours. Requests go one at a time,
so "the same requests" means the same sequence on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import attrs
import pytest

from emoji_async.cli import main
from emoji_async.cli._argtypes import CHAOS_KINDS as CLI_CHAOS_KINDS
from emoji_async.testing import (
    CHAOS_KINDS,
    HOSTILE_KINDS,
    Chaos,
    Fault,
    Simulator,
    SimulatorConfig,
    fixed_duration,
    serve,
)
from emoji_async.testing._chaos_source import ChaosSource
from emoji_async.testing._faults import fault_label

from .commands import command, interrupt, read_line
from .simhttp import DETECT, KEY, SUBMIT, UNTHROTTLED, Answer, RawApi

IMAGE = "https://example.com/portraits/chaos.png"
#: No rate limits (429s come from chaos only), the single running slot kept, tiny tasks.
CALM = SimulatorConfig(
    time_scale=0.001,
    limits=UNTHROTTLED,
    durations=fixed_duration(1.0),
    render_videos=False,
)
SERVER_ERROR_CODES = {
    "InternalError",
    "SystemError",
    "ModelServingError",
    "ServiceUnavailable",
    "ModelUnavailable",
}
#: Faults after which the server has not processed the request.
NOT_PROCESSED = {"server_error", "server_error_retry_after", "reset_before", "throttle_burst"}


def chaotic(chaos: Chaos, **overrides: Any) -> SimulatorConfig:
    return attrs.evolve(CALM, chaos=chaos, **overrides)


class Api(RawApi):
    """The endpoints chaos plays on, in plain HTTP; a dropped connection is an answer of 0."""

    async def safe(
        self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        """Any answer: a dropped connection has status 0, a body that is not JSON stays bytes."""
        sent = {"Authorization": f"Bearer {KEY}", **(headers or {})}
        url = self.server.base_url + path
        try:
            async with self.session.request(method, url, json=body, headers=sent) as response:
                raw = await response.read()
        except aiohttp.ClientError:
            return Answer(0, None, {})
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = raw
        return Answer(response.status, decoded, response.headers)

    def submit_body(self) -> dict[str, Any]:
        face, ext = self.sim.boxes_for(IMAGE)
        inputs = {"image_url": IMAGE, "driven_id": "mengwa_kaixin", "face_bbox": face}
        return {"model": "emoji-v1", "input": {**inputs, "ext_bbox": ext}}

    async def submit(self) -> Answer:
        headers = {"X-DashScope-Async": "enable"}
        return await self.call("POST", SUBMIT, json=self.submit_body(), headers=headers)

    async def detect(self) -> Answer:
        body = {"model": "emoji-detect-v1", "input": {"image_url": IMAGE}}
        return await self.call("POST", DETECT, json={**body, "parameters": {"ratio": "1:1"}})

    async def raw(
        self, method: str, url: str, *, json: Any = None, **headers: str
    ) -> tuple[int, bytes, int | None]:
        """Status, body bytes and ``Content-Length`` of one answer, read in full."""
        sent = {"Authorization": f"Bearer {KEY}", **headers}
        async with self.session.request(method, url, json=json, headers=sent) as response:
            return response.status, await response.read(), response.content_length

    async def succeeded_video_url(self) -> str:
        """Submit with chaos paused, wait for success, and give the task's video URL."""
        chaos = self.sim.config.chaos
        self.sim.set_chaos(None)
        task_id = (await self.submit()).body["output"]["task_id"]
        async with asyncio.timeout(10):
            while True:
                output = (await self.call("GET", f"/tasks/{task_id}")).body["output"]
                if output["task_status"] == "SUCCEEDED":
                    break
                await asyncio.sleep(0.005)
        self.sim.set_chaos(chaos)
        url: str = output["video_url"]
        return url


Start = Callable[[SimulatorConfig], Awaitable[Api]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Starts simulators on loopback; all stopped, and the session closed, at teardown."""
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())

        async def factory(config: SimulatorConfig) -> Api:
            return Api(await stack.enter_async_context(serve(config)), session)

        yield factory


async def _read_into(response: aiohttp.ClientResponse, received: bytearray) -> None:
    async for chunk in response.content.iter_any():
        received += chunk


async def read_until_cut(response: aiohttp.ClientResponse) -> bytes:
    """The bytes that arrived before the body broke off, as it must."""
    received = bytearray()
    with pytest.raises(aiohttp.ClientPayloadError):
        await _read_into(response, received)
    return bytes(received)


def only(kind: str, **settings: Any) -> Chaos:
    """Chaos where ``kind`` always happens and nothing else ever does."""
    return Chaos(**{kind: 1.0, **settings})


# -- the setting ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, math.inf, "0.1", True])
def test_a_probability_outside_0_to_1_is_refused_naming_its_field(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"Chaos\.reset_after must be a probability from 0 to 1"):
        Chaos(reset_after=bad)


def test_every_other_chaos_setting_is_checked_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="chaos rate must be a probability from 0 to 1, got 2"):
        Chaos.uniform(2)
    with pytest.raises(ValueError, match=r"Chaos\.slow_seconds must be a positive number"):
        Chaos(slow_seconds=0)
    with pytest.raises(ValueError, match=r"Chaos\.retry_after must be a positive number"):
        Chaos(retry_after=-1)
    with pytest.raises(ValueError, match=r"Chaos\.burst_length must be a whole number >= 1"):
        Chaos(burst_length=0)
    with pytest.raises(ValueError, match=r"Chaos\.endpoints: \['sample'\] cannot see chaos"):
        Chaos(endpoints={"query", "sample"})
    with pytest.raises(TypeError, match=r"chaos must be a Chaos \(e\.g\. Chaos\.uniform"):
        SimulatorConfig(chaos=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="keep_requests must be a whole number >= 1"):
        SimulatorConfig(keep_requests=0)


def test_new_fault_kinds_are_checked_too() -> None:
    with pytest.raises(ValueError, match="keep must be between 0 and 1"):
        Fault("download", "cut", keep=1.0)
    with pytest.raises(ValueError, match="always comes after processing"):
        Fault("query", "truncate", after_processing=False)
    with pytest.raises(ValueError, match="field must be a dotted path"):
        Fault("query", "drop_field", field="output.")
    with pytest.raises(ValueError, match="unknown fault kind 'garble'"):
        Fault("query", "garble")  # type: ignore[arg-type]
    assert Fault("query", "drop_field").after_processing
    assert not Fault("query", "reset").after_processing


def test_uniform_sets_every_kind_to_the_rate_and_keeps_explicit_settings() -> None:
    chaos = Chaos.uniform(0.25, seed=9, reset_after=0.5, slow_seconds=0.1)
    assert chaos.seed == 9
    assert chaos.slow_seconds == 0.1
    assert chaos.probabilities == {
        kind: 0.0 if kind in HOSTILE_KINDS else 0.5 if kind == "reset_after" else 0.25
        for kind in CHAOS_KINDS
    }
    assert set(Chaos().probabilities.values()) == {0.0}


def test_each_kind_chaos_draws_is_counted_under_its_own_name() -> None:
    endpoint_of = {"cut_download": "download", "gzip_download": "download"}
    for kind in CHAOS_KINDS:
        endpoint = endpoint_of.get(kind, "submit")
        fault = ChaosSource(only(kind)).take(endpoint)
        assert fault is not None, kind
        assert fault_label(fault, endpoint) == kind


def test_chaos_stays_off_the_image_host_and_unknown_paths() -> None:
    source = ChaosSource(Chaos.uniform(1.0))
    assert [source.take(endpoint) for endpoint in ("sample", "other")] == [None, None]
    assert ChaosSource(Chaos.uniform(1.0, endpoints={"query"})).take("detect") is None


# -- nothing, and the same again -----------------------------------------------------------


async def mixed_traffic(api: Api, rounds: int) -> None:
    """A fixed sequence over the API endpoints, every answer (or none) accepted."""
    for n in range(rounds):
        await api.safe("GET", f"/tasks/task-{n}")
        await api.safe("GET", "/tasks")
        await api.safe("POST", f"/tasks/task-{n}/cancel")
        await api.safe(
            "POST",
            DETECT,
            body={
                "model": "emoji-detect-v1",
                "input": {"image_url": IMAGE},
                "parameters": {"ratio": "1:1"},
            },
        )
        await api.safe(
            "POST", SUBMIT, body=api.submit_body(), headers={"X-DashScope-Async": "enable"}
        )


def faults_seen(sim: Simulator) -> list[tuple[str, str | None]]:
    return [(record.endpoint, record.fault) for record in sim.requests]


@pytest.mark.parametrize("chaos", [Chaos(), Chaos.uniform(0.0, seed=3)])
async def test_probabilities_of_zero_inject_nothing(start: Start, chaos: Chaos) -> None:
    api = await start(chaotic(chaos))
    await mixed_traffic(api, 12)
    assert len(api.sim.requests) == 60
    assert all(record.fault is None for record in api.sim.requests)
    assert all(record.status in (200, 400) for record in api.sim.requests)  # 400: cancels
    assert api.sim.stats.faults_by_kind == {}
    assert api.sim.tasks_created == 12


async def test_the_same_seed_gives_the_same_faults_for_the_same_requests(start: Start) -> None:
    chaos = Chaos.uniform(0.05, seed=11, slow_seconds=0.001, retry_after=0.001)
    runs = []
    for setting in (chaos, chaos, attrs.evolve(chaos, seed=12)):
        api = await start(chaotic(setting))
        await mixed_traffic(api, 30)
        runs.append((faults_seen(api.sim), api.sim.stats.faults_by_kind, api.sim.tasks_created))
    first, again, other_seed = runs
    assert first == again
    assert len([label for _, label in first[0] if label is not None]) >= 5  # chaos did play
    assert other_seed[0] != first[0]


async def test_an_endpoints_faults_do_not_depend_on_how_other_endpoints_interleave(
    start: Start,
) -> None:
    chaos = Chaos.uniform(0.1, seed=5, slow_seconds=0.001, endpoints={"query", "detect"})

    async def run(order: list[str]) -> dict[str, list[str | None]]:
        api = await start(chaotic(chaos))
        for endpoint in order:
            if endpoint == "query":
                await api.safe("GET", "/tasks/x")
            else:
                await api.safe("POST", DETECT, body={})
        return {
            endpoint: [r.fault for r in api.sim.requests if r.endpoint == endpoint]
            for endpoint in ("query", "detect")
        }

    # Queries get a retry from aiohttp after a reset: both runs send them the same way.
    grouped = await run(["query"] * 40 + ["detect"] * 40)
    alternating = await run(["query", "detect"] * 40)
    assert grouped == alternating
    assert any(grouped["query"])
    assert any(grouped["detect"])


# -- each kind -----------------------------------------------------------------------------


async def test_server_errors_answer_500_502_or_503_with_a_provider_body_and_process_nothing(
    start: Start,
) -> None:
    api = await start(chaotic(only("server_error", seed=2)))
    answers = [await api.submit() for _ in range(12)]
    assert {a.status for a in answers} <= {500, 502, 503}
    assert len({a.status for a in answers}) > 1
    assert all(a.body["code"] in SERVER_ERROR_CODES and a.body["message"] for a in answers)
    assert all(a.body["request_id"] for a in answers)
    assert all("Retry-After" not in a.headers for a in answers)
    assert api.sim.tasks_created == 0
    assert api.sim.stats.faults_by_kind == {"server_error": 12}


async def test_server_errors_with_retry_after_carry_the_configured_wait(start: Start) -> None:
    api = await start(chaotic(only("server_error_retry_after", retry_after=2.5)))
    answer = await api.call("GET", "/tasks")
    assert answer.status in (500, 502, 503)
    assert answer.headers["Retry-After"] == "2.5"


async def test_a_server_error_after_processing_hides_a_created_task(start: Start) -> None:
    api = await start(chaotic(only("server_error_after")))
    answer = await api.submit()
    assert answer.status in (500, 502, 503)
    assert api.sim.tasks_created == 1
    assert list(api.sim.task_states().values()) in (["PENDING"], ["RUNNING"])


async def test_a_reset_before_processing_creates_no_task(start: Start) -> None:
    api = await start(chaotic(only("reset_before", endpoints={"submit"})))
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.submit()
    assert api.sim.tasks_created == 0
    assert api.sim.task_states() == {}
    assert [(r.endpoint, r.status, r.fault) for r in api.sim.requests] == [
        ("submit", 0, "reset_before")
    ]


async def test_a_reset_after_processing_really_created_the_task(start: Start) -> None:
    api = await start(chaotic(only("reset_after", endpoints={"submit"})))
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.submit()
    assert api.sim.tasks_created == 1
    (task_id,) = api.sim.task_states()
    listed = await api.call("GET", "/tasks")  # chaos plays on submits only
    assert [row["task_id"] for row in listed.body["data"]] == [task_id]
    assert api.sim.stats.faults_by_kind == {"reset_after": 1}


async def test_a_slow_submit_the_client_gave_up_on_is_processed_afterwards(start: Start) -> None:
    api = await start(chaotic(only("slow_before", slow_seconds=0.3, endpoints={"submit"})))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await api.submit()
    assert api.sim.tasks_created == 0  # still waiting: nothing has happened yet
    async with asyncio.timeout(5):
        while api.sim.tasks_created == 0:  # noqa: ASYNC110 - the simulator has no event for it
            await asyncio.sleep(0.01)
    assert len(api.sim.task_states()) == 1


async def test_a_slow_answer_after_processing_comes_late_on_a_created_task(start: Start) -> None:
    api = await start(chaotic(only("slow_after", slow_seconds=0.3, endpoints={"submit"})))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await api.submit()
    assert api.sim.tasks_created == 1  # processed before the late answer


async def test_a_truncated_answer_is_a_complete_200_whose_body_is_not_json(start: Start) -> None:
    api = await start(chaotic(only("truncated", seed=4, endpoints={"submit", "query"})))
    url = api.server.base_url + "/tasks/some-task"
    for _ in range(10):
        status, body, length = await api.raw("GET", url)
        assert (status, length) == (200, len(body))
        assert body.startswith(b'{"')
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
    status, body, _ = await api.raw(
        "POST",
        api.server.base_url + SUBMIT,
        json=api.submit_body(),
        **{"X-DashScope-Async": "enable"},
    )
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    assert api.sim.tasks_created == 1  # the task behind the truncated answer exists
    assert api.sim.stats.faults_by_kind == {"truncated": 11}


async def test_a_missing_field_answer_is_valid_json_without_what_the_client_needs(
    start: Start,
) -> None:
    api = await start(CALM)
    task_id = (await api.submit()).body["output"]["task_id"]
    api.sim.set_chaos(only("missing_field", seed=1, endpoints={"query"}))
    missing = set()
    for _ in range(20):
        body = (await api.call("GET", f"/tasks/{task_id}")).body
        output = body.get("output", {})
        lacks = {"output"} if "output" not in body else {"task_id", "task_status"} - set(output)
        assert len(lacks) == 1
        missing |= lacks
    assert missing == {"output", "task_id", "task_status"}
    assert list(api.sim.task_states()) == [task_id]


async def test_a_429_burst_covers_the_next_requests_of_the_endpoint_group(start: Start) -> None:
    chaos = Chaos(throttle_burst=0.05, burst_length=5, seed=8)
    api = await start(chaotic(chaos))
    async with asyncio.timeout(10):
        while (await api.safe("GET", "/tasks/x")).status != 429:
            pass
    answers = [
        await api.safe("GET", "/tasks"),
        await api.safe("POST", "/tasks/x/cancel"),
        await api.detect(),  # another group: not in the burst
        await api.safe("GET", "/tasks/x"),
        await api.safe("GET", "/tasks/x"),
    ]
    statuses = [answer.status for answer in answers]
    assert statuses[:2] + statuses[3:] == [429, 429, 429, 429]
    assert statuses[2] == 200
    assert all(a.body["code"] == "Throttling.RateQuota" for a in answers if a.status == 429)
    # The burst over, the dice decide again: with p = 0.05 the next one is most likely 200.
    after = [(await api.safe("GET", "/tasks/x")).status for _ in range(3)]
    assert 200 in after
    assert api.sim.stats.throttled_by_endpoint["query"] >= 3


async def test_a_cut_download_delivers_fewer_bytes_than_its_content_length(start: Start) -> None:
    api = await start(chaotic(only("cut_download", seed=3)))
    url = await api.succeeded_video_url()
    for _ in range(3):
        async with api.session.get(url) as response:
            assert response.status == 200
            promised = response.content_length
            received = await read_until_cut(response)
        assert promised is not None
        assert 0 < len(received) < promised
    assert api.sim.stats.faults_by_kind["cut_download"] == 3


async def test_scripted_faults_express_the_new_kinds(start: Start) -> None:
    api = await start(CALM)
    url = await api.succeeded_video_url()
    _, whole, length = await api.raw("GET", url)
    api.sim.faults.add(Fault("download", "cut", keep=0.5))
    async with api.session.get(url) as response:
        received = await read_until_cut(response)
    assert received == whole[: len(whole) // 2]
    api.sim.faults.add(Fault("submit", "truncate", keep=0.25))
    status, body, _ = await api.raw(
        "POST",
        api.server.base_url + SUBMIT,
        **{"X-DashScope-Async": "enable", "Content-Type": "application/json"},
    )
    assert status == 400  # no body: the real answer, a 400, is truncated all the same
    assert not body.endswith(b"}")
    api.sim.faults.add(Fault("query", "drop_field", field="output.task_status"))
    output = (await api.call("GET", "/tasks/x")).body["output"]
    assert output == {"task_id": "x"}
    assert api.sim.stats.faults_by_kind == {"cut_download": 1, "truncated": 1, "missing_field": 1}
    assert length == len(whole)


async def test_chaos_never_corrupts_the_tasks_whatever_was_answered(start: Start) -> None:
    chaos = Chaos.uniform(0.06, seed=21, slow_seconds=0.001, retry_after=0.001)
    api = await start(chaotic(chaos))
    await mixed_traffic(api, 40)
    submits = [r for r in api.sim.requests if r.endpoint == "submit"]
    processed = [r for r in submits if r.fault not in NOT_PROCESSED]  # late ones: later
    assert len(processed) < len(submits)  # some submits were turned away
    api.sim.set_chaos(None)
    async with asyncio.timeout(10):
        while api.sim.tasks_created < len(processed):  # noqa: ASYNC110 - late submits, pending
            await asyncio.sleep(0.01)
    assert api.sim.tasks_created == len(processed) == len(api.sim.task_states())
    async with asyncio.timeout(10):
        while set(api.sim.task_states().values()) != {"SUCCEEDED"}:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    played = api.sim.stats.faults_by_kind
    assert sum(played.values()) == sum(1 for r in api.sim.requests if r.fault is not None)


# -- requests kept, and the command line -------------------------------------------------------


async def test_the_request_log_is_bounded_but_the_counters_cover_everything(start: Start) -> None:
    api = await start(attrs.evolve(CALM, keep_requests=8))
    for n in range(20):
        await api.call("GET", f"/tasks/t{n}")
    kept = len(api.sim.requests)
    assert 6 <= kept <= 8
    assert [r.path for r in api.sim.requests] == [
        f"/api/v1/tasks/t{n}" for n in range(20 - kept, 20)
    ]
    assert api.sim.stats.requests_by_endpoint == {"query": 20}


def test_the_command_lines_kinds_are_the_simulators() -> None:
    assert CLI_CHAOS_KINDS == CHAOS_KINDS


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--chaos", "1.5"], "--chaos: expected a probability from 0 to 1, got '1.5'"),
        (["--chaos-kind", "gremlins=0.1"], "--chaos-kind: expected KIND=P with KIND one of"),
        (["--chaos-kind", "reset_after=2"], "expected a probability from 0 to 1, got '2'"),
        (["--late-after", "20"], "--late-after: expected LOW:HIGH provider seconds"),
        (["--late-after", "20:10"], "with 0 <= LOW <= HIGH, got '20:10'"),
        (["--clock-skew", "soon"], "--clock-skew: expected a number of seconds, got 'soon'"),
        (["--list-zone", "CST"], "--list-zone: invalid choice: 'CST'"),
        (["--list-order", "random"], "--list-order: invalid choice: 'random'"),
        (["--empty-page", "none"], "--empty-page: invalid choice: 'none'"),
    ],
)
def test_a_bad_simulator_option_is_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["simulator", *argv])
    assert done.value.code == 2
    assert message in capsys.readouterr().err


async def test_the_simulator_command_plays_chaos_and_counts_it_on_exit() -> None:
    argv = ["--port", "0", "--chaos", "0", "--chaos-kind", "server_error=1", "--chaos-seed", "4"]
    async with command("simulator", *argv) as proc:
        base_url = await read_line(proc.stdout)
        async with (
            aiohttp.ClientSession() as session,
            session.get(base_url + "/tasks", headers={"Authorization": f"Bearer {KEY}"}) as resp,
        ):
            assert resp.status in (500, 502, 503)
        status, err = await interrupt(proc)
    assert status == 0
    assert "chaos (seed 4): server_error 1" in err
    assert "faults played: server_error 1" in err

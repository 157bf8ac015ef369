"""The simulator's knobs: one per point the provider's documentation leaves open.

Every test talks to a real simulator over loopback HTTP with a plain
``aiohttp.ClientSession`` (no client code of ours) and checks both that the
knob changes what it should and that the default keeps the old behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

import emoji_async.testing
from emoji_async.cli import main
from emoji_async.cli._argtypes import EMPTY_PAGES as CLI_EMPTY_PAGES
from emoji_async.cli._argtypes import LIST_ORDERS as CLI_LIST_ORDERS
from emoji_async.cli._argtypes import LIST_ZONES as CLI_LIST_ZONES
from emoji_async.testing import (
    CHAOS_KINDS,
    HOSTILE_KINDS,
    Chaos,
    Fault,
    ServiceLimits,
    Simulator,
    SimulatorConfig,
    fixed_duration,
    serve,
)
from emoji_async.testing._chaos_source import ChaosSource
from emoji_async.testing._config import (
    EMPTY_PAGES,
    LIST_ORDERS,
    LIST_ZONES,
    ListOrder,
    ListZone,
)
from emoji_async.testing._faults import fault_label

from .conftest import KEY, SCALE, sim_config
from .simhttp import DETECT, SUBMIT, UNTHROTTLED, Answer, RawApi

IMAGE = "https://example.com/portraits/knobs.png"
BEIJING = dt.timezone(dt.timedelta(hours=8))
LIST_TIME = "%Y%m%d%H%M%S"
#: No rate limits, the single running slot kept; tasks last 60 provider seconds (0.6 s).
CALM = sim_config(limits=UNTHROTTLED)
#: Tasks that never end while a test runs: the first RUNNING, the others PENDING.
ENDLESS = attrs.evolve(CALM, durations=fixed_duration(100_000.0))
SERVER_ERRORS = {500, 502, 503}


class Api(RawApi):
    """The endpoints the knobs change, in plain HTTP; a dropped connection answers 0."""

    def submit_body(self, image_url: str = IMAGE) -> dict[str, Any]:
        face, ext = self.sim.boxes_for(image_url)
        inputs = {"image_url": image_url, "driven_id": "mengwa_kaixin", "face_bbox": face}
        return {"model": "emoji-v1", "input": {**inputs, "ext_bbox": ext}}

    async def submit(self, image_url: str = IMAGE) -> Answer:
        """One submit; status 0 when the connection was dropped; redirects not followed."""
        url = self.server.base_url + SUBMIT
        headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
        body = self.submit_body(image_url)
        try:
            async with self.session.post(
                url, json=body, headers=headers, allow_redirects=False
            ) as response:
                raw = await response.read()
                return Answer(response.status, raw, response.headers)
        except aiohttp.ClientConnectionError:
            return Answer(0, None, {})

    async def submitted(self, image_url: str = IMAGE) -> str:
        answer = await self.submit(image_url)
        assert answer.status == 200, answer.body
        task_id: str = json.loads(answer.body)["output"]["task_id"]
        return task_id

    async def listed(self, **params: str) -> dict[str, Any]:
        answer = await self.call("GET", "/tasks", params=params)
        assert answer.status == 200, answer.body
        body: dict[str, Any] = answer.body
        return body

    async def ids(self, **params: str) -> list[str]:
        return [row["task_id"] for row in (await self.listed(**params))["data"]]

    async def query(self, task_id: str) -> dict[str, Any]:
        answer = await self.call("GET", f"/tasks/{task_id}")
        assert answer.status == 200, answer.body
        output: dict[str, Any] = answer.body["output"]
        return output

    async def until_created(self, count: int, within: float = 10.0) -> None:
        """Wait until the simulator has created ``count`` tasks in all."""
        async with asyncio.timeout(within):
            while self.sim.tasks_created < count:  # noqa: ASYNC110 - no event to wait on
                await asyncio.sleep(0.005)


Start = Callable[[SimulatorConfig | Simulator], Awaitable[Api]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Starts simulators on loopback; all stopped, and the session closed, at teardown."""
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())

        async def factory(config: SimulatorConfig | Simulator) -> Api:
            return Api(await stack.enter_async_context(serve(config)), session)

        yield factory


def wall_of(text: str) -> float:
    """The POSIX time of a task query's ``YYYY-MM-DD HH:MM:SS.mmm`` (Beijing) string."""
    moment = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")
    return moment.replace(tzinfo=BEIJING).timestamp()


def only(kind: str, **settings: Any) -> Chaos:
    """Chaos where ``kind`` always happens and nothing else ever does."""
    return Chaos(**{kind: 1.0, **settings})


# -- the settings ------------------------------------------------------------------------------


def test_the_defaults_are_the_simulators_historical_readings() -> None:
    config = SimulatorConfig()
    assert (config.list_zone, config.clock_skew, config.list_order) == (
        "UTC+8",
        0.0,
        "newest_first",
    )
    assert (config.empty_page, config.pending_times) == ("data", True)
    chaos = Chaos()
    assert (chaos.late, chaos.odd_status_after, chaos.late_after) == (0.0, 0.0, (150.0, 250.0))


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        (
            "list_zone",
            "Asia/Shanghai",
            "list_zone must be one of 'UTC+8', 'UTC', got 'Asia/Shanghai'",
        ),
        ("list_order", "random", "list_order must be one of 'newest_first', 'oldest_first'"),
        ("empty_page", "none", "empty_page must be one of 'data', 'bare', got 'none'"),
        ("clock_skew", float("nan"), "clock_skew must be a finite number of seconds"),
        ("clock_skew", "30", "clock_skew must be a finite number of seconds, got '30'"),
    ],
)
def test_a_bad_knob_is_refused_naming_the_allowed_values(
    field: str, bad: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("+", r"\+").replace("(", r"\(")):
        SimulatorConfig(**{field: bad})


def test_pending_times_must_be_a_boolean() -> None:
    with pytest.raises(TypeError, match="pending_times must be True or False, got 0"):
        SimulatorConfig(pending_times=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [(5.0, 1.0), (-1.0, 2.0), (1.0,), "1:2", (1.0, float("inf"))])
def test_a_bad_late_range_is_refused_with_a_clear_error(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"Chaos\.late_after must be a pair \(low, high\)"):
        Chaos(late_after=bad)


def test_a_late_range_of_whole_numbers_becomes_floats() -> None:
    assert Chaos(late_after=[10, 20]).late_after == (10.0, 20.0)


def test_a_scripted_late_fault_is_checked_too() -> None:
    with pytest.raises(ValueError, match="after_processing=True is not possible"):
        Fault("submit", "late", after_processing=True)
    with pytest.raises(ValueError, match="a late fault plays on an API endpoint"):
        Fault("download", "late")
    with pytest.raises(ValueError, match="a late fault plays on an API endpoint"):
        Fault("*", "late")
    with pytest.raises(ValueError, match=r"error status \(400 to 599\) or drops the connection"):
        Fault("submit", "late", status=200)
    assert not Fault("submit", "late", status=0).after_processing


def test_uniform_sets_the_new_kinds_too_and_they_come_last() -> None:
    # Appended after the older kinds; only the hostile kinds came after them.
    before_hostile = CHAOS_KINDS[: -len(HOSTILE_KINDS)]
    assert before_hostile[-2:] == ("late", "odd_status_after")
    chaos = Chaos.uniform(0.1)
    assert (chaos.late, chaos.odd_status_after) == (0.1, 0.1)


def test_late_plays_on_submits_only_and_odd_statuses_on_the_api_only() -> None:
    chaos = Chaos.uniform(1.0)
    assert "late" in chaos.kinds_at("submit")
    for endpoint in ("detect", "query", "list", "cancel", "upload_policy"):
        assert "late" not in chaos.kinds_at(endpoint)
        assert "odd_status_after" in chaos.kinds_at(endpoint)
    assert "odd_status_after" in chaos.kinds_at("submit")
    for endpoint in ("upload", "download"):
        assert not {"late", "odd_status_after"} & set(chaos.kinds_at(endpoint))


def test_a_late_chaos_delay_is_drawn_in_provider_seconds_and_scaled() -> None:
    source = ChaosSource(only("late", late_after=(100.0, 100.0)), time_scale=0.01)
    fault = source.take("submit")
    assert fault is not None
    assert fault.kind == "late"
    assert fault.delay == pytest.approx(1.0)
    assert fault.status in SERVER_ERRORS | {0}
    delays = [ChaosSource(only("late"), time_scale=SCALE).take("submit") for _ in range(3)]
    assert all(f is not None and 1.5 <= f.delay <= 2.5 for f in delays)  # 150 to 250 scaled


def test_the_new_faults_are_counted_under_their_chaos_names() -> None:
    assert fault_label(Fault("submit", "late", delay=1.0), "submit") == "late"
    for status in (302, 307, 408, 404):
        after = Fault("submit", "status", status=status, after_processing=True)
        assert fault_label(after, "submit") == "odd_status_after"
        assert fault_label(Fault("submit", "status", status=status), "submit") == "status"
    assert fault_label(Fault("submit", "status", status=502, after_processing=True), "x") == (
        "server_error_after"
    )


# -- late processing ---------------------------------------------------------------------------


async def test_a_late_submit_is_answered_as_failed_at_once_and_its_task_appears_after_the_delay(
    start: Start,
) -> None:
    # 300 provider seconds at time scale 0.001: 0.3 real seconds.
    config = attrs.evolve(
        ENDLESS,
        time_scale=0.001,
        chaos=only("late", late_after=(300.0, 300.0), endpoints={"submit"}),
    )
    api = await start(config)
    sent_ms = time.time() * 1000
    answer = await api.submit()
    answered_ms = time.time() * 1000
    assert answer.status in SERVER_ERRORS | {0}
    assert answered_ms - sent_ms < 250  # at once, not after the delay
    if answer.status:
        error = json.loads(answer.body)
        assert error["code"]
        assert error["message"]
        assert error["request_id"]
    assert api.sim.tasks_created == 0
    assert (await api.listed())["total"] == 0  # chaos plays on submits only
    await api.until_created(1)
    (row,) = (await api.listed())["data"]
    assert row["gmt_create"] >= sent_ms + 300 - 20  # created at processing time
    record = api.sim.task(row["task_id"])
    assert record is not None
    output = await api.query(row["task_id"])
    assert abs(wall_of(output["submit_time"]) * 1000 - row["gmt_create"]) <= 1
    assert api.sim.stats.faults_by_kind == {"late": 1}
    assert [(r.endpoint, r.fault) for r in api.sim.requests if r.endpoint == "submit"] == [
        ("submit", "late")
    ]


async def test_late_submits_are_answered_with_server_errors_or_dropped_connections(
    start: Start,
) -> None:
    config = attrs.evolve(
        ENDLESS,
        time_scale=0.001,
        chaos=only("late", seed=3, late_after=(10.0, 50.0), endpoints={"submit"}),
    )
    api = await start(config)
    answers = [await api.submit(f"{IMAGE}?n={n}") for n in range(12)]
    statuses = {answer.status for answer in answers}
    assert 0 in statuses  # some dropped
    assert statuses - {0}  # some answered
    assert statuses <= SERVER_ERRORS | {0}
    await api.until_created(12)
    assert len(api.sim.task_states()) == 12
    assert {r.status for r in api.sim.requests if r.endpoint == "submit"} == statuses


async def test_two_late_submits_with_different_delays_are_created_out_of_order(
    start: Start,
) -> None:
    api = await start(ENDLESS)
    api.sim.faults.add(Fault("submit", "late", delay=0.4, status=503, code="ServiceUnavailable"))
    api.sim.faults.add(Fault("submit", "late", delay=0.1, status=0))
    first, second = f"{IMAGE}?n=first", f"{IMAGE}?n=second"
    answer = await api.submit(first)
    assert answer.status == 503
    assert json.loads(answer.body)["code"] == "ServiceUnavailable"
    assert (await api.submit(second)).status == 0  # status 0: the connection dropped
    await api.until_created(2)
    rows = (await api.listed())["data"]
    by_image = {task.task_id: task.image_url for task in api.sim.tasks()}
    # Newest first: the first submit's task was created last.
    assert [by_image[row["task_id"]] for row in rows] == [first, second]
    assert rows[0]["gmt_create"] - rows[1]["gmt_create"] >= 200
    assert api.sim.stats.faults_by_kind == {"late": 2}


async def test_a_late_submit_takes_its_rate_slot_on_arrival(start: Start) -> None:
    # Time scale 1: one submit a real second. The late delay is real seconds, unscaled.
    api = await start(attrs.evolve(ENDLESS, time_scale=1.0, limits=ServiceLimits()))
    api.sim.faults.add(Fault("submit", "late", delay=0.05))
    assert (await api.submit(f"{IMAGE}?n=late")).status == 500
    throttled = await api.submit(f"{IMAGE}?n=next")
    assert throttled.status == 429  # the late one took this second's slot
    await api.until_created(1)
    (task,) = api.sim.tasks()
    assert task.image_url == f"{IMAGE}?n=late"  # processed later without a second admission


async def test_a_late_submit_refused_for_its_rate_is_answered_429_and_never_processed(
    start: Start,
) -> None:
    api = await start(attrs.evolve(ENDLESS, time_scale=1.0, limits=ServiceLimits()))
    await api.submitted(f"{IMAGE}?n=first")
    api.sim.faults.add(Fault("submit", "late", delay=0.01))
    assert (await api.submit(f"{IMAGE}?n=late")).status == 429
    await asyncio.sleep(0.1)
    assert api.sim.tasks_created == 1
    assert api.sim.stats.faults_by_kind == {}  # refused before the fault could play


async def test_a_late_submit_that_fails_validation_creates_nothing_later(start: Start) -> None:
    api = await start(ENDLESS)
    api.sim.faults.add(Fault("submit", "late", delay=0.05))
    assert (await api.submit(f"{IMAGE}?sim_moderation=1")).status == 500
    await asyncio.sleep(0.2)
    assert api.sim.tasks_created == 0


async def test_a_pending_late_request_is_cancelled_quietly_when_the_server_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = Simulator(ENDLESS)
    sim.faults.add(Fault("submit", "late", delay=30.0))
    async with aiohttp.ClientSession() as session, serve(sim) as server:
        api = Api(server, session)
        assert (await api.submit()).status == 500
    gc.collect()
    assert sim.tasks_created == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_late_submit_still_fetching_its_image_is_cancelled_quietly_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asked, release = asyncio.Event(), asyncio.Event()

    async def never_answers(request: web.Request) -> web.Response:
        asked.set()
        await release.wait()  # past the simulator's life: its fetch is cancelled first
        return web.Response(status=404)

    image_host = web.Application()
    image_host.router.add_get("/portrait.png", never_answers)
    runner = web.AppRunner(image_host, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sim = Simulator(ENDLESS)
    sim.faults.add(Fault("submit", "late", delay=0.0, status=0))
    image = f"http://127.0.0.1:{port}/portrait.png"
    body = {
        "model": "emoji-v1",
        "input": {
            "image_url": image,
            "driven_id": "mengwa_kaixin",
            "face_bbox": [1, 2, 3, 4],
            "ext_bbox": [1, 2, 3, 4],
        },
    }
    try:
        async with aiohttp.ClientSession() as session, serve(sim) as server:
            headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
            with pytest.raises(aiohttp.ClientConnectionError):
                async with session.post(server.base_url + SUBMIT, json=body, headers=headers):
                    pass
            async with asyncio.timeout(10):
                await asked.wait()  # the late submit is processing: its image is on the way
    finally:
        release.set()
        await runner.cleanup()
    gc.collect()
    assert sim.tasks_created == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_submit_whose_body_is_still_arriving_at_shutdown_is_never_processed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = Simulator(ENDLESS)
    sim.faults.add(Fault("submit", "late", delay=0.05))
    finish = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        serving = serve(sim)
        server = await serving.__aenter__()
        whole = json.dumps(Api(server, session).submit_body()).encode()

        async def body() -> AsyncIterator[bytes]:
            yield whole[:10]
            await finish.wait()
            yield whole[10:]

        headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
        url = server.base_url + SUBMIT

        async def post() -> int:
            try:
                async with session.post(url, data=body(), headers=headers) as response:
                    return response.status
            except aiohttp.ClientConnectionError:
                return 0

        posting = asyncio.create_task(post())
        async with asyncio.timeout(10):
            while not sim.requests:  # noqa: ASYNC110 - the request has arrived, its body not
                await asyncio.sleep(0.005)
        stopping = asyncio.create_task(serving.__aexit__(None, None, None))
        async with asyncio.timeout(10):
            while not sim._lifetime.closing:  # noqa: ASYNC110 - the shutdown has begun
                await asyncio.sleep(0.005)
        finish.set()
        # Dropped by the closing server, or answered as a late request: never processed.
        assert await posting in (0, 500)
        await stopping
    await asyncio.sleep(0.1)  # past the delay: had it been scheduled, it would have run
    gc.collect()
    assert sim.tasks_created == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- answers the protocol does not list ----------------------------------------------------------


async def test_an_odd_status_after_a_submit_has_created_its_task(start: Start) -> None:
    config = attrs.evolve(ENDLESS, chaos=only("odd_status_after", seed=2, endpoints={"submit"}))
    api = await start(config)
    answers = [await api.submit(f"{IMAGE}?n={n}") for n in range(12)]
    assert {answer.status for answer in answers} == {302, 307, 408}
    for answer in answers:
        assert answer.body
        assert len(answer.body) < 100
        with pytest.raises(json.JSONDecodeError):
            json.loads(answer.body)
        if answer.status in (302, 307):
            assert answer.headers["Location"] == f"/api/v1{SUBMIT}"  # the same path
        else:
            assert "Location" not in answer.headers
    assert api.sim.tasks_created == 12
    assert len(api.sim.task_states()) == 12
    assert api.sim.stats.faults_by_kind == {"odd_status_after": 12}


async def test_an_odd_status_after_a_query_answers_it_after_processing(start: Start) -> None:
    api = await start(attrs.evolve(ENDLESS, chaos=only("odd_status_after", endpoints={"query"})))
    async with api.session.get(
        api.server.base_url + "/tasks/some-task?x=1",
        headers={"Authorization": f"Bearer {KEY}"},
        allow_redirects=False,
    ) as response:
        assert response.status in (302, 307, 408)
        assert response.content_type == "text/plain"
        if response.status != 408:
            assert response.headers["Location"] == "/api/v1/tasks/some-task?x=1"
    assert [r.fault for r in api.sim.requests] == ["odd_status_after"]


async def test_a_scripted_redirect_carries_a_location_before_or_after_processing(
    start: Start,
) -> None:
    api = await start(ENDLESS)
    api.sim.faults.add(Fault("submit", "status", status=302, after_processing=True))
    after = await api.submit(f"{IMAGE}?n=after")
    assert (after.status, after.headers["Location"]) == (302, f"/api/v1{SUBMIT}")
    assert api.sim.tasks_created == 1
    api.sim.faults.add(Fault("submit", "status", status=307))
    before = await api.submit(f"{IMAGE}?n=before")
    assert (before.status, before.headers["Location"]) == (307, f"/api/v1{SUBMIT}")
    assert api.sim.tasks_created == 1  # before processing: nothing created
    assert api.sim.stats.faults_by_kind == {"odd_status_after": 1, "status": 1}


async def test_a_scripted_error_status_keeps_the_providers_json_body(start: Start) -> None:
    api = await start(ENDLESS)
    api.sim.faults.add(Fault("query", "status", status=404, code="NotFound"))
    answer = await api.call("GET", "/tasks/x")
    assert (answer.status, answer.body["code"]) == (404, "NotFound")
    assert "Location" not in answer.headers


async def test_a_dropped_field_path_may_pick_a_task_list_row_by_its_number(start: Start) -> None:
    api = await start(ENDLESS)
    assert (await api.submit()).status == 200
    api.sim.faults.add(Fault("list", "drop_field", field="data.0.status"))
    api.sim.faults.add(Fault("list", "drop_field", field="data.1.status"))  # no second row
    [row] = (await api.call("GET", "/tasks")).body["data"]
    assert "status" not in row
    assert row["task_id"]
    [whole] = (await api.call("GET", "/tasks")).body["data"]
    assert whole["status"] in ("PENDING", "RUNNING")
    assert api.sim.stats.faults_by_kind == {"missing_field": 1}


# -- the task list's time zone -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "finds_beijing", "finds_utc"),
    [("UTC+8", True, False), ("UTC", False, True)],
)
async def test_the_list_zone_decides_how_the_start_time_string_is_read(
    start: Start, zone: ListZone, finds_beijing: bool, finds_utc: bool
) -> None:
    api = await start(attrs.evolve(ENDLESS, list_zone=zone))
    task_id = await api.submitted()
    now = dt.datetime.now(dt.UTC)
    since, until = now - dt.timedelta(minutes=1), now + dt.timedelta(minutes=1)

    async def found(tz: dt.timezone) -> bool:
        """Whether a two-minute window around now, written in ``tz``'s digits, finds the task."""
        start_time, end_time = (
            f"{since.astimezone(tz):{LIST_TIME}}",
            f"{until.astimezone(tz):{LIST_TIME}}",
        )
        return await api.ids(start_time=start_time, end_time=end_time) == [task_id]

    assert await found(BEIJING) is finds_beijing
    assert await found(dt.UTC) is finds_utc


async def test_in_utc_a_start_time_string_means_eight_hours_later_than_in_beijing_time(
    start: Start,
) -> None:
    beijing = await start(ENDLESS)
    utc = await start(attrs.evolve(ENDLESS, list_zone="UTC"))
    for api in (beijing, utc):
        await api.submitted()
    # A Beijing reading of "now minus 7 hours" starts 7 h ago: the task is inside.
    # The same string read as UTC starts 1 h from now: it is not.
    text = f"{dt.datetime.now(BEIJING) - dt.timedelta(hours=7):{LIST_TIME}}"
    assert (await beijing.listed(start_time=text))["total"] == 1
    assert (await utc.listed(start_time=text))["total"] == 0
    # And "now minus 9 hours" in Beijing digits is, read as UTC, one hour ago.
    text = f"{dt.datetime.now(BEIJING) - dt.timedelta(hours=9):{LIST_TIME}}"
    assert (await utc.listed(start_time=text))["total"] == 1


# -- the service's clock -------------------------------------------------------------------------


async def test_a_clock_skew_shifts_every_time_the_service_shows(start: Start) -> None:
    api = await start(attrs.evolve(ENDLESS, clock_skew=-30.0))
    running = await api.submitted(f"{IMAGE}?n=running")
    real = time.time()
    (listed,) = (await api.listed())["data"]
    assert listed["task_id"] == running
    assert abs(listed["gmt_create"] / 1000 - (real - 30)) < 2
    assert abs(listed["start_time"] / 1000 - (real - 30)) < 2
    output = await api.query(running)
    assert abs(wall_of(output["submit_time"]) - (real - 30)) < 2
    assert abs(wall_of(output["scheduled_time"]) - (real - 30)) < 2
    answer = await api.call("GET", f"/tasks/{running}")
    date = email.utils.parsedate_to_datetime(answer.headers["Date"]).timestamp()
    assert abs(date - (time.time() - 30)) < 2
    # The model's own instants are monotonic readings, unshifted.
    task = api.sim.task(running)
    assert task is not None
    assert abs(task.submitted_at - time.monotonic()) < 5
    assert abs(api.sim.requests[0].at - time.monotonic()) < 5


async def test_a_clock_skew_shifts_a_finished_tasks_end_time_too(start: Start) -> None:
    api = await start(attrs.evolve(CALM, time_scale=0.001, clock_skew=-30.0))
    task_id = await api.submitted()
    async with asyncio.timeout(10):
        while (output := await api.query(task_id))["task_status"] != "SUCCEEDED":  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert abs(wall_of(output["end_time"]) - (time.time() - 30)) < 2
    (row,) = (await api.listed())["data"]
    assert abs(row["end_time"] / 1000 - (time.time() - 30)) < 2


async def test_without_skew_the_service_shows_the_real_time(start: Start) -> None:
    api = await start(ENDLESS)
    task_id = await api.submitted()
    output = await api.query(task_id)
    assert abs(wall_of(output["submit_time"]) - time.time()) < 2
    answer = await api.call("GET", "/tasks")
    assert abs(answer.body["data"][0]["gmt_create"] / 1000 - time.time()) < 2
    date = email.utils.parsedate_to_datetime(answer.headers["Date"]).timestamp()
    assert abs(date - time.time()) < 2


async def test_the_list_filters_read_times_on_the_skewed_clock(start: Start) -> None:
    behind = await start(attrs.evolve(ENDLESS, clock_skew=-120.0))
    on_time = await start(ENDLESS)
    for api in (behind, on_time):
        await api.submitted()
    # A window from one minute ago (real time) to now: the task behind by two
    # minutes was created, on the service's clock, before it.
    text = f"{dt.datetime.now(BEIJING) - dt.timedelta(minutes=1):{LIST_TIME}}"
    assert (await on_time.listed(start_time=text))["total"] == 1
    assert (await behind.listed(start_time=text))["total"] == 0
    # The default window, the last 24 h of the service's clock, finds both.
    assert (await behind.listed())["total"] == 1


async def test_a_clock_ahead_still_lists_its_tasks_in_the_default_window(start: Start) -> None:
    api = await start(attrs.evolve(ENDLESS, clock_skew=3 * 3600.0))
    task_id = await api.submitted()
    assert await api.ids() == [task_id]
    text = f"{dt.datetime.now(BEIJING) + dt.timedelta(hours=2):{LIST_TIME}}"
    assert await api.ids(start_time=text) == [task_id]  # three hours ahead: after the start


# -- the list's order and its empty pages --------------------------------------------------------


@pytest.mark.parametrize(("order", "reverse"), [("newest_first", True), ("oldest_first", False)])
async def test_the_list_order_decides_the_order_of_the_rows_and_pages(
    start: Start, order: ListOrder, reverse: bool
) -> None:
    api = await start(attrs.evolve(ENDLESS, list_order=order))
    submitted = [await api.submitted(f"{IMAGE}?n={n}") for n in range(3)]
    expected = submitted[::-1] if reverse else submitted
    assert await api.ids() == expected
    assert await api.ids(page_size="2") == expected[:2]
    assert await api.ids(page_size="2", page_no="2") == expected[2:]


async def test_by_default_an_empty_page_carries_an_empty_data_array(start: Start) -> None:
    api = await start(ENDLESS)
    body = await api.listed()
    assert body["data"] == []
    assert (body["total"], body["total_page"]) == (0, 0)


async def test_a_bare_empty_page_carries_neither_data_nor_total_page(start: Start) -> None:
    api = await start(attrs.evolve(ENDLESS, empty_page="bare"))
    body = await api.listed()
    assert set(body) == {"total", "page_no", "page_size", "request_id"}
    assert (body["total"], body["page_no"], body["page_size"]) == (0, 1, 10)
    task_id = await api.submitted()
    full = await api.listed()
    assert ([row["task_id"] for row in full["data"]], full["total_page"]) == ([task_id], 1)
    past_the_end = await api.listed(page_no="2")
    assert set(past_the_end) == {"total", "page_no", "page_size", "request_id"}
    assert past_the_end["total"] == 1


# -- times of unfinished tasks -------------------------------------------------------------------


async def test_by_default_unfinished_tasks_show_their_times(start: Start) -> None:
    api = await start(ENDLESS)
    running = await api.query(await api.submitted(f"{IMAGE}?n=1"))
    pending = await api.query(await api.submitted(f"{IMAGE}?n=2"))
    assert running["task_status"] == "RUNNING"
    assert {"submit_time", "scheduled_time"} <= set(running)
    assert pending["task_status"] == "PENDING"
    assert "submit_time" in pending


async def test_without_pending_times_unfinished_tasks_show_no_times_but_finished_ones_do(
    start: Start,
) -> None:
    api = await start(attrs.evolve(CALM, time_scale=0.001, pending_times=False))
    finished = await api.submitted(f"{IMAGE}?n=1&sim_duration=1")
    async with asyncio.timeout(10):
        while (output := await api.query(finished))["task_status"] != "SUCCEEDED":  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    assert {"submit_time", "scheduled_time", "end_time", "video_url"} <= set(output)
    endless = await api.submitted(f"{IMAGE}?n=2&sim_duration=100000")
    queued = await api.submitted(f"{IMAGE}?n=3")
    running, pending = await api.query(endless), await api.query(queued)
    assert running == {"task_id": endless, "task_status": "RUNNING"}
    assert pending == {"task_id": queued, "task_status": "PENDING"}
    assert (await api.call("POST", f"/tasks/{queued}/cancel")).status == 200
    canceled = await api.query(queued)
    assert canceled["task_status"] == "CANCELED"
    assert {"submit_time", "end_time"} <= set(canceled)
    # The list, whose shape the provider does show, keeps its epoch times.
    row = next(r for r in (await api.listed())["data"] if r["task_id"] == endless)
    assert {"gmt_create", "start_time"} <= set(row)


# -- each task's inputs ----------------------------------------------------------------------


async def test_each_task_records_the_inputs_it_was_made_from(start: Start) -> None:
    api = await start(ENDLESS)
    images = [f"{IMAGE}?n={n}" for n in range(3)]
    ids = {await api.submitted(image): image for image in images}
    api.sim.faults.add(Fault("submit", "late", delay=0.01))
    late_image = f"{IMAGE}?n=late"
    await api.submit(late_image)
    await api.until_created(4)
    tasks = {task.task_id: task for task in api.sim.tasks()}
    assert len(tasks) == 4
    for task in tasks.values():
        face, ext = api.sim.boxes_for(task.image_url)
        assert (task.face_bbox, task.ext_bbox) == (tuple(face), tuple(ext))
        assert all(isinstance(v, int) for v in (*task.face_bbox, *task.ext_bbox))
        assert task.driven_id == "mengwa_kaixin"
    for task_id, image in ids.items():
        assert tasks[task_id].image_url == image
    assert {task.image_url for task in tasks.values()} == {*images, late_image}
    assert len({task.ext_bbox for task in tasks.values()}) == 4  # one box per image


async def test_a_detection_and_the_submit_agree_with_the_recorded_boxes(start: Start) -> None:
    api = await start(ENDLESS)
    detection = await api.call(
        "POST",
        DETECT,
        json={
            "model": "emoji-detect-v1",
            "input": {"image_url": IMAGE},
            "parameters": {"ratio": "1:1"},
        },
    )
    boxes = detection.body["output"]
    task_id = await api.submitted()
    task = api.sim.task(task_id)
    assert task is not None
    assert list(task.face_bbox) == boxes["bbox_face"]
    assert list(task.ext_bbox) == boxes["ext_bbox_face"]


# -- the command line ----------------------------------------------------------------------------


def test_the_command_lines_choices_are_the_simulators() -> None:
    assert (CLI_LIST_ZONES, CLI_LIST_ORDERS, CLI_EMPTY_PAGES) == (
        LIST_ZONES,
        LIST_ORDERS,
        EMPTY_PAGES,
    )


def run_simulator_command(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """``emoji-async simulator ARGV`` without serving: the simulator it would serve."""
    served: list[Simulator] = []

    async def serve_once(simulator: Any, host: str, port: int) -> None:
        served.append(simulator)

    monkeypatch.setattr(emoji_async.testing, "run_forever", serve_once)
    assert main(["simulator", *argv]) == 0
    (simulator,) = served
    return simulator


def test_the_simulator_command_passes_the_open_points_to_its_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = ["--list-zone", "UTC", "--clock-skew", "-30", "--list-order", "oldest_first"]
    argv += ["--empty-page", "bare", "--no-pending-times"]
    config = run_simulator_command(argv, monkeypatch).config
    assert (config.list_zone, config.clock_skew, config.list_order) == (
        "UTC",
        -30.0,
        "oldest_first",
    )
    assert (config.empty_page, config.pending_times) == ("bare", False)
    default = run_simulator_command([], monkeypatch).config
    assert (default.list_zone, default.clock_skew, default.list_order) == (
        "UTC+8",
        0.0,
        "newest_first",
    )
    assert (default.empty_page, default.pending_times, default.chaos) == ("data", True, None)


def test_the_simulator_command_sets_the_late_range_and_the_new_kinds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--chaos-kind", "late=0.5", "--chaos-kind", "odd_status_after=0.25"]
    chaos = run_simulator_command([*argv, "--late-after", "10:20.5"], monkeypatch).config.chaos
    assert chaos is not None
    assert (chaos.late, chaos.odd_status_after, chaos.late_after) == (0.5, 0.25, (10.0, 20.5))
    assert "late 0.5, odd_status_after 0.25" in capsys.readouterr().err


def test_the_simulator_help_documents_the_new_kinds_and_flags(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["simulator", "--help"])
    text = capsys.readouterr().out
    for word in ("late ", "odd_status_after", "--late-after", "--list-zone", "--clock-skew"):
        assert word in text
    for word in ("--list-order", "--empty-page", "--no-pending-times"):
        assert word in text

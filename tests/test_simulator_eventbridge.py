"""The simulated EventBridge: each task's end, delivered signed to every target, as configured.

Every test runs a real simulator and a small aiohttp receiver on loopback, and
talks to the simulator with plain HTTP (no client code of ours). The event is
read with the client's lenient parser and the signature checked with
``cryptography`` directly, against the certificate the simulator serves.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from emoji_async import TaskStatus
from emoji_async._notice import EVENT_SOURCE, EVENT_TYPE, parse_event, read_time
from emoji_async._notice_signing import (
    CERT_URL,
    SIGN_FORMS,
    SIGNATURE,
    TIMESTAMP,
    TOKEN,
    SignForm,
    string_to_sign,
)
from emoji_async.cli._local import simulator_config
from emoji_async.cli._parser import build_parser
from emoji_async.testing import (
    Fault,
    SimulatorConfig,
    SimulatorServer,
    fixed_duration,
    serve,
)
from emoji_async.testing._eventbridge import retry_waits
from emoji_async.testing._eventbridge_events import TIME_FORMS, stamp

from .commands import command, interrupt, read_line
from .conftest import SCALE, serve_in_thread, sim_config
from .simhttp import DETECT, KEY, SUBMIT, UNTHROTTLED

IMAGE = "https://example.com/portraits/eventbridge.png"
#: Tasks of 5 provider seconds (50 ms here), events 1 to 3 s late (10 to 30 ms).
FAST = {"durations": fixed_duration(5), "notify_latency": (1, 3), "limits": UNTHROTTLED}
BEIJING_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


@attrs.frozen
class Got:
    """One POST the receiver was sent."""

    headers: Mapping[str, str]
    body: bytes
    at: float


class Receiver:
    """An HTTP target that keeps what it is sent and answers ``statuses`` in turn (then 200)."""

    def __init__(self, *statuses: int, delay: float = 0.0) -> None:
        self.got: list[Got] = []
        self.statuses = list(statuses)
        self.delay = delay
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.got.append(Got(headers, body, time.monotonic()))
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Got]:
        await until(lambda: len(self.got) >= count, timeout)
        return self.got


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110  (the simulator and the receiver set no event)
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def receiving(*receivers: Receiver) -> AsyncIterator[None]:
    """Each receiver listening on its own loopback port, at ``/events``."""
    async with contextlib.AsyncExitStack() as stack:
        for receiver in receivers:
            app = web.Application()
            app.router.add_post("/events", receiver.handle)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            receiver.url = f"http://127.0.0.1:{port}/events"
        yield


async def submit(base_url: str, image: str = IMAGE) -> str:
    """Detect ``image`` and submit it with its boxes (to the API at ``base_url``); the task's id."""
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(base_url=base_url + "/") as session:
        detect = {
            "model": "emoji-detect-v1",
            "input": {"image_url": image},
            "parameters": {"ratio": "1:1"},
        }
        async with session.post(DETECT.lstrip("/"), json=detect, headers=headers) as resp:
            boxes = (await resp.json())["output"]
        body = {
            "model": "emoji-v1",
            "input": {
                "image_url": image,
                "driven_id": "mengwa_kaixin",
                "face_bbox": boxes["bbox_face"],
                "ext_bbox": boxes["ext_bbox_face"],
            },
        }
        async with session.post(
            SUBMIT.lstrip("/"), json=body, headers={**headers, "X-DashScope-Async": "enable"}
        ) as resp:
            task_id: str = (await resp.json())["output"]["task_id"]
    return task_id


async def certificate(url: str) -> x509.Certificate:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        return x509.load_pem_x509_certificate(await resp.read())


def verifies(cert: x509.Certificate, form: SignForm, url: str, got: Got) -> bool:
    """Whether ``got``'s signature V2 is the certificate's key's, over ``form``'s string."""
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    signed = string_to_sign(form, url, got.headers, got.body)
    try:
        key.verify(
            base64.b64decode(got.headers[SIGNATURE]), signed, padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return False
    return True


def config(targets: tuple[str, ...], **overrides: Any) -> SimulatorConfig:
    return sim_config(**{**FAST, "notify_targets": targets, **overrides})


async def settle(server: SimulatorServer, seconds: float = 0.15) -> None:
    """Wait long enough for anything more to arrive (several times the latency here)."""
    await asyncio.sleep(seconds)


# -- one event per target, as documented ----------------------------------------------------------


async def test_a_task_end_sends_each_target_one_signed_event_with_the_documented_fields() -> None:
    first, second = Receiver(), Receiver()
    async with receiving(first, second):
        targets = (first.url, second.url)
        async with serve(config(targets)) as server:
            task_id = await submit(
                server.base_url
            )  # and nobody polls: the end is found all the same
            for receiver in (first, second):
                await receiver.wait_for(1)
            await settle(server)
            task = server.simulator.task(task_id)
            stats = server.simulator.stats.snapshot()
            records = list(server.simulator.deliveries)
            cert = await certificate(server.certificate_url)
            assert first.got[0].headers[CERT_URL] == server.certificate_url
    assert task is not None
    assert task.status == "SUCCEEDED"
    assert [len(first.got), len(second.got)] == [1, 1]
    for receiver in (first, second):
        got = receiver.got[0]
        assert verifies(cert, SIGN_FORMS[0], receiver.url, got)
        assert abs(int(got.headers[TIMESTAMP]) - time.time()) < 5
        assert TOKEN not in got.headers
        assert got.headers["content-type"].startswith("application/json")
        event = parse_event(got.body)
        assert (event.source, event.task_id, event.status) == (
            EVENT_SOURCE,
            task_id,
            TaskStatus.SUCCEEDED,
        )
        assert (event.request_id, event.region) == (task.request_id, "cn-beijing")
        document = json.loads(got.body)
        assert document["type"] == EVENT_TYPE
        assert document["specversion"] == "1.0"
        assert document["datacontenttype"] == "application/json;charset=utf-8"
        assert document["aliyuneventbusname"] == "default"
        assert document["aliyunregionid"] == "cn-beijing"
        assert document["aliyunaccountid"] == document["aliyunoriginalaccountid"]
        data = document["data"]
        assert data["contain_result"] is False
        assert data["api_key_id"] == task.api_key_id
        assert BEIJING_SECONDS.match(data["start_time"])
        assert BEIJING_SECONDS.match(data["end_time"])
        assert event.end_time is not None
        assert abs(event.end_time.timestamp() - time.time()) < 10
    # One event, its own id, sent once to each target.
    assert parse_event(first.got[0].body).event_id == parse_event(second.got[0].body).event_id
    assert (stats.events_published, stats.deliveries, stats.delivered) == (1, 2, 2)
    assert (stats.dropped, stats.duplicated, stats.dead_lettered) == (0, 0, 0)
    assert sorted(record.target for record in records) == sorted(targets)
    assert {
        (r.task_id, r.task_status, r.copy, r.attempt, r.outcome, r.status) for r in records
    } == {(task_id, "SUCCEEDED", 0, 1, "delivered", 200)}


async def test_failed_and_canceled_tasks_are_notified_with_their_state() -> None:
    receiver = Receiver()
    async with receiving(receiver):
        # One running slot: the second task waits PENDING, and is canceled there.
        overrides = {"durations": fixed_duration(20)}
        async with serve(config((receiver.url,), **overrides)) as server:
            failing = await submit(server.base_url, IMAGE + "?sim_fail=InternalError.Algo")
            waiting = await submit(server.base_url, IMAGE + "?other=1")
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"{server.base_url}/tasks/{waiting}/cancel",
                    headers={"Authorization": f"Bearer {KEY}"},
                ) as resp,
            ):
                assert resp.status == 200
            await receiver.wait_for(2)
            await settle(server)
    states = {(e.task_id, e.status) for e in (parse_event(got.body) for got in receiver.got)}
    assert states == {(failing, TaskStatus.FAILED), (waiting, TaskStatus.CANCELED)}


async def test_with_notifications_on_a_queued_task_starts_exactly_when_its_predecessor_ends() -> (
    None
):
    receiver = Receiver()
    async with receiving(receiver), serve(config((receiver.url,))) as server:
        first = await submit(server.base_url)
        second = await submit(server.base_url, IMAGE + "?second=1")
        await receiver.wait_for(2)
        before, after = server.simulator.task(first), server.simulator.task(second)
    assert before is not None
    assert after is not None
    assert after.scheduled_at == before.ended_at
    data = {
        document["data"]["task_id"]: document["data"]
        for document in map(json.loads, (g.body for g in receiver.got))
    }
    assert data[second]["start_time"] == data[first]["end_time"]


async def test_a_simulator_served_in_a_thread_publishes_ends_found_from_another_thread() -> None:
    receiver = Receiver()
    async with receiving(receiver):
        with serve_in_thread(config((receiver.url,), notify_latency=(0, 0))) as server:
            await submit(server.base_url)
            # Read from this thread, the board may find the end before the watcher does.
            await until(lambda: server.simulator.stats.events_published == 1)
            await receiver.wait_for(1)
    assert len(receiver.got) == 1


@pytest.mark.parametrize("form", SIGN_FORMS, ids=str)
async def test_the_signature_covers_the_configured_string_to_sign(form: SignForm) -> None:
    receiver = Receiver()
    async with receiving(receiver):
        settings = {"notify_sign_form": form, "notify_token": "s3cret-token"}
        async with serve(config((receiver.url,), **settings)) as server:
            await submit(server.base_url)
            await receiver.wait_for(1)
            cert = await certificate(server.certificate_url)
    got = receiver.got[0]
    assert got.headers[TOKEN] == "s3cret-token"
    assert verifies(cert, form, receiver.url, got)
    # Every other reading signs other bytes (the token is sent, so all eight differ).
    assert [other for other in SIGN_FORMS if verifies(cert, other, receiver.url, got)] == [form]


# -- latency, duplicates, losses ------------------------------------------------------------------


async def test_each_copy_arrives_within_the_configured_latency_of_its_task_end() -> None:
    receiver = Receiver()
    async with receiving(receiver):
        settings = {"notify_latency": (20, 30), "notify_duplicates": 0.5, "notify_seed": 3}
        async with serve(config((receiver.url,), **settings)) as server:
            task_ids = [await submit(server.base_url, f"{IMAGE}?n={n}") for n in range(3)]
            await asyncio.sleep(0.1)
            sim = server.simulator
            await until(lambda: all(task.ended_at for task in sim.tasks()))
            ends = {task.task_id: task.ended_at or 0.0 for task in sim.tasks()}
            assert set(ends) == set(task_ids)
            await asyncio.sleep(0.4)
            stats = server.simulator.stats.snapshot()
    assert len(receiver.got) == 3 + stats.duplicated
    for got in receiver.got:
        late = got.at - ends[parse_event(got.body).task_id]
        # 20 to 30 provider seconds at 0.01; the upper bound allows a loaded machine.
        assert 20 * SCALE - 0.002 <= late <= 30 * SCALE + 0.1


async def test_a_duplicate_delivery_carries_the_same_event_id() -> None:
    receiver = Receiver()
    async with receiving(receiver), serve(config((receiver.url,), notify_duplicates=1.0)) as server:
        task_id = await submit(server.base_url)
        await receiver.wait_for(4)
        await settle(server)
        stats = server.simulator.stats.snapshot()
        records = list(server.simulator.deliveries)
    events = [parse_event(got.body) for got in receiver.got]
    # Always duplicated: the first copy and three more, the most there may be.
    assert len(events) == 4
    assert {event.event_id for event in events} == {events[0].event_id}
    assert {event.task_id for event in events} == {task_id}
    assert (stats.events_published, stats.duplicated, stats.delivered) == (1, 3, 4)
    assert sorted(record.copy for record in records) == [0, 1, 2, 3]


async def test_a_dropped_event_is_never_delivered_and_is_recorded_as_lost() -> None:
    receiver = Receiver()
    async with receiving(receiver), serve(config((receiver.url,), notify_drop=1.0)) as server:
        task_id = await submit(server.base_url)
        await until(lambda: server.simulator.stats.events_published >= 1)
        await settle(server, 0.3)
        stats = server.simulator.stats.snapshot()
        records = list(server.simulator.deliveries)
    assert receiver.got == []
    assert (stats.events_published, stats.dropped, stats.deliveries, stats.delivered) == (
        1,
        1,
        0,
        0,
    )
    assert [(r.task_id, r.outcome, r.attempt, r.status) for r in records] == [
        (task_id, "dropped", 0, None)
    ]


# -- retries --------------------------------------------------------------------------------------


async def test_a_target_answering_500_is_retried_3_times_10_to_20_s_apart_then_dead_lettered() -> (
    None
):
    receiver = Receiver(500, 500, 500, 500, 500)
    async with receiving(receiver), serve(config((receiver.url,))) as server:
        await submit(server.base_url)
        await receiver.wait_for(4, timeout=20)
        await settle(server, 0.3)
        stats = server.simulator.stats.snapshot()
        records = list(server.simulator.deliveries)
    assert len(receiver.got) == 4
    assert len({parse_event(got.body).event_id for got in receiver.got}) == 1
    gaps = [
        later.at - earlier.at
        for earlier, later in zip(receiver.got, receiver.got[1:], strict=False)
    ]
    assert all(10 * SCALE - 0.002 <= gap <= 20 * SCALE + 0.15 for gap in gaps), gaps
    # Each retry is signed afresh: the signature moves with the timestamp or not, but is checked.
    assert [r.outcome for r in records] == ["retrying"] * 3 + ["dead_lettered"]
    assert [r.attempt for r in records] == [1, 2, 3, 4]
    assert {r.status for r in records} == {500}
    assert (stats.deliveries, stats.delivered, stats.dead_lettered) == (4, 0, 1)


async def test_a_target_that_recovers_gets_the_event_on_a_retry() -> None:
    receiver = Receiver(503)
    async with receiving(receiver), serve(config((receiver.url,))) as server:
        await submit(server.base_url)
        await receiver.wait_for(2)
        await settle(server)
        stats = server.simulator.stats.snapshot()
        records = list(server.simulator.deliveries)
    assert [(r.attempt, r.outcome, r.status) for r in records] == [
        (1, "retrying", 503),
        (2, "delivered", 200),
    ]
    assert (stats.deliveries, stats.delivered, stats.dead_lettered) == (2, 1, 0)


async def test_exponential_decay_retries_176_times_then_dead_letters() -> None:
    waits = list(retry_waits("EXPONENTIAL_DECAY_RETRY", random.Random(0)))
    assert waits[:11] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 512]
    assert len(waits) == 176
    assert max(waits) == 512
    assert sum(waits) <= 24 * 3600  # within one day
    receiver = Receiver(*[500] * 200)
    async with receiving(receiver):
        # A day of retries in about a second: 1e-5 real seconds per provider second.
        settings = {"notify_retry": "EXPONENTIAL_DECAY_RETRY", "time_scale": 1e-5}
        async with serve(config((receiver.url,), **settings)) as server:
            await submit(server.base_url)
            await receiver.wait_for(177, timeout=30)
            await settle(server, 0.2)
            records = list(server.simulator.deliveries)
    assert len(receiver.got) == 177
    assert [r.outcome for r in records] == ["retrying"] * 176 + ["dead_lettered"]


async def test_an_unreachable_or_slow_target_is_retried_then_dead_lettered() -> None:
    slow = Receiver(delay=1.0)
    async with receiving(slow):
        with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
            probe.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{probe.getsockname()[1]}/events"
        settings = {"notify_timeout": 0.1, "time_scale": 0.001}
        async with serve(config((closed, slow.url), **settings)) as server:
            await submit(server.base_url)
            await until(lambda: server.simulator.stats.dead_lettered >= 2)
            records = list(server.simulator.deliveries)
    by_target = {
        target: [r for r in records if r.target == target] for target in (closed, slow.url)
    }
    for target, tried in by_target.items():
        assert [r.outcome for r in tried] == ["retrying"] * 3 + ["dead_lettered"], target
        assert {r.status for r in tried} == {None}
    assert {r.error for r in by_target[slow.url]} == {"timeout"}
    assert all(r.error and "Connect" in r.error for r in by_target[closed])


# -- the token, the certificate, and nothing when off ---------------------------------------------


async def test_the_token_header_is_sent_only_when_set() -> None:
    with_token, without = Receiver(), Receiver()
    async with receiving(with_token, without):
        async with serve(config((with_token.url,), notify_token="tok-1")) as server:
            await submit(server.base_url)
            await with_token.wait_for(1)
        async with serve(config((without.url,))) as server:
            await submit(server.base_url)
            await without.wait_for(1)
    assert with_token.got[0].headers[TOKEN] == "tok-1"
    assert TOKEN not in without.got[0].headers


async def test_nothing_is_published_without_targets_and_no_certificate_is_served() -> None:
    receiver = Receiver()
    async with (
        receiving(receiver),
        serve(sim_config(**{**FAST, "notify_latency": (0, 0)})) as server,
    ):
        task_id = await submit(server.base_url)
        await asyncio.sleep(0.3)
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.certificate_url) as resp,
        ):
            status = resp.status
        task = server.simulator.task(task_id)
        assert server.simulator.deliveries == []
        assert server.simulator.certificate_pem is None
        stats = server.simulator.stats.snapshot()
    assert task is not None
    assert task.status == "SUCCEEDED"
    assert receiver.got == []
    assert status == 404
    assert (stats.events_published, stats.deliveries, stats.dropped) == (0, 0, 0)


async def test_the_certificate_host_serves_the_signing_certificate_and_plays_scripted_faults() -> (
    None
):
    async with serve(config(("http://127.0.0.1:9/events",))) as server:
        server.simulator.faults.add(Fault("certificate", "status", status=503))
        async with aiohttp.ClientSession() as session:
            async with session.get(server.certificate_url) as resp:
                failed = resp.status
            async with session.get(server.certificate_url) as resp:
                served = (resp.status, await resp.read())
        records = [r for r in server.simulator.requests if r.endpoint == "certificate"]
    assert failed == 503
    assert served == (200, server.simulator.certificate_pem)
    assert [(r.status, r.fault) for r in records] == [(503, "server_error"), (200, None)]


def test_a_simulator_without_targets_does_not_import_cryptography() -> None:
    # Signing is the notify extra's: the simulator runs without it unless asked to notify.
    code = (
        "import sys; from emoji_async.testing import Simulator, SimulatorConfig; "
        "Simulator(SimulatorConfig()); print('cryptography' in sys.modules)"
    )
    result = subprocess.run(  # noqa: S603  (our own interpreter, our own arguments)
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"


async def test_stopping_the_simulator_cancels_the_deliveries_still_due() -> None:
    receiver = Receiver()
    async with receiving(receiver):
        async with serve(config((receiver.url,), notify_latency=(10_000, 10_000))) as server:
            await submit(server.base_url)
            await until(lambda: server.simulator.stats.events_published >= 1)
        # Nothing of the simulator's is left running (a pending task would also be a warning).
        names = {task.get_coro().__qualname__ for task in asyncio.all_tasks()}  # type: ignore[union-attr]
        assert not {name for name in names if "EventBridge" in name}
    assert receiver.got == []


# -- the event's time stamps and the settings' checks ---------------------------------------------


def test_the_time_stamps_come_in_each_documented_form_and_read_back() -> None:
    wall = dt.datetime(2023, 10, 25, 1, 45, 16, 969000, tzinfo=dt.UTC).timestamp()
    written = {form: stamp(wall, form) for form in TIME_FORMS}
    assert written == {
        "utc": "2023-10-25T01:45:16.969Z",
        "offset": "2023-10-25T09:45:16.969+08:00",
        "prc": "2023-10-25 09:45:16 PRC",
        "short_month": "2023-1-25T01:45:16.969Z",  # the provider's sample, as malformed
    }
    for form in ("utc", "offset", "prc"):
        moment = read_time(written[form])
        assert moment is not None
        assert abs(moment.timestamp() - wall) < 1


async def test_the_events_mix_the_forms_of_their_time_stamps() -> None:
    receiver = Receiver()
    async with (
        receiving(receiver),
        serve(config((receiver.url,), durations=fixed_duration(1))) as server,
    ):
        for n in range(8):
            await submit(server.base_url, f"{IMAGE}?n={n}")
        await receiver.wait_for(8)
    shapes = set()
    for got in receiver.got:
        document = json.loads(got.body)
        for name in ("time", "aliyunpublishtime"):
            text = document[name]
            shapes.add("Z" if text.endswith("Z") else text[-6:] if "+" in text else text[-3:])
    assert {"Z", "+08:00", "PRC"} <= shapes


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"notify_targets": ("ftp://example.com/x",)}, "notify_targets"),
        ({"notify_targets": ("not a url",)}, "notify_targets"),
        ({"notify_latency": (5, 1)}, "notify_latency"),
        ({"notify_latency": (-1, 1)}, "notify_latency"),
        ({"notify_latency": (1, 2, 3)}, "notify_latency"),
        ({"notify_drop": 1.5}, "notify_drop"),
        ({"notify_duplicates": -0.1}, "notify_duplicates"),
        ({"notify_retry": "FOREVER"}, "notify_retry"),
        ({"notify_timeout": 0}, "notify_timeout"),
        ({"notify_token": " spaced "}, "notify_token"),
        ({"notify_token": "line\nbreak"}, "notify_token"),
    ],
)
def test_notification_settings_are_checked_when_made(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatorConfig(**settings)


def test_notification_settings_default_to_off_and_accept_one_url_alone() -> None:
    default = SimulatorConfig()
    assert default.notify_targets == ()
    assert default.notify_latency == (1.0, 90.0)
    assert (default.notify_drop, default.notify_duplicates) == (0.0, 0.0)
    assert default.notify_retry == "BACKOFF_RETRY"
    assert default.notify_sign_form == SIGN_FORMS[0]
    assert SimulatorConfig(notify_targets="https://example.com/e").notify_targets == (
        "https://example.com/e",
    )
    assert SimulatorConfig(notify_latency=[0, 2]).notify_latency == (0.0, 2.0)
    with pytest.raises(TypeError, match="notify_sign_form"):
        SimulatorConfig(notify_sign_form="sorted")  # type: ignore[arg-type]


# -- the command line -------------------------------------------------------------------------


def test_the_simulator_command_reads_the_notification_options() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "simulator",
            "--notify",
            "http://127.0.0.1:9000/events",
            "--notify",
            "https://example.com/hook",
            "--notify-latency",
            "2,3.5",
            "--notify-drop",
            "0.1",
            "--notify-duplicates",
            "0.25",
            "--notify-retry",
            "EXPONENTIAL_DECAY_RETRY",
            "--notify-token",
            "tok",
            "--notify-seed",
            "4",
        ]
    )
    made = simulator_config(args)
    assert made.notify_targets == ("http://127.0.0.1:9000/events", "https://example.com/hook")
    assert made.notify_latency == (2.0, 3.5)
    assert (made.notify_drop, made.notify_duplicates) == (0.1, 0.25)
    assert (made.notify_retry, made.notify_token, made.notify_seed) == (
        "EXPONENTIAL_DECAY_RETRY",
        "tok",
        4,
    )
    plain = simulator_config(parser.parse_args(["simulator"]))
    assert attrs.evolve(plain, chaos=None) == SimulatorConfig(limits=plain.limits)


@pytest.mark.parametrize(
    ("option", "value"),
    [("--notify", "ftp://example.com/x"), ("--notify-latency", "3,1"), ("--notify-drop", "2")],
)
def test_a_bad_notification_option_is_a_usage_error(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["simulator", option, value])
    assert done.value.code == 2
    assert option in capsys.readouterr().err


async def test_the_simulator_command_delivers_signed_events_to_its_notify_target() -> None:
    receiver = Receiver()
    async with receiving(receiver):  # its URL is known once it listens
        argv = ["--port", "0", "--time-scale", "0.001", "--notify", receiver.url]
        argv += ["--notify-latency", "0,1", "--notify-token", "cli-token"]
        async with command("simulator", *argv) as proc:
            base_url = await read_line(proc.stdout)
            certificate_url = base_url.removesuffix("/api/v1") + "/eventbridge/cert.pem"
            task_id = await submit(base_url)
            await receiver.wait_for(1, timeout=20)
            got = receiver.got[0]
            assert got.headers[CERT_URL] == certificate_url
            cert = await certificate(got.headers[CERT_URL])
            status, err = await interrupt(proc)
    assert status == 0
    assert parse_event(got.body).task_id == task_id
    assert got.headers[TOKEN] == "cli-token"
    assert verifies(cert, SIGN_FORMS[0], receiver.url, got)
    assert f"certificate: {certificate_url}" in err
    assert "notifications: 1 events, 1 deliveries, 1 delivered" in err

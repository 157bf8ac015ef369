"""Fixtures: a simulator on a loopback port and a client pointed at it, on one compressed clock."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import gc
import signal
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from benchmarks.redis_server import local_redis
from emoji_async import BBox, EmojiClient, EmojiJob, JobOutcome, RateLimits, Task
from emoji_async._journal import Journal
from emoji_async.testing import (
    SimulatedTask,
    Simulator,
    SimulatorConfig,
    SimulatorServer,
    fixed_duration,
    serve,
)
from emoji_async.testing import client_for as client_for  # the tests' client, on the sim's clock

# A run started in the background of a non-interactive shell inherits SIGINT ignored,
# and so would every command the tests start and then interrupt to test Ctrl-C: they
# would never see it. The tests take it back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep the collector's full passes short: freeze what importing left alive.

    Client and simulator share one event loop here, on a clock a hundred times
    fast, and the tests that hold the client to "nothing throttled" allow it
    40 ms of lateness (``LOADED_MACHINE``). A full garbage collection over
    everything the tests import (aiohttp, cryptography, hypothesis, the suite
    itself) took about 130 ms once the whole suite was collected, 5 ms with what
    collection left alive frozen. Landing between a paced request leaving and the
    simulator reading it, it let the next one arrive inside the same compressed
    window, a 429 with nothing wrong in the client (one submit of a batch, once
    in CI). Modules, classes, functions and collected tests are not garbage;
    frozen, they are no longer scanned, and what each test makes is collected
    (and its unclosed resources warned of) as before.
    """
    del session
    gc.collect()
    gc.freeze()


#: Every service time constant is multiplied by this, and the client runs on the
#: same clock (``client_for``): a 60 s task runs in 0.6 s, a 15 s poll interval is 0.15 s.
SCALE = 0.01
KEY = "sk-simulator"
#: The tests' client's limits (``running`` and the ``client`` fixture), and those of
#: any test that holds the client to "nothing throttled". On this clock a 1/s limit
#: is a 10 ms window, and the default jitter (5 ms of real time, for a network's
#: differences in delay) leaves 6 ms between a request's release and its arrival,
#: less than a loaded CI machine can delay one of two requests: simulator and
#: client share one event loop, and the OS may leave the process waiting for a CPU.
#: 40 ms covers that and still paces well inside what the tests measure (25 ms did
#: not, twice, in CI under 3.12 while the 3.13 session ran beside it: one detection
#: of a batch met a 429 with nothing wrong in the client).
LOADED_MACHINE = RateLimits(jitter=0.04)


def sim_config(**overrides: Any) -> SimulatorConfig:
    """The tests' default simulator: provider limits on, every task 60 provider seconds.

    Result videos are text placeholders, which cost nothing to serve: a test that
    looks at a video (its bytes, its frames, a browser playing it) passes
    ``render_videos=True`` for a real MP4.
    """
    settings: dict[str, Any] = {
        "time_scale": SCALE,
        "durations": fixed_duration(60),
        "seed": 7,
        "render_videos": False,
    }
    settings.update(overrides)
    return SimulatorConfig(**settings)


def rerun_client(client: EmojiClient, **overrides: Any) -> EmojiClient:
    """A new process's client on ``client``'s service: it knows only what a journal says."""
    settings: dict[str, Any] = {
        "api_key": KEY,
        "base_url": client.base_url,
        "poll": client.poll,
        "retry": client.retry,
        "limits": client.limits,
        "time_scale": client.time_scale,
    }
    settings.update(overrides)
    return EmojiClient(**settings)


async def intent_on_record(
    path: Path, sim: Simulator, key: str, image: str
) -> tuple[list[int], list[int]]:
    """A journal as a run leaves it when killed right after recording a submit's intent.

    The boxes of ``image`` as the simulator detects them, to send the submit with.
    """
    face, ext = sim.boxes_for(image)
    async with await Journal.open(path) as journal:
        await journal.submitting(
            key,
            image=image,
            driven_id="mengwa_kaixin",
            face_bbox=BBox.parse(face),
            ext_bbox=BBox.parse(ext),
        )
    return face, ext


async def raw_submit(
    base_url: str, image: str, face: list[int], ext: list[int], driven_id: str = "mengwa_kaixin"
) -> str:
    """A submit this client never hears of: a killed run's, or another program's; its task."""
    body = {
        "model": "emoji-v1",
        "input": {"image_url": image, "driven_id": driven_id, "face_bbox": face, "ext_bbox": ext},
    }
    headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            base_url + "/services/aigc/image2video/video-synthesis", json=body, headers=headers
        ) as resp,
    ):
        task_id: str = (await resp.json())["output"]["task_id"]
    return task_id


async def detect_and_submit(
    client: EmojiClient, url: str, driven_id: str = "mengwa_kaixin"
) -> Task:
    """Submit ``url`` with the boxes its detection returned."""
    face = await client.detect(url)
    return await client.submit(url, driven_id, face_bbox=face.face_bbox, ext_bbox=face.ext_bbox)


@asynccontextmanager
async def running(
    config: SimulatorConfig | None = None, **client_overrides: Any
) -> AsyncIterator[tuple[Simulator, EmojiClient]]:
    """A simulator and an open client, both closed on exit.

    The client paces with ``LOADED_MACHINE``'s jitter unless ``limits`` is given:
    a test that counts requests or events must not meet a 429 because CI was busy.
    """
    client_overrides.setdefault("limits", LOADED_MACHINE)
    async with (
        serve(config or sim_config()) as server,
        client_for(server, **client_overrides) as client,
    ):
        yield server.simulator, client


@pytest.fixture
async def server() -> AsyncIterator[SimulatorServer]:
    async with serve(sim_config()) as srv:
        yield srv


@pytest.fixture
def sim(server: SimulatorServer) -> Simulator:
    return server.simulator


@pytest.fixture
async def client(server: SimulatorServer) -> AsyncIterator[EmojiClient]:
    async with client_for(server, limits=LOADED_MACHINE) as c:
        yield c


@contextmanager
def serve_in_thread(config: SimulatorConfig) -> Iterator[SimulatorServer]:
    """A simulator on its own event loop in a thread, so this loop holds only the client's tasks."""
    ready: concurrent.futures.Future[tuple[SimulatorServer, asyncio.AbstractEventLoop]]
    ready = concurrent.futures.Future()
    stop = threading.Event()

    async def main() -> None:
        async with serve(config) as srv:
            ready.set_result((srv, asyncio.get_running_loop()))
            await asyncio.to_thread(stop.wait)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    srv, _ = ready.result(timeout=10)
    try:
        yield srv
    finally:
        stop.set()
        thread.join(timeout=10)


def batch(server: SimulatorServer, tmp_path: Path, jobs: Path, *extra: str) -> int:
    """``emoji-async batch JOBS`` against ``server``, outputs under ``tmp_path``; its exit code."""
    from emoji_async.cli import main

    return main(
        [
            "batch",
            str(jobs),
            "--out",
            str(tmp_path / "videos"),
            "--journal",
            str(tmp_path / "batch.db"),
            "--base-url",
            server.base_url,
            "--time-scale",
            str(SCALE),
            *extra,
        ]
    )


@pytest.fixture
async def redis_url(tmp_path: Path) -> AsyncIterator[str]:
    """A redis-server of this test's own, on a free loopback port."""
    directory = tmp_path / "redis"
    directory.mkdir()
    async with local_redis(directory) as url:
        yield url


def overtaken(
    tasks: tuple[SimulatedTask, ...], visitor: SimulatedTask
) -> tuple[list[SimulatedTask], list[SimulatedTask]]:
    """As the simulator recorded them: the other tasks queued when ``visitor``'s task was
    made (not yet started), and those that started between its making and its start."""
    others = [t for t in tasks if t.task_id != visitor.task_id]
    assert visitor.scheduled_at is not None
    queued = [
        t
        for t in others
        if t.submitted_at < visitor.submitted_at
        and (t.scheduled_at is None or t.scheduled_at > visitor.submitted_at)
    ]
    went_first = [
        t
        for t in others
        if t.scheduled_at is not None
        and visitor.submitted_at < t.scheduled_at < visitor.scheduled_at
    ]
    return queued, went_first


def cancels_carried_out(sim: Simulator) -> tuple[int, int]:
    """The cancels the simulator received, as it answered them: ``(carried out, refused)``.

    A refused cancel is one that lost the race the lanes allow: the task it was
    sent for had started. Each one's task is checked to have run, not been cancelled.
    """
    cancels = [r for r in sim.requests if r.endpoint == "cancel"]
    refused = [r for r in cancels if r.status != 200]
    for record in refused:
        assert record.status == 400, record
        [task_id] = [part for part in record.path.split("/") if sim.task(part) is not None]
        task = sim.task(task_id)
        assert task is not None
        assert task.scheduled_at is not None, task
        assert task.status != "CANCELED", task
    return len(cancels) - len(refused), len(refused)


def succeeded_by_image(sim: Simulator) -> collections.Counter[str]:
    """How many tasks of each portrait succeeded (each one billed), as the simulator recorded."""
    return collections.Counter(t.image_url for t in sim.tasks() if t.status == "SUCCEEDED")


def each_job_paid_once(
    sim: Simulator, jobs: Sequence[EmojiJob], outcomes: Sequence[JobOutcome]
) -> None:
    """Every job succeeded, its portrait was billed once, and its video is the task the
    service made from that portrait: held to the simulator's record, not the client's."""
    assert [o.error for o in outcomes] == [None] * len(jobs)
    succeeded = succeeded_by_image(sim)
    assert {job.image: succeeded[job.image] for job in jobs} == {job.image: 1 for job in jobs}
    for job, outcome in zip(jobs, outcomes, strict=True):
        assert outcome.video is not None
        made = sim.task(outcome.video.task_id)
        assert made is not None
        assert (made.image_url, made.status) == (job.image, "SUCCEEDED")

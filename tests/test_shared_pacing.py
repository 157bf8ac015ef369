"""Pacing shared through a real Redis: many clients and processes, one account's limits."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from benchmarks.redis_server import free_port
from benchmarks.scenarios import shared as bench
from emoji_async import (
    EmojiClient,
    EmojiJob,
    PollPolicy,
    RateLimits,
    RedisPacing,
    SharedPacingError,
    SubmissionUncertainError,
    ValidationError,
)
from emoji_async._adaptive import batch_concurrency
from emoji_async._journal import JobState, Journal
from emoji_async._pacing import InProcess, Pacing
from emoji_async._shared import RedisBackend
from emoji_async._values import Endpoint
from emoji_async.testing import Chaos, Fault, Simulator, SimulatorServer, serve

from .conftest import KEY, LOADED_MACHINE, SCALE, client_for, detect_and_submit, sim_config
from .shared_child import ACCOUNT, image

CHILD = Path(__file__).with_name("shared_child.py")
#: The submit lock's and the leases' expiry in the multi-process tests (seconds).
TTL = 1.0


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain connection to that server, to look at what the clients left there."""
    connection = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    await connection.aclose()


def shared(url: str, **settings: Any) -> RedisPacing:
    return RedisPacing(url, account=ACCOUNT, **settings)


@asynccontextmanager
async def one_account(
    server: SimulatorServer, pacing: RedisPacing
) -> AsyncIterator[tuple[EmojiClient, EmojiClient]]:
    """Two clients sharing one account's pacing (as two processes would)."""
    settings = {"pacing": pacing, "limits": LOADED_MACHINE}
    async with client_for(server, **settings) as one, client_for(server, **settings) as two:
        yield one, two


def jobs(name: str, count: int) -> list[EmojiJob]:
    return [
        EmojiJob(f"https://example.com/{name}/{n}.png?sim_duration=30", "mengwa_kaixin")
        for n in range(count)
    ]


def text(value: object) -> str:
    """A Redis answer as text (the connection decodes, the types do not say so)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def tasks_per_image(sim: Simulator) -> Counter[str]:
    return Counter(task.image_url for task in sim.tasks())


# --- configuration and opening -------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"account": "has space"}, "account"),
        ({"account": ""}, "account"),
        ({"account": "x" * 65}, "account"),
        ({"account": "acme", "prefix": "a:b"}, "prefix"),
        ({"account": "acme", "lock_ttl": 0}, "lock_ttl"),
        ({"account": "acme", "lease_ttl": float("nan")}, "lease_ttl"),
        ({"account": "acme", "max_in_flight": 0}, "max_in_flight"),
        ({"account": "acme", "fallback": "yes"}, "fallback"),
    ],
)
def test_a_bad_setting_names_its_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RedisPacing("redis://localhost:6379/0", **settings)
    assert caught.value.field == field


def test_a_url_that_is_not_redis_is_refused_without_showing_its_password() -> None:
    with pytest.raises(ValidationError) as caught:
        RedisPacing("http://user:hunter2@localhost:6379", account="acme")
    assert caught.value.field == "url"
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(RedisPacing("redis://:hunter2@cache:6379/2", account="acme"))


async def test_an_unreachable_redis_is_one_clear_error_at_open() -> None:
    async with serve(sim_config()) as server:
        port = free_port()  # nothing listens there
        pacing = shared(f"redis://:hunter2@127.0.0.1:{port}/0", connect_timeout=0.5)
        client = client_for(server, pacing=pacing)
        with pytest.raises(SharedPacingError) as caught:
            await client.open()
        await client.aclose()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "hunter2" not in message
    assert server.simulator.requests == []


async def test_an_unreachable_redis_with_fallback_paces_in_process_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serve(sim_config()) as server:
        port = free_port()
        pacing = shared(f"redis://127.0.0.1:{port}/0", connect_timeout=0.5, fallback=True)
        with caplog.at_level(logging.WARNING, logger="emoji_async"):
            async with client_for(server, pacing=pacing) as client:
                outcomes = await client.generate_many(jobs("fallback", 2))
    assert [o.ok for o in outcomes] == [True, True]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("pacing in this process alone" in w for w in warnings)


# --- several clients of one account ----------------------------------------------


async def test_two_clients_of_one_account_keep_its_limits_together(
    redis_url: str, raw: aioredis.Redis
) -> None:
    async with serve(sim_config()) as server:
        sim = server.simulator
        async with one_account(server, shared(redis_url)) as (one, two):
            first, second = await asyncio.gather(
                one.generate_many(jobs("one", 4)), two.generate_many(jobs("two", 4))
            )
        assert all(o.ok for o in [*first, *second])
        assert sim.stats.throttled == 0
        assert sim.stats.tasks_created == 8
        assert set(tasks_per_image(sim).values()) == {1}
    # Closed clients leave no lease and no lock behind.
    assert await raw.zcard(f"emoji_async:{ACCOUNT}:inflight") == 0
    assert not await raw.exists(f"emoji_async:{ACCOUNT}:submit:lock")


async def test_two_clients_each_pacing_alone_are_throttled() -> None:
    """The contrast: the same two clients without shared pacing exceed the account's limits."""
    async with serve(sim_config()) as server:
        sim = server.simulator
        async with client_for(server) as one, client_for(server) as two:
            await asyncio.gather(
                one.generate_many(jobs("one", 3)), two.generate_many(jobs("two", 3))
            )
        assert sim.stats.throttled > 0


async def test_a_batch_keeps_the_account_in_flight_count_under_its_cap(redis_url: str) -> None:
    cap = 2
    async with serve(sim_config()) as server:
        sim = server.simulator
        pacing = shared(redis_url, max_in_flight=cap)
        async with one_account(server, pacing) as (one, two):
            await asyncio.gather(
                one.generate_many(jobs("one", 4)), two.generate_many(jobs("two", 4))
            )
        assert sim.stats.tasks_created == 8
        # Each batch alone would keep more in flight (its default concurrency).
        assert bench.peak_in_flight(sim.tasks()) == cap


async def test_a_task_queued_behind_another_clients_task_is_not_polled_until_that_one_ends(
    redis_url: str,
) -> None:
    async with serve(sim_config()) as server:
        sim = server.simulator
        async with one_account(server, shared(redis_url)) as (first, second):
            ahead = await detect_and_submit(first, "https://example.com/q/1.png")
            behind = await detect_and_submit(second, "https://example.com/q/2.png")
            await asyncio.gather(ahead.wait(), behind.wait())
        ahead_task = sim.task(ahead.task_id)
        assert ahead_task is not None
        assert ahead_task.ended_at is not None
        polls_while_queued = [
            r
            for r in sim.requests
            if r.endpoint == "query"
            and r.path.endswith(behind.task_id)
            and r.at < ahead_task.ended_at
        ]
        # One poll to see it queued; then it waits for the other client's task to end.
        assert len(polls_while_queued) <= 1


async def test_no_key_material_goes_to_redis_and_every_key_is_the_accounts(
    redis_url: str, raw: aioredis.Redis
) -> None:
    async with serve(sim_config()) as server:
        pacing = shared(redis_url, lease_ttl=30)
        async with client_for(server, pacing=pacing) as client:
            face, ext = server.simulator.boxes_for("https://example.com/k.png")
            task = await client.submit(
                "https://example.com/k.png", "mengwa_kaixin", face_bbox=face, ext_bbox=ext
            )
            keys = [key async for key in raw.scan_iter("*")]
            dumped: list[str] = []
            for key in keys:
                kind = await raw.type(key)
                if kind == "hash":
                    fields = await raw.hgetall(key)
                    dumped += [f"{text(k)}={text(v)}" for k, v in fields.items()]
                elif kind == "zset":
                    dumped += [text(m) for m in await raw.zrange(key, 0, -1)]
                elif kind == "string":
                    dumped.append(text(await raw.get(key)))
    assert keys
    assert all(text(key).startswith(f"emoji_async:{ACCOUNT}:") for key in keys)
    assert task.task_id in dumped  # counted in flight, and known to the account
    everything = "\n".join([*map(text, keys), *dumped])
    assert KEY not in everything
    assert "example.com" not in everything  # the inputs go there as a digest only


# --- request pacing through Redis ------------------------------------------------


async def test_a_stalled_event_loop_does_not_send_the_turns_it_delayed_together(
    redis_url: str,
) -> None:
    # Six callers take their turns in Redis 20 ms apart; then the loop blocks for 100 ms,
    # past four of them. They start 20 ms apart from when the loop runs again, in order.
    limits = RateLimits(detect_per_second=50, window=0.02, margin=0, jitter=0)
    backend = RedisBackend(shared(redis_url, spread=0), limits)
    await backend.open()
    loop = asyncio.get_running_loop()
    starts: list[tuple[int, float]] = []

    async def one(n: int) -> None:
        (await backend.acquire(Endpoint.DETECT)).sent()
        starts.append((n, loop.time()))

    try:
        callers = []
        for n in range(6):
            callers.append(asyncio.create_task(one(n)))
            await asyncio.sleep(0.001)  # every caller has its turn; the first has started
        assert [n for n, _ in starts] == [0]
        time.sleep(0.1)  # noqa: ASYNC251  (the stall under test)
        await asyncio.gather(*callers)
    finally:
        await backend.aclose()
    assert [n for n, _ in starts] == list(range(6))
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(starts)]
    assert all(gap >= 0.02 - 0.002 for gap in gaps), gaps


async def test_detections_delayed_by_a_stalled_loop_reach_the_service_one_turn_apart(
    redis_url: str,
) -> None:
    # Six detections wait their turns 36 ms apart; the loop blocks for 150 ms, past
    # four of them. The service, which counts requests as they arrive, throttles none.
    async with serve(sim_config()) as server:
        sim = server.simulator
        async with client_for(server, pacing=shared(redis_url), limits=LOADED_MACHINE) as client:
            calls = [
                asyncio.create_task(client.detect(f"https://example.com/stall/{n}.png"))
                for n in range(6)
            ]
            while not sim.requests:  # noqa: ASYNC110  (the simulator sets no event)
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.005)  # every caller has its turn; the first was sent
            time.sleep(0.15)  # noqa: ASYNC251  (the stall under test)
            await asyncio.gather(*calls)
        assert sim.stats.throttled == 0


#: A process that takes four turns 50 ms apart, then blocks its loop for 400 ms.
STALLING_CHILD = """
import asyncio, json, sys, time
from emoji_async import RateLimits, RedisPacing
from emoji_async._shared import RedisBackend
from emoji_async._values import Endpoint

async def main(url):
    limits = RateLimits(detect_per_second=20, window=0.05, margin=0, jitter=0)
    backend = RedisBackend(RedisPacing(url, account="test", spread=0), limits)
    await backend.open()
    starts = []
    async def one():
        (await backend.acquire(Endpoint.DETECT)).sent()
        starts.append(time.time())
    callers = [asyncio.create_task(one()) for _ in range(4)]
    while not starts:
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.01)
    print("stalling", flush=True)
    time.sleep(0.4)
    await asyncio.gather(*callers)
    await backend.aclose()
    print(json.dumps(starts), flush=True)

asyncio.run(main(sys.argv[1]))
"""


async def test_a_process_whose_loop_stalled_keeps_the_accounts_spacing_with_the_others(
    redis_url: str,
) -> None:
    # The other process takes its turns one after another meanwhile, and goes on
    # while the stalled one sleeps: the turns it left pass, and when it wakes its
    # three late turns come in among this process's, every start 50 ms from the next.
    limits = RateLimits(detect_per_second=20, window=0.05, margin=0, jitter=0)
    backend = RedisBackend(shared(redis_url, spread=0), limits)
    await backend.open()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STALLING_CHILD, redis_url, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    here: list[float] = []
    try:
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        assert line.decode().strip() == "stalling"
        finished = asyncio.create_task(child.stdout.readline())
        while not finished.done() or len(here) < 3:
            (await backend.acquire(Endpoint.DETECT)).sent()
            here.append(time.time())
        there = json.loads(await finished)
        assert await child.wait() == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await backend.aclose()
    assert len(there) == 4
    starts = sorted([*here, *there])
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= 0.05 - 0.01 for gap in gaps), gaps


# --- leases and unsettled submits -------------------------------------------------


async def test_a_lease_is_renewed_while_held_and_runs_out_when_its_holder_stops(
    redis_url: str,
) -> None:
    lease = 0.3
    here = RedisBackend(shared(redis_url, lease_ttl=lease), None)
    there = RedisBackend(shared(redis_url, lease_ttl=lease), None)
    pacing = Pacing(None, here)
    await here.open()
    await there.open()
    try:
        await here.occupy("task-1")
        pacing.board.watch("task-1", None)  # followed here: renewed
        await asyncio.sleep(3 * lease)
        assert await there.in_flight() == 1
        # The holder stops answering (as a killed process would): nothing renews it.
        assert here._renewer is not None
        here._renewer.cancel()
        await asyncio.sleep(2 * lease)
        assert await there.in_flight() == 0
    finally:
        await here.aclose()
        await there.aclose()


async def test_tasks_remembered_in_the_background_are_known_to_the_accounts_other_processes(
    redis_url: str,
) -> None:
    """remember_later hands its work to the caller's spawn only when there is some to do:
    with shared pacing it records the tasks for every process, in one process nothing."""
    spawned: list[Coroutine[Any, Any, None]] = []
    here = RedisBackend(shared(redis_url), None)
    there = RedisBackend(shared(redis_url), None)
    Pacing(None, here)
    Pacing(None, there)
    await here.open()
    await there.open()
    try:
        here.remember_later([], spawned.append)
        assert spawned == []
        here.remember_later(["task-1"], spawned.append)
        assert len(spawned) == 1
        assert await there.known(["task-1", "task-2"]) == set()  # not before it runs
        await spawned.pop()
        assert await there.known(["task-1", "task-2"]) == {"task-1"}
    finally:
        await here.aclose()
        await there.aclose()
    InProcess(None).remember_later(["task-1"], spawned.append)
    assert spawned == []


async def test_a_submit_left_unsettled_by_a_stopped_process_makes_a_lone_match_uncertain(
    redis_url: str,
) -> None:
    """A task found alone may be the stopped process's: it is not adopted, it is named."""
    async with serve(sim_config()) as server:
        sim = server.simulator
        async with client_for(server, pacing=shared(redis_url)) as client:
            stopped = RedisBackend(shared(redis_url), None)
            await stopped.open()
            await stopped.sending("f" * 32)  # then stopped: never settled
            await stopped.aclose()
            sim.faults.add(Fault("submit", "reset", after_processing=True))
            face, ext = sim.boxes_for("https://example.com/u.png")
            with pytest.raises(SubmissionUncertainError) as caught:
                await client.submit(
                    "https://example.com/u.png", "mengwa_kaixin", face_bbox=face, ext_bbox=ext
                )
        assert sim.stats.tasks_created == 1
        assert list(caught.value.candidates) == [sim.tasks()[0].task_id]


async def test_an_unanswered_submit_never_adopts_a_task_another_client_created(
    redis_url: str,
) -> None:
    async with serve(sim_config()) as server:
        sim = server.simulator
        async with one_account(server, shared(redis_url)) as (mine, theirs):
            face, ext = sim.boxes_for("https://example.com/b.png")
            other = await theirs.submit(
                "https://example.com/b.png", "mengwa_kaixin", face_bbox=face, ext_bbox=ext
            )
            face, ext = sim.boxes_for("https://example.com/a.png")
            sim.faults.add(Fault("submit", "reset", after_processing=True))
            adopted = await mine.submit(
                "https://example.com/a.png", "mengwa_kaixin", face_bbox=face, ext_bbox=ext
            )
        assert adopted.task_id != other.task_id
        assert sim.stats.tasks_created == 2
        task = sim.task(adopted.task_id)
        assert task is not None
        assert task.image_url == "https://example.com/a.png"


# --- several processes ---------------------------------------------------------------


async def test_several_processes_of_one_account_are_never_throttled(redis_url: str) -> None:
    """The benchmark at CI size: invariants only.

    On the tests' clock (1/s is a 10 ms window), not the benchmark's 0.003: three
    processes on a loaded CI machine can each be kept from a CPU for longer than the
    3 ms a window lasts there. Every task runs 60 s, so the run stays short.
    """
    scale = SCALE
    report = await bench.run(
        processes=3, jobs=4, time_scale=scale, redis_url=redis_url, durations=(60.0, 60.0)
    )
    assert report.throttled == 0
    assert report.tasks_created == 3 * 4
    assert report.lost == 0
    # All the processes together keep in flight what one batch alone would.
    assert report.peak_in_flight <= batch_concurrency(1, *PollPolicy().scaled(scale).run_time)


async def start_child(
    base_url: str, redis_url: str, tmp_path: Path, index: int, count: int
) -> asyncio.subprocess.Process:
    args = [
        base_url,
        redis_url,
        str(tmp_path / f"run-{index}.db"),
        str(tmp_path / "videos"),
        str(SCALE),
        str(index),
        str(count),
        str(TTL),
    ]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        *args,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "DASHSCOPE_API_KEY": KEY},
    )


async def summary_of(child: asyncio.subprocess.Process) -> dict[str, Any]:
    out, _ = await child.communicate()
    assert child.returncode == 0
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def test_a_process_killed_holding_the_submit_lock_wedges_nobody_and_resumes(
    redis_url: str, raw: aioredis.Redis, tmp_path: Path
) -> None:
    processes, count = 4, 3
    lock_key = f"emoji_async:{ACCOUNT}:submit:lock"
    # Every submit is answered late (its task created at once), so a process that
    # holds the lock is caught mid-submit: the hardest case for the others.
    chaos = Chaos(slow_after=1.0, slow_seconds=0.3, endpoints={"submit"})
    async with serve(sim_config(chaos=chaos)) as server:
        sim = server.simulator
        children = {
            index: await start_child(server.base_url, redis_url, tmp_path, index, count)
            for index in range(processes)
        }
        pids = {child.pid: index for index, child in children.items()}
        async with asyncio.timeout(30):
            while sim.stats.tasks_created < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.002)
            holder = text(await raw.get(lock_key))
            victim = pids[int(holder.split(":")[1])]
            children[victim].send_signal(signal.SIGKILL)
            assert await children[victim].wait() == -signal.SIGKILL
        # It died holding the lock: the lock is still its own, until it expires.
        assert text(await raw.get(lock_key)) == holder
        created_at_kill = sim.stats.tasks_created

        async with asyncio.timeout(45):
            others = [
                await summary_of(child) for index, child in children.items() if index != victim
            ]
        assert all(summary["ok"] == [True] * count for summary in others), others
        assert sim.stats.tasks_created > created_at_kill  # they carried on
        # Its submit had left: the journal holds the intent, the service its task.
        async with await Journal.open(tmp_path / f"run-{victim}.db") as record:
            states = {entry.state for entry in record.entries()}
        assert JobState.SUBMITTING in states

        rerun = await start_child(server.base_url, redis_url, tmp_path, victim, count)
        async with asyncio.timeout(45):
            resumed = await summary_of(rerun)
        assert resumed["ok"] == [True] * count, resumed["errors"]
        assert resumed["resumed"] >= 1
        per_image = tasks_per_image(sim)
        assert sim.stats.tasks_created == processes * count
        assert {t.status for t in sim.tasks()} == {"SUCCEEDED"}
    assert all(per_image[image(victim, n)] == 1 for n in range(count))
    assert set(per_image.values()) == {1}

"""The client keeps under the account's limits, and a 429 slows the whole client."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from emoji_async import RateLimits, ValidationError
from emoji_async._pacer import Pacer
from emoji_async._pacing import Pacing
from emoji_async._task_board import TaskBoard
from emoji_async._values import Endpoint
from emoji_async.testing import Fault

from .conftest import LOADED_MACHINE, SCALE, detect_and_submit, running, sim_config


def test_intervals_follow_the_rates_plus_the_margin() -> None:
    limits = RateLimits()
    assert limits.interval(Endpoint.SUBMIT) == pytest.approx(1.105)
    assert limits.interval(Endpoint.QUERY) == pytest.approx(1.105 / 20)
    assert limits.interval(Endpoint.CANCEL) == limits.interval(Endpoint.LIST)
    scaled = limits.scaled(0.01)
    assert scaled.window == pytest.approx(0.01)
    # The margin scales with the clock; the jitter allowance is real time and does not.
    assert scaled.interval(Endpoint.DETECT) == pytest.approx(0.011 + 0.005)
    assert scaled.interval(Endpoint.QUERY) == pytest.approx((0.011 + 0.005) / 20)
    assert scaled.running_tasks == 1


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("submit_per_second", 0, "a finite number > 0"),
        ("submit_per_second", "1", "a finite number > 0"),
        ("query_per_second", math.inf, "a finite number > 0"),
        ("window", None, "a finite number > 0"),
        ("running_tasks", 0, "an int >= 1"),
        ("margin", 2, "a number from 0 to 1"),
        ("margin", Decimal("sNaN"), "a number from 0 to 1"),
        ("jitter", math.nan, "a number from 0 to 1"),
        ("max_hold", 0, "a finite number > 0"),
        ("max_hold", math.inf, "a finite number > 0"),
    ],
)
def test_a_bad_limit_names_its_field_and_range(field: str, value: Any, allowed: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RateLimits(**{field: value})
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: expected {allowed}, got ")


async def test_a_pacer_spaces_request_starts_by_its_interval() -> None:
    pacer = Pacer(0.02, window=0.02)
    loop = asyncio.get_running_loop()
    starts: list[float] = []

    async def one() -> None:
        (await pacer.acquire()).sent()
        starts.append(loop.time())

    await asyncio.gather(*(one() for _ in range(6)))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= 0.02 - 0.002 for gap in gaps), gaps


async def test_a_stalled_event_loop_does_not_send_the_turns_it_delayed_together() -> None:
    # Six callers take their turns 20 ms apart; then the loop blocks for 100 ms, past
    # four of them. They start 20 ms apart from when the loop runs again, in order.
    pacer = Pacer(0.02, window=0.02)
    loop = asyncio.get_running_loop()
    starts: list[tuple[int, float]] = []

    async def one(n: int) -> None:
        (await pacer.acquire()).sent()
        starts.append((n, loop.time()))

    callers = [asyncio.create_task(one(n)) for n in range(6)]
    await asyncio.sleep(0)  # every caller has its turn; the first has started
    time.sleep(0.1)  # noqa: ASYNC251  (the stall under test)
    await asyncio.gather(*callers)
    assert [n for n, _ in starts] == list(range(6))
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(starts)]
    assert all(gap >= 0.02 - 0.002 for gap in gaps), gaps


async def test_the_next_turn_is_spaced_from_when_the_request_left_not_from_its_turn() -> None:
    # The first request leaves 80 ms after its turn (it waited for a connection): the
    # second turn comes an interval after that, not an interval after the first turn.
    pacer = Pacer(0.02, window=0.02)
    loop = asyncio.get_running_loop()
    first = await pacer.acquire()
    second = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0.08)
    assert not second.done()
    left = loop.time()
    first.sent()
    (await second).sent()
    assert loop.time() - left >= 0.02 - 0.002


async def test_a_turn_that_never_left_does_not_space_the_next_one() -> None:
    # Had the unsent turn counted as sent, the next one would wait 0.3 s after it.
    pacer = Pacer(0.3, window=0.3)
    loop = asyncio.get_running_loop()
    (await pacer.acquire()).sent()
    await asyncio.sleep(0.35)
    unsent = await pacer.acquire()
    given_up = loop.time()
    unsent.end()
    unsent.sent()  # too late: the first report counts
    (await pacer.acquire()).end()
    assert loop.time() - given_up < 0.15


async def test_a_caller_cancelled_while_waiting_its_turn_leaves_the_order_intact() -> None:
    pacer = Pacer(0.01, window=0.01)
    out = await pacer.acquire()
    cancelled = asyncio.create_task(pacer.acquire())
    last = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0.02)
    cancelled.cancel()
    await asyncio.sleep(0.02)
    assert not last.done()  # still behind the turn out, which has not left
    out.sent()
    (await asyncio.wait_for(last, 1)).sent()
    assert cancelled.cancelled()


async def test_a_hold_pushes_back_callers_already_waiting_their_turn() -> None:
    pacer = Pacer(0.01, window=0.01)
    loop = asyncio.get_running_loop()
    (await pacer.acquire()).sent()
    waiting = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0)
    held_at = loop.time()
    pacer.hold(0.15)
    await waiting
    assert loop.time() - held_at >= 0.15 - 0.005


async def test_a_429_holds_its_group_back_for_at_most_max_hold_whatever_it_asks() -> None:
    limits = RateLimits(max_hold=0.2)
    pacing = Pacing(limits)
    assert pacing.hold(Endpoint.DETECT, 3600.0) == 0.2
    assert pacing.hold(Endpoint.DETECT, 0.05) == 0.05
    assert RateLimits().max_hold == 60
    assert RateLimits().scaled(0.01).max_hold == pytest.approx(0.6)
    loop = asyncio.get_running_loop()
    held_at = loop.time()
    await pacing.acquire(Endpoint.DETECT)
    assert loop.time() - held_at < 10 * 0.2  # held by the cap, not for the hour asked


async def test_the_board_counts_tasks_ahead_and_wakes_those_behind() -> None:
    board = TaskBoard()
    board.watch("a", 100.0)
    board.watch("b", 101.0)
    board.watch("c", 101.0)  # same instant: registration order decides
    assert [board.ahead(t) for t in ("a", "b", "c", "unknown")] == [0, 1, 2, 0]
    woken = asyncio.create_task(board.next_release())
    await asyncio.sleep(0)
    assert not woken.done()
    board.release("a")
    await asyncio.wait_for(woken, 1)
    assert board.ahead("c") == 1


async def test_concurrent_detects_from_one_client_arrive_within_the_limit() -> None:
    async with running(limits=LOADED_MACHINE) as (sim, client):
        await asyncio.gather(*(client.detect(f"https://example.com/{n}.png") for n in range(8)))
    arrivals = [r.at for r in sim.requests if r.endpoint == "detect"]
    assert len(arrivals) == 8
    assert sim.stats.throttled == 0
    window = 1.0 * SCALE
    assert all(b - a >= window * 0.99 for a, b in itertools.pairwise(arrivals))


async def test_detects_that_waited_for_a_connection_do_not_arrive_together(
    tmp_path: Path,
) -> None:
    # A hundred downloads from a slow host hold every connection of the client's pool.
    # Four detections take their turns meanwhile and wait inside the pool; when the
    # downloads end they all get a connection at once. Spaced by their turns they
    # would reach the service together; spaced by when each left, none is throttled.
    release = asyncio.Event()
    holding = 0

    async def slow_video(request: web.Request) -> web.Response:
        nonlocal holding
        holding += 1
        await release.wait()
        return web.Response(body=b"not really a video")

    host = web.Application()
    host.router.add_get("/{name}", slow_video)
    runner = web.AppRunner(host, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with running(limits=LOADED_MACHINE) as (sim, client):
            downloads = [
                asyncio.create_task(client.download(f"{url}/{n}.mp4", tmp_path / f"{n}.mp4"))
                for n in range(100)
            ]
            for _ in range(500):
                if holding == 100:
                    break
                await asyncio.sleep(0.01)
            assert holding == 100, "the downloads did not take the whole pool"
            detects = [
                asyncio.create_task(client.detect(f"https://example.com/{n}.png")) for n in range(4)
            ]
            await asyncio.sleep(0.4)  # every detection's turn has come: 8 turns' time
            assert not sim.requests
            release.set()
            await asyncio.gather(*downloads, *detects)
    finally:
        await runner.cleanup()
    assert [r.status for r in sim.requests] == [200] * 4
    assert sim.stats.throttled == 0


async def test_a_429_holds_back_every_task_of_the_client_for_its_retry_after() -> None:
    hold = 0.3
    async with running(sim_config(limits=None)) as (sim, client):
        tasks = [
            await detect_and_submit(client, f"https://example.com/{n}.png?sim_duration=120")
            for n in range(3)
        ]
        sim.faults.add(Fault("query", "status", status=429, code="Throttling", retry_after=hold))
        await asyncio.gather(*(task.wait() for task in tasks))
    queries = [r for r in sim.requests if r.endpoint == "query"]
    throttled = next(i for i, r in enumerate(queries) if r.status == 429)
    after = [r.at for r in queries[throttled + 1 :]]
    assert after, "the tasks kept polling after the 429"
    assert min(after) - queries[throttled].at >= hold - 0.01


async def test_tasks_queued_behind_the_clients_own_are_not_polled_while_they_wait() -> None:
    async with running() as (sim, client):
        tasks = [
            await detect_and_submit(client, f"https://example.com/{n}.png?sim_duration=60")
            for n in range(4)
        ]
        await asyncio.gather(*(task.wait() for task in tasks))
        pending_polls = 0
        for task in tasks:
            truth = sim.task(task.task_id)
            assert truth is not None
            assert truth.scheduled_at is not None
            pending_polls += sum(
                1
                for r in sim.requests
                if r.endpoint == "query" and task.task_id in r.path and r.at < truth.scheduled_at
            )
    # A queued task is first polled once the task ahead of it is seen ended, by which time
    # the service has started it: no poll is spent on a task that is still queued.
    assert pending_polls == 0

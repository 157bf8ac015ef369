"""Notifications across processes: an event delivered to one process's hub wakes a waiter in
another, through a real redis-server (the account's pacing Redis)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from emoji_async import EmojiClient, RedisPacing
from emoji_async._shared import RedisBackend
from emoji_async.testing import Simulator, serve

from .conftest import KEY, LOADED_MACHINE, SCALE, client_for, detect_and_submit, sim_config
from .notices_child import FAR
from .test_notices import event_for, portrait, queries

CHILD = Path(__file__).with_name("notices_child.py")
ACCOUNT = "notices"


@asynccontextmanager
async def child_process(base_url: str, redis_url: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """The other process, listening on the account's notifications."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        base_url,
        redis_url,
        str(SCALE),
        ACCOUNT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "DASHSCOPE_API_KEY": KEY},
    )
    assert child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        assert line.decode().strip() == "listening"
        yield child
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


async def ask(child: asyncio.subprocess.Process, task_id: str) -> dict[str, Any]:
    """Have the child wait for ``task_id``; what it reports when the wait ends."""
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write(f"{task_id}\n".encode())
    await child.stdin.drain()
    line = await asyncio.wait_for(child.stdout.readline(), 60)
    report: dict[str, Any] = json.loads(line)
    return report


async def subscribed(client: EmojiClient) -> None:
    backend = client._life.service.pacing.backend
    assert isinstance(backend, RedisBackend)
    await asyncio.wait_for(backend.relayed.subscribed.wait(), 10)


async def ended(sim: Simulator, task_id: str) -> None:
    while (task := sim.task(task_id)) is None or task.ended_at is None:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def test_an_event_delivered_in_one_process_wakes_a_waiter_in_another(
    redis_url: str,
) -> None:
    pacing = RedisPacing(redis_url, account=ACCOUNT)
    async with (
        serve(sim_config()) as server,
        client_for(server, limits=LOADED_MACHINE, pacing=pacing, notifications=FAR) as here,
    ):
        sim = server.simulator
        await subscribed(here)
        async with child_process(server.base_url, redis_url) as child:
            task = await detect_and_submit(here, portrait("relayed"))
            waiting = asyncio.create_task(ask(child, task.task_id))
            await ended(sim, task.task_id)
            await asyncio.sleep(3 * SCALE)  # the event is a few seconds late
            await here.notices.deliver(event_for(task.task_id, "SUCCEEDED"))
            report = await waiting
        assert report["status"] == "SUCCEEDED"
        assert report["relayed_in"] == 1
        # The child's first look (a handle with no state yet), then the one the event woke:
        # far sooner than its safety net (900 provider seconds).
        assert queries(sim) == 2
        assert report["took"] < 200 * SCALE
        assert here.notices.counts.relayed_out == 1
        # The process that delivered it takes nothing back from the channel.
        assert here.notices.counts.relayed_in == 0
        assert here.notices.counts.delivered == 1


async def test_a_waiter_that_starts_after_the_event_went_by_finds_it_in_redis(
    redis_url: str,
) -> None:
    pacing = RedisPacing(redis_url, account=ACCOUNT)
    async with (
        serve(sim_config()) as server,
        client_for(server, limits=LOADED_MACHINE, pacing=pacing, notifications=FAR) as here,
    ):
        sim = server.simulator
        task = await detect_and_submit(here, portrait("recalled"))
        await ended(sim, task.task_id)
        await here.notices.deliver(event_for(task.task_id, "SUCCEEDED"))
        raw = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            for _ in range(100):  # the relay is written in the background
                if await raw.exists(f"{pacing.namespace}:notice:{task.task_id}"):
                    break
                await asyncio.sleep(0.01)
        finally:
            await raw.aclose()
        # A process started after the event: it never heard it on the channel.
        async with child_process(server.base_url, redis_url) as child:
            report = await ask(child, task.task_id)
        assert report["status"] == "SUCCEEDED"
        assert report["relayed_in"] == 1  # read from Redis when its watcher started
        assert report["woke"] == 1
        assert report["took"] < 200 * SCALE
        assert queries(sim) == 1


async def test_the_subscription_stops_when_the_client_closes(redis_url: str) -> None:
    pacing = RedisPacing(redis_url, account=ACCOUNT)
    async with serve(sim_config()) as server:
        client = client_for(server, limits=LOADED_MACHINE, pacing=pacing, notifications=FAR)
        async with client:
            await subscribed(client)
            backend = client._life.service.pacing.backend
            assert isinstance(backend, RedisBackend)
        assert not backend.relayed.subscribed.is_set()
        raw = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            listeners = await raw.pubsub_numsub(f"{pacing.namespace}:notices")
        finally:
            await raw.aclose()
        assert listeners == [(f"{pacing.namespace}:notices", 0)]


async def test_a_subscription_cut_by_redis_is_made_again(redis_url: str) -> None:
    pacing = RedisPacing(redis_url, account=ACCOUNT)
    async with (
        serve(sim_config()) as server,
        client_for(server, limits=LOADED_MACHINE, pacing=pacing, notifications=FAR) as one,
        client_for(server, limits=LOADED_MACHINE, pacing=pacing, notifications=FAR) as two,
    ):
        await subscribed(one)
        await subscribed(two)
        backend = two._life.service.pacing.backend
        assert isinstance(backend, RedisBackend)
        raw = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            assert await raw.client_kill_filter(_type="pubsub") >= 2
        finally:
            await raw.aclose()
        # An event published while the subscription is down is lost to it (a waiter
        # that starts later still finds it in Redis); one published once it is made
        # again arrives. Published every 50 ms until one does, for at most 5 s.
        for n in range(100):
            await one.notices.deliver(event_for(f"after-the-cut-{n}", "SUCCEEDED"))
            await asyncio.sleep(0.05)
            if two.notices.unclaimed:
                break
        assert two.notices.unclaimed
        assert two.notices.counts.relayed_in >= 1
        assert backend.relayed.subscribed.is_set()

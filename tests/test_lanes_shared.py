"""Priority lanes across processes sharing pacing through a real Redis.

A web app's process and a batch worker's process on one account: the submit
lock serves interactive waiters of every process first (a bulk one letting at
most MAX_OVERTAKEN by), and a waiter whose process stopped holds nobody back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from benchmarks.redis_server import local_redis
from emoji_async import Lane, RedisPacing
from emoji_async._lane_lock import MAX_OVERTAKEN
from emoji_async._shared import RedisBackend

ACCOUNT = "test"
#: The submit lock's and the leases' expiry here (seconds): a stopped waiter's too.
TTL = 1.0


@pytest.fixture
async def redis_url(tmp_path: Path) -> AsyncIterator[str]:
    """A redis-server of this test's own, on a free loopback port."""
    directory = tmp_path / "redis"
    directory.mkdir()
    async with local_redis(directory) as url:
        yield url


def shared(url: str) -> RedisPacing:
    return RedisPacing(url, account=ACCOUNT, lock_ttl=TTL, lease_ttl=TTL)


# --- the submit lock -------------------------------------------------------------


async def _queued(url: str, count: int) -> None:
    """Until ``count`` submits wait in the account's queue for the lock (a second at most)."""
    connection = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        for _ in range(500):
            if await connection.zcard(f"emoji_async:{ACCOUNT}:submit:waiting") >= count:
                return
            await asyncio.sleep(0.002)
    finally:
        await connection.aclose()


async def _backends(url: str, count: int) -> list[RedisBackend]:
    """``count`` processes' backends, as far as Redis can tell: each its own identity."""
    backends = [RedisBackend(shared(url), None) for _ in range(count)]
    for backend in backends:
        await backend.open()
    return backends


async def test_the_submit_lock_serves_another_processs_interactive_waiters_first_within_the_bound(
    redis_url: str,
) -> None:
    worker, web = await _backends(redis_url, 2)
    order: list[str] = []

    async def take(backend: RedisBackend, name: str, lane: Lane) -> None:
        async with backend.submit_lock(lane):
            order.append(name)
            await asyncio.sleep(0.005)

    try:
        async with worker.submit_lock(Lane.BULK):  # the batch submits; everyone queues up
            waiting = [asyncio.create_task(take(worker, "b1", Lane.BULK))]
            await _queued(redis_url, 1)
            for n in range(5):
                waiting.append(asyncio.create_task(take(web, f"i{n}", Lane.INTERACTIVE)))
                await _queued(redis_url, n + 2)
            waiting.append(asyncio.create_task(take(worker, "b2", Lane.BULK)))
            await _queued(redis_url, 7)
        async with asyncio.timeout(10):
            await asyncio.gather(*waiting)
    finally:
        await worker.aclose()
        await web.aclose()
    # The web app's visitors go first, but the batch's oldest waiter lets only
    # MAX_OVERTAKEN of them by, whichever process each waits in.
    assert order == ["i0", "i1", "i2", "b1", "b2", "i3", "i4"]
    assert MAX_OVERTAKEN == 3


async def test_a_waiter_whose_process_stopped_holds_nobody_back_past_its_lease(
    redis_url: str,
) -> None:
    holder, stopped, waiter = await _backends(redis_url, 3)
    loop = asyncio.get_running_loop()
    got: list[float] = []

    async def take(backend: RedisBackend, lane: Lane) -> None:
        async with backend.submit_lock(lane):
            got.append(loop.time())

    try:
        async with holder.submit_lock(Lane.BULK):
            # An interactive waiter, ahead of the bulk one; then its process stops
            # answering (as a killed one would): nothing renews its place.
            ahead = asyncio.create_task(take(stopped, Lane.INTERACTIVE))
            await _queued(redis_url, 1)
            behind = asyncio.create_task(take(waiter, Lane.BULK))
            await _queued(redis_url, 2)
            looker = stopped._lock._looker
            assert looker is not None
            looker.cancel()
        released = loop.time()
        async with asyncio.timeout(5 * TTL):
            await behind
        assert not ahead.done()
        ahead.cancel()
    finally:
        for backend in (holder, stopped, waiter):
            await backend.aclose()
    assert released + TTL / 2 < got[0] < released + 2 * TTL

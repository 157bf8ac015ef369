"""Priority lanes across processes sharing pacing through a real Redis.

A web app's process and a batch worker's process on one account: the submit
lock serves interactive waiters of every process first (a bulk one letting at
most MAX_OVERTAKEN by), and an interactive task created in one process moves
aside the batch's tasks queued before it in the other. Outcomes are checked
against what the simulator recorded.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from emoji_async import Lane, RedisPacing
from emoji_async._lane_lock import MAX_OVERTAKEN
from emoji_async._shared import RedisBackend
from emoji_async.testing import Simulator, serve

from .conftest import (
    KEY,
    LOADED_MACHINE,
    SCALE,
    cancels_carried_out,
    client_for,
    overtaken,
    sim_config,
    succeeded_by_image,
)
from .lanes_child import ACCOUNT, image

CHILD = Path(__file__).with_name("lanes_child.py")
VISITOR = "https://example.com/visitors/ada.png?sim_duration=60"
#: The submit lock's and the leases' expiry here (seconds): a stopped waiter's too.
TTL = 1.0


def shared(url: str) -> RedisPacing:
    return RedisPacing(url, account=ACCOUNT, lock_ttl=TTL, lease_ttl=TTL)


async def _until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110  (the simulator sets no event)
            await asyncio.sleep(0.002)
    assert condition(), what


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


# --- preemption across processes ----------------------------------------------------


async def _start_batch(
    base_url: str, redis_url: str, tmp_path: Path, count: int
) -> asyncio.subprocess.Process:
    args = [base_url, redis_url, str(tmp_path / "batch.db"), str(SCALE), str(count)]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        *args,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "DASHSCOPE_API_KEY": KEY},
    )


def _one_running_and_queue_behind(sim: Simulator) -> str | None:
    """The running task, when at least two of the batch's tasks are queued behind it."""
    states = sim.task_states()
    running = [task_id for task_id, state in states.items() if state == "RUNNING"]
    queued = collections.Counter(states.values())["PENDING"]
    return running[0] if len(running) == 1 and queued >= 2 else None


async def test_an_interactive_task_in_one_process_moves_aside_another_processs_queued_batch(
    redis_url: str, tmp_path: Path
) -> None:
    count = 6
    async with serve(sim_config()) as server:
        sim = server.simulator
        async with client_for(server, pacing=shared(redis_url), limits=LOADED_MACHINE) as web:
            face = await web.detect(VISITOR)
            child = await _start_batch(server.base_url, redis_url, tmp_path, count)
            try:
                await _until(lambda: _one_running_and_queue_behind(sim) is not None, "a queue")
                # A task that has just started: most of its run is left while the
                # visitor's task is made and the batch moves its queue aside.
                first = _one_running_and_queue_behind(sim)
                await _until(
                    lambda: _one_running_and_queue_behind(sim) not in (None, first), "a start"
                )
                video = await web.generate(VISITOR, "mengwa_kaixin", face=face)
                async with asyncio.timeout(60):
                    out, _ = await child.communicate()
            finally:
                if child.returncode is None:
                    child.kill()
                    await child.wait()
    assert child.returncode == 0
    lines = out.decode().strip().splitlines()
    summary: dict[str, Any] = json.loads(lines[-1])
    told = [line.split()[1:] for line in lines if line.startswith("preempted ")]

    [visitor] = [t for t in sim.tasks() if t.image_url == VISITOR]
    assert video.task_id == visitor.task_id
    assert visitor.scheduled_at is not None
    bulk = [t for t in sim.tasks() if t.image_url != VISITOR]
    running_then = [
        t
        for t in bulk
        if t.scheduled_at is not None
        and t.scheduled_at < visitor.submitted_at
        and (t.ended_at is None or t.ended_at > visitor.submitted_at)
    ]
    queued_then, went_first = overtaken(tuple(bulk), visitor)
    assert len(queued_then) >= 2
    # The visitor's task started when the one running at its submit ended: no
    # task of the batch, in its own process, went first.
    assert went_first == []
    [was_running] = running_then
    assert visitor.scheduled_at == was_running.ended_at
    # Every batch task queued ahead of it was cancelled (free while PENDING) and its
    # job submitted again; each portrait succeeded once, as its job's video.
    moved = [t for t in bulk if t.status == "CANCELED"]
    assert {t.task_id for t in moved} == {t.task_id for t in queued_then if t.scheduled_at is None}
    assert sorted(task_id for task_id, _ in told) == sorted(t.task_id for t in moved)
    assert {by for _, by in told} == {visitor.task_id}
    assert summary["errors"] == []
    # A cancel that reached a task just started is refused, and that task stays its job's.
    carried_out, refused = cancels_carried_out(sim)
    assert summary["preempted"] == len(moved) == carried_out
    assert summary["preempt_cancels"] == carried_out + refused
    portraits = [VISITOR, *(image(n) for n in range(count))]
    assert succeeded_by_image(sim) == collections.Counter(portraits)
    for t in moved:
        [again] = [s for s in bulk if s.image_url == t.image_url and s.status == "SUCCEEDED"]
        assert again.submitted_at > visitor.submitted_at
    for n, task_id in enumerate(summary["videos"]):
        made = sim.task(task_id)
        assert made is not None
        assert (made.image_url, made.status) == (image(n), "SUCCEEDED")

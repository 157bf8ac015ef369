"""A person waiting beside a nightly batch, on one account: today's FIFO against priority lanes.

``python -m benchmarks lanes [--jobs 300] [--time-scale S] [--seed N]`` runs a
bulk batch (``generate_many``) on the provider's limits (the simulator's
defaults: one running task, 1 submit/s) with task run times uniform in 60 to
300 s, while interactive ``generate()`` calls arrive at random (Poisson, one
per ten minutes of provider time on average, seeded) for as long as the batch
runs. Everything is compressed by one time scale.

Four variants, side by side in one run: FIFO and lanes in one process (one
client for both); FIFO and lanes in two processes sharing
:class:`~emoji_async.RedisPacing` (the batch in one child process, the
interactive calls in another, one ``redis-server`` of its own). FIFO is
today's behaviour, the same code with the interactive calls given the bulk
lane. What each variant reports, and the floor the batch is held against:
:mod:`benchmarks.lanes_report`.

``python -m benchmarks.scenarios.lanes batch|visitors ...`` is one child (internal).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from emoji_async import (
    EmojiClient,
    EmojiError,
    EmojiJob,
    Lane,
    RateLimits,
    RedisPacing,
    Template,
)
from emoji_async.testing import SimulatedTask, Simulator, SimulatorConfig, serve, uniform_durations

from .. import ROOT
from ..audit import TaskRecord
from ..lanes_report import (
    DEFAULT_TIME_SCALE,
    LanesReport,
    Settings,
    Visit,
    billed_twice,
    floor_of,
    section,
    split,
)
from ..redis_server import local_redis
from ..simulator import KEY, on_one_clock

__all__ = ["Settings", "main", "run"]

_ACCOUNT = "lanes-bench"


def _batch(jobs: int) -> list[EmojiJob]:
    templates = list(Template)
    return [
        EmojiJob(f"https://example.com/lanes/{n}.png", templates[n % len(templates)], key=f"{n}")
        for n in range(jobs)
    ]


async def _visitors(
    client: EmojiClient,
    stop: asyncio.Event,
    *,
    seed: int,
    mean_gap: float,
    lanes: bool,
) -> tuple[list[Visit], list[str]]:
    """Interactive ``generate()`` calls at Poisson arrivals (``mean_gap`` real s) until ``stop``."""
    rng = random.Random(seed)
    templates = list(Template)
    lane = Lane.INTERACTIVE if lanes else Lane.BULK  # bulk: today's first in, first out
    visits: list[Visit] = []
    failed: list[str] = []

    async def visit(n: int, template: Template) -> None:
        called = time.monotonic()
        try:
            video = await client.generate(
                f"https://example.com/visitor/{n}.png", template, lane=lane
            )
        except EmojiError as exc:
            failed.append(f"{type(exc).__name__}: {exc}")
            return
        visits.append(Visit(called=called, done=time.monotonic(), task_id=video.task_id))

    stopping = asyncio.ensure_future(stop.wait())
    async with asyncio.TaskGroup() as group:
        for n in range(sys.maxsize):
            gap = rng.expovariate(1 / mean_gap)
            template = rng.choice(templates)
            done, _ = await asyncio.wait({stopping}, timeout=gap)
            if done:
                break
            group.create_task(visit(n, template))
    return visits, failed


def _report(
    variant: str,
    settings: Settings,
    sim: Simulator,
    tasks: dict[str, SimulatedTask],
    *,
    visits: Sequence[Visit],
    failed: int,
    started: float,
    ended: float,
    lost: int,
    preempted: int,
    preempt_cancels: int,
) -> LanesReport:
    interactive = {v.task_id for v in visits}
    scale = settings.time_scale
    bulk_images = {job.image for job in _batch(settings.jobs)}
    return LanesReport(
        variant=variant,
        jobs=settings.jobs,
        time_scale=scale,
        splits=tuple(split(v, tasks, scale, {v.task_id for v in visits}) for v in visits),
        interactive_failed=failed,
        makespan=ended - started,
        floor=floor_of(tasks, interactive, started=started, time_scale=scale),
        cancels=sim.stats.requests_by_endpoint.get("cancel", 0),
        moved_aside=sum(
            1 for t in tasks.values() if t.status == "CANCELED" and t.image_url in bulk_images
        ),
        made=len({t.image_url for t in tasks.values() if t.status == "SUCCEEDED"} & bulk_images),
        billed_twice=billed_twice(tasks.values()),
        throttled=sim.stats.throttled,
        lost=lost,
        client_preempted=preempted,
        client_preempt_cancels=preempt_cancels,
    )


def _config(settings: Settings) -> SimulatorConfig:
    return SimulatorConfig(
        time_scale=settings.time_scale,
        durations=uniform_durations(*settings.durations),
        seed=settings.seed,
        render_videos=False,
    )


async def one_process(settings: Settings, *, lanes: bool) -> LanesReport:
    """The batch and the interactive calls on one client, in this process."""
    scale = settings.time_scale
    async with on_one_clock(_config(settings), limits=settings.limits) as (server, client):
        sim = server.simulator
        async with TaskRecord(sim, every=3600 * scale) as record:
            stop = asyncio.Event()
            started = time.monotonic()
            visiting = asyncio.create_task(
                _visitors(
                    client,
                    stop,
                    seed=settings.seed,
                    mean_gap=settings.visit_every * scale,
                    lanes=lanes,
                )
            )
            try:
                outcomes = await client.generate_many(_batch(settings.jobs))
                ended = time.monotonic()
            finally:
                stop.set()
            visits, failed = await visiting
        return _report(
            f"{'lanes' if lanes else 'FIFO'}, 1 process",
            settings,
            sim,
            record.tasks,
            visits=visits,
            failed=len(failed),
            started=started,
            ended=ended,
            lost=sum(not o.ok for o in outcomes),
            preempted=outcomes.preempted,
            preempt_cancels=outcomes.preempt_cancels,
        )


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.scenarios.lanes",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "DASHSCOPE_API_KEY": KEY},
    )


async def _last_line(child: asyncio.subprocess.Process, role: str) -> dict[str, object]:
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the {role} child exited with {child.returncode}")
    answer: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
    return answer


async def two_processes(settings: Settings, redis_url: str, *, lanes: bool) -> LanesReport:
    """The batch in one child process, the interactive calls in another, sharing Redis."""
    scale = settings.time_scale
    common = [redis_url, repr(scale), repr(settings.jitter or -1.0)]
    async with serve(_config(settings)) as server:
        sim = server.simulator
        async with TaskRecord(sim, every=3600 * scale) as record:
            started = time.monotonic()
            children = [
                await _spawn("batch", server.base_url, *common, str(settings.jobs)),
                await _spawn(
                    "visitors",
                    server.base_url,
                    *common,
                    str(settings.seed),
                    repr(settings.visit_every * scale),
                    "lanes" if lanes else "fifo",
                ),
            ]
            try:
                batch = await _last_line(children[0], "batch")
                assert children[1].stdin is not None
                children[1].stdin.close()  # the batch has ended: no more visitors
                visitors = await _last_line(children[1], "visitors")
            finally:
                for child in children:
                    if child.returncode is None:
                        child.kill()
                        await child.wait()
        raw_visits = visitors["visits"]
        assert isinstance(raw_visits, list)
        visits = [Visit(called=c, done=d, task_id=t) for c, d, t in raw_visits]
        failed = visitors["failed"]
        ended, lost = batch["ended"], batch["lost"]
        preempted, cancels = batch["preempted"], batch["preempt_cancels"]
        assert isinstance(failed, list)
        assert isinstance(ended, float)
        assert isinstance(lost, int)
        assert isinstance(preempted, int)
        assert isinstance(cancels, int)
        return _report(
            f"{'lanes' if lanes else 'FIFO'}, 2 processes",
            settings,
            sim,
            record.tasks,
            visits=visits,
            failed=len(failed),
            started=started,
            ended=ended,
            lost=lost,
            preempted=preempted,
            preempt_cancels=cancels,
        )


async def run(
    settings: Settings,
    *,
    processes: Sequence[int] = (1, 2),
    lanes: Sequence[bool] = (False, True),
) -> list[LanesReport]:
    """Every variant of ``settings``: FIFO then lanes, in one process, then in two."""
    reports: list[LanesReport] = []
    if 1 in processes:
        for with_lanes in lanes:
            reports.append(await one_process(settings, lanes=with_lanes))
    if 2 in processes:
        with tempfile.TemporaryDirectory(prefix="emoji-redis-") as directory:
            async with local_redis(Path(directory)) as url:
                for with_lanes in lanes:
                    reports.append(await two_processes(settings, url, lanes=with_lanes))
    return reports


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="interactive jobs beside a bulk batch")
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    settings = Settings(jobs=args.jobs, time_scale=args.time_scale, seed=args.seed)
    reports = asyncio.run(run(settings))
    print(section(settings, reports))


# --- the children ----------------------------------------------------------------


def _client(base_url: str, redis_url: str, scale: float, jitter: float) -> EmojiClient:
    return EmojiClient(
        api_key=KEY,
        base_url=base_url,
        time_scale=scale,
        limits=RateLimits() if jitter < 0 else RateLimits(jitter=jitter),
        pacing=RedisPacing(redis_url, account=_ACCOUNT),
    )


async def _batch_child(
    base_url: str, redis_url: str, scale: float, jitter: float, jobs: int
) -> None:
    async with _client(base_url, redis_url, scale, jitter) as client:
        outcomes = await client.generate_many(_batch(jobs))
        ended = time.monotonic()
    answer = {
        "ended": ended,
        "lost": sum(not o.ok for o in outcomes),
        "preempted": outcomes.preempted,
        "preempt_cancels": outcomes.preempt_cancels,
    }
    print(json.dumps(answer), flush=True)


async def _visitors_child(
    base_url: str, redis_url: str, scale: float, jitter: float, seed: int, gap: float, lanes: bool
) -> None:
    stop = asyncio.Event()
    async with _client(base_url, redis_url, scale, jitter) as client:
        visiting = asyncio.create_task(
            _visitors(client, stop, seed=seed, mean_gap=gap, lanes=lanes)
        )
        await asyncio.to_thread(sys.stdin.read)  # the parent closes it when the batch ends
        stop.set()
        visits, failed = await visiting
    rows = [[v.called, v.done, v.task_id] for v in visits]
    print(json.dumps({"visits": rows, "failed": failed}), flush=True)


def _child(argv: list[str]) -> None:
    role, base_url, redis_url, scale_text, jitter_text, *rest = argv
    scale, jitter = float(scale_text), float(jitter_text)
    if role == "batch":
        asyncio.run(_batch_child(base_url, redis_url, scale, jitter, int(rest[0])))
    else:
        seed, gap, lane = rest
        asyncio.run(
            _visitors_child(
                base_url, redis_url, scale, jitter, int(seed), float(gap), lane == "lanes"
            )
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("batch", "visitors"):
        _child(sys.argv[1:])
    else:
        main(sys.argv[1:])

"""Latency for one job at a time: requests per job against detection lag, per poll schedule.

What a web app or a bot sees on an idle account: a task starts the moment it
is submitted, and the only question is how soon its end is seen and for how
many polls. Each schedule follows the same tasks on the same simulator
(limits off, so every task runs at once: each sees an idle account).

Two run-time distributions: ``broad`` (uniform 60 to 300 s, whatever the
template) and ``narrow`` (each template its own mean, from 60 to 300 s, +-10 %).
Schedules: ours by default (``BACKOFF``), ours ``ADAPTIVE`` (learning from the
20 warm-up tasks, and from each task it sees), and the peers' fixed series
driven by a minimal raw-aiohttp poller: the official SDK 1.x (1, 1, 2, 2, 2,
4, 4, 4, then 5 s), SDK 2.x (1, 2, 4, then 8 s), a fixed 1 s, and the
provider's suggested 15 s. Every interval is scaled by the simulator's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
from collections.abc import Callable, Iterator, Sequence

import aiohttp
import attrs

from emoji_async import EmojiClient, PollPolicy, Template
from emoji_async.testing import SimulatorConfig, SimulatorServer, serve

from ..figures import quantile, spread
from ..simulator import KEY, detection_lag, polls_of

__all__ = ["DISTRIBUTIONS", "SCHEDULES", "LatencyRow", "main", "run", "table"]

WARM_UP = 20
#: Measured tasks run this many at a time: once per template, per wave.
WAVE = len(Template)
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"}


def _broad(rng: random.Random, driven_id: str) -> float:
    return rng.uniform(60.0, 300.0)


_MEANS = {t.value: 60.0 + 240.0 * i / (len(Template) - 1) for i, t in enumerate(Template)}


def _narrow(rng: random.Random, driven_id: str) -> float:
    return _MEANS[driven_id] * rng.uniform(0.9, 1.1)


DISTRIBUTIONS: dict[str, Callable[[random.Random, str], float]] = {
    "broad": _broad,
    "narrow": _narrow,
}


def _series(head: Sequence[float], tail: float) -> Callable[[], Iterator[float]]:
    return lambda: itertools.chain(head, itertools.repeat(tail))


#: The peers' poll intervals, in provider seconds (scaled at run time).
PEER_SERIES: dict[str, Callable[[], Iterator[float]]] = {
    "sdk 1.x": _series([1, 1, 2, 2, 2, 4, 4, 4], 5),
    "sdk 2.x": _series([1, 2, 4], 8),
    "fixed 1 s": _series([], 1),
    "fixed 15 s": _series([], 15),
}
SCHEDULES = ("ours default", "ours adaptive", *PEER_SERIES)


@attrs.frozen
class LatencyRow:
    """One schedule on one distribution: medians over the repeats, with min and max."""

    schedule: str
    distribution: str
    polls_per_job: tuple[float, float, float]
    #: Polls per job in the last wave alone: after the most learning.
    polls_last_wave: tuple[float, float, float]
    lag_p95: tuple[float, float, float]
    lag_p50: tuple[float, float, float]


@attrs.frozen
class _Sample:
    polls: float
    polls_last_wave: float
    lag_p50: float
    lag_p95: float


async def _submit_raw(
    session: aiohttp.ClientSession, server: SimulatorServer, url: str, driven_id: str
) -> str:
    face, ext = server.simulator.boxes_for(url)
    body = {
        "model": "emoji-v1",
        "input": {"image_url": url, "driven_id": driven_id, "face_bbox": face, "ext_bbox": ext},
    }
    headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
    async with session.post(
        server.base_url + "/services/aigc/image2video/video-synthesis", json=body, headers=headers
    ) as resp:
        answer = await resp.json()
    task_id: str = answer["output"]["task_id"]
    return task_id


async def _follow_raw(
    session: aiohttp.ClientSession,
    server: SimulatorServer,
    task_id: str,
    waits: Iterator[float],
    scale: float,
) -> float:
    """Poll ``task_id`` on the series ``waits`` until it ends; when its end was seen."""
    headers = {"Authorization": f"Bearer {KEY}"}
    while True:
        await asyncio.sleep(next(waits) * scale)
        async with session.get(f"{server.base_url}/tasks/{task_id}", headers=headers) as resp:
            status = (await resp.json())["output"]["task_status"]
        if status in TERMINAL:
            return asyncio.get_running_loop().time()


async def _one(
    schedule: str, distribution: str, *, tasks: int, warm_up: int, scale: float, seed: int
) -> _Sample:
    config = SimulatorConfig(
        time_scale=scale,
        limits=None,
        durations=DISTRIBUTIONS[distribution],
        seed=seed,
        render_videos=False,
    )
    templates = list(Template)
    held: dict[str, float] = {}
    async with serve(config) as server, aiohttp.ClientSession() as session:
        sim = server.simulator
        poll = PollPolicy().adaptive() if schedule == "ours adaptive" else PollPolicy()
        async with EmojiClient(
            api_key=KEY, base_url=server.base_url, poll=poll, limits=None, time_scale=scale
        ) as client:

            async def job(n: int) -> str:
                url = f"https://example.com/latency/{n}.png"
                template = templates[n % len(templates)]
                if schedule.startswith("ours"):
                    face, ext = sim.boxes_for(url)
                    task = await client.submit(url, template, face_bbox=face, ext_bbox=ext)
                    await task.wait()
                    held[task.task_id] = asyncio.get_running_loop().time()
                    return task.task_id
                task_id = await _submit_raw(session, server, url, template.value)
                held[task_id] = await _follow_raw(
                    session, server, task_id, PEER_SERIES[schedule](), scale
                )
                return task_id

            # The warm-up teaches the adaptive schedule; every schedule runs it alike. Then
            # the measured tasks, a wave at a time: one job at a time on an idle account,
            # compressed (a wave's tasks run side by side, each on a slot of its own),
            # learning between waves as a one-at-a-time client would between jobs.
            await asyncio.gather(*(job(n) for n in range(warm_up)))
            measured: list[str] = []
            for start in range(warm_up, warm_up + tasks, WAVE):
                end = min(start + WAVE, warm_up + tasks)
                measured += await asyncio.gather(*(job(n) for n in range(start, end)))
        lags: list[float] = []
        polls: list[int] = []
        for task_id in measured:
            truth = sim.task(task_id)
            assert truth is not None
            lags.append(detection_lag(truth, held[task_id]))
            polls.append(polls_of(sim, task_id))
    last_wave = polls[-((len(polls) - 1) % WAVE + 1) :]
    return _Sample(
        statistics.fmean(polls),
        statistics.fmean(last_wave),
        quantile(lags, 0.5),
        quantile(lags, 0.95),
    )


async def run(
    *,
    tasks: int = 80,
    warm_up: int = WARM_UP,
    time_scale: float = 0.01,
    repeats: int = 3,
    schedules: Sequence[str] = SCHEDULES,
    distributions: Sequence[str] = tuple(DISTRIBUTIONS),
) -> list[LatencyRow]:
    """Every schedule on every distribution, ``repeats`` times (seeds 1, 2, ...)."""
    rows = []
    for distribution in distributions:
        for schedule in schedules:
            samples = [
                await _one(
                    schedule,
                    distribution,
                    tasks=tasks,
                    warm_up=warm_up,
                    scale=time_scale,
                    seed=seed,
                )
                for seed in range(1, repeats + 1)
            ]
            rows.append(
                LatencyRow(
                    schedule=schedule,
                    distribution=distribution,
                    polls_per_job=spread([s.polls for s in samples]),
                    polls_last_wave=spread([s.polls_last_wave for s in samples]),
                    lag_p95=spread([s.lag_p95 for s in samples]),
                    lag_p50=spread([s.lag_p50 for s in samples]),
                )
            )
    return rows


def table(rows: Sequence[LatencyRow]) -> str:
    """A Markdown table: median [min-max] over the repeats."""

    def cell(values: tuple[float, float, float], percent: bool) -> str:
        med, lo, hi = values
        if percent:
            return f"{med:.1%} [{lo:.1%}-{hi:.1%}]"
        return f"{med:.1f} [{lo:.1f}-{hi:.1f}]"

    lines = [
        "| distribution | schedule | polls per job | last wave | lag p50 | lag p95 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row.distribution} | {row.schedule} | {cell(row.polls_per_job, False)} "
            f"| {cell(row.polls_last_wave, False)} | {cell(row.lag_p50, True)} "
            f"| {cell(row.lag_p95, True)} |"
        )
    return "\n".join(lines)


def dominated(rows: Sequence[LatencyRow], by: str = "ours adaptive") -> list[str]:
    """The schedules that need no more polls *and* see results no later than ``by`` (medians).

    Empty when no peer dominates ours, which is what the benchmark aims for.
    """
    found = []
    for distribution in {row.distribution for row in rows}:
        mine = next(r for r in rows if r.schedule == by and r.distribution == distribution)
        for row in rows:
            if row.distribution != distribution or row.schedule.startswith("ours"):
                continue
            if row.polls_per_job[0] <= mine.polls_per_job[0] and row.lag_p95[0] <= mine.lag_p95[0]:
                found.append(f"{row.schedule} ({distribution})")
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="latency for one job at a time, per schedule")
    parser.add_argument("--tasks", type=int, default=80, help="measured tasks (after the warm-up)")
    parser.add_argument("--warm-up", type=int, default=WARM_UP)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = asyncio.run(
        run(
            tasks=args.tasks,
            warm_up=args.warm_up,
            time_scale=args.time_scale,
            repeats=args.repeats,
        )
    )
    print(table(rows))
    beaten = dominated(rows)
    print("peers that dominate ours adaptive:", ", ".join(beaten) if beaten else "none")

"""Several processes, one account: pacing shared through Redis against pacing alone.

``python -m benchmarks shared --processes 4 --jobs 50`` runs ``generate_many``
in each of N child processes (their own clients, their own jobs) against one
simulator with the provider's limits, served by this process, with task run
times drawn from 60 to 300 s, everything compressed by one time scale. Once
with :class:`~emoji_async.RedisPacing` (one ``redis-server`` of its own on a
loopback port, in a temporary directory), once with each process pacing
itself alone, for contrast.

The floor is :func:`benchmarks.bulk_report.single_slot_floor`: the sum of the task run times on the
single slot, plus the time until the first submit arrived (child processes
starting included). No set of clients can finish sooner.

``python -m benchmarks.scenarios.shared child ...`` is one child (internal).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from emoji_async import (
    EmojiClient,
    EmojiJob,
    RedisPacing,
    Template,
)
from emoji_async.testing import SimulatedTask, SimulatorConfig, serve, uniform_durations

from .. import ROOT
from ..bulk_report import single_slot_floor
from ..redis_server import local_redis
from ..simulator import KEY

__all__ = ["SharedReport", "main", "peak_in_flight", "run"]


@attrs.frozen
class SharedReport:
    """What one run of N processes measured (times in real seconds, compressed clock)."""

    processes: int
    jobs: int
    pacing: str
    time_scale: float
    makespan: float
    floor: float
    throttled: int
    throttled_by_endpoint: dict[str, int]
    tasks_created: int
    lost: int
    requests_per_job: float
    peak_in_flight: int

    @property
    def ratio(self) -> float:
        return self.makespan / self.floor

    def table(self) -> str:
        per_endpoint = ", ".join(f"{k} {v}" for k, v in sorted(self.throttled_by_endpoint.items()))
        return "\n".join(
            [
                f"pacing                       {self.pacing}",
                f"processes x jobs             {self.processes} x {self.jobs}",
                f"time scale                   {self.time_scale:g}",
                f"makespan / floor             {self.ratio:.4f}"
                f"  ({self.makespan:.2f} s / {self.floor:.2f} s)",
                f"429 answers                  {self.throttled}"
                + (f"  ({per_endpoint})" if per_endpoint else ""),
                f"tasks created / jobs         {self.tasks_created} / {self.processes * self.jobs}",
                f"jobs lost                    {self.lost}",
                f"most tasks in flight at once {self.peak_in_flight}",
                f"requests per job             {self.requests_per_job:.2f}",
            ]
        )


def peak_in_flight(tasks: Sequence[SimulatedTask]) -> int:
    """The most tasks submitted and not yet ended at any one moment (PENDING or RUNNING)."""
    moments = sorted(
        [(t.submitted_at, 1) for t in tasks]
        + [(t.ended_at, -1) for t in tasks if t.ended_at is not None]
    )
    level = peak = 0
    for _, step in moments:  # at one instant an end sorts before a start
        level += step
        peak = max(peak, level)
    return peak


def _jobs(index: int, count: int) -> list[EmojiJob]:
    templates = list(Template)
    return [
        EmojiJob(
            f"https://example.com/shared/{index}/{n}.png",
            templates[(index + n) % len(templates)],
            key=f"p{index}-{n}",
        )
        for n in range(count)
    ]


async def _child(
    base_url: str, redis_url: str | None, scale: float, index: int, count: int, account: str
) -> None:
    pacing = None if redis_url is None else RedisPacing(redis_url, account=account)
    async with EmojiClient(
        api_key=KEY,
        base_url=base_url,
        time_scale=scale,
        pacing=pacing,
    ) as client:
        outcomes = await client.generate_many(_jobs(index, count))
    print(json.dumps({"lost": sum(not o.ok for o in outcomes)}), flush=True)


async def _run_children(
    base_url: str,
    redis_url: str | None,
    *,
    processes: int,
    jobs: int,
    time_scale: float,
    account: str,
) -> int:
    """Start every child at once, wait for all; the jobs they lost."""
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.scenarios.shared",
            "child",
            base_url,
            redis_url or "-",
            str(time_scale),
            str(index),
            str(jobs),
            account,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "DASHSCOPE_API_KEY": KEY},
        )
        for index in range(processes)
    ]
    try:
        outputs = await asyncio.gather(*(child.communicate() for child in children))
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    lost = 0
    for child, (out, _) in zip(children, outputs, strict=True):
        if child.returncode != 0:
            raise RuntimeError(f"a child batch exited with {child.returncode}")
        lost += json.loads(out.decode().strip().splitlines()[-1])["lost"]
    return lost


async def run(
    *,
    processes: int,
    jobs: int,
    time_scale: float,
    redis_url: str | None,
    seed: int = 1,
    durations: tuple[float, float] = (60.0, 300.0),
    account: str = "bench",
) -> SharedReport:
    """N processes of ``jobs`` jobs each against one simulator; shared pacing if ``redis_url``."""
    config = SimulatorConfig(
        time_scale=time_scale,
        durations=uniform_durations(*durations),
        seed=seed,
        render_videos=False,
    )
    async with serve(config) as server:
        sim = server.simulator
        started = time.monotonic()
        lost = await _run_children(
            server.base_url,
            redis_url,
            processes=processes,
            jobs=jobs,
            time_scale=time_scale,
            account=account,
        )
        makespan = time.monotonic() - started
        tasks = sim.tasks()
        floor = single_slot_floor(tasks, started=started, time_scale=time_scale)
        stats = sim.stats
        peak = peak_in_flight(tasks)
    requests = sum(n for name, n in stats.requests_by_endpoint.items() if name != "download")
    return SharedReport(
        processes=processes,
        jobs=jobs,
        pacing="redis" if redis_url is not None else "in-process",
        time_scale=time_scale,
        makespan=makespan,
        floor=floor,
        throttled=stats.throttled,
        throttled_by_endpoint=dict(stats.throttled_by_endpoint),
        tasks_created=stats.tasks_created,
        lost=lost,
        requests_per_job=requests / (processes * jobs),
        peak_in_flight=peak,
    )


async def _compare(args: argparse.Namespace) -> list[SharedReport]:
    reports: list[SharedReport] = []
    settings = {"processes": args.processes, "jobs": args.jobs, "time_scale": args.time_scale}
    if args.pacing in ("redis", "both"):
        with tempfile.TemporaryDirectory(prefix="emoji-redis-") as directory:
            async with local_redis(Path(directory)) as url:
                reports.append(await run(**settings, redis_url=url, seed=args.seed))
    if args.pacing in ("local", "both"):
        reports.append(await run(**settings, redis_url=None, seed=args.seed))
    return reports


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="several processes, one account")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=50, help="jobs per process")
    parser.add_argument("--time-scale", type=float, default=0.003)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pacing", choices=("redis", "local", "both"), default="both")
    args = parser.parse_args(argv)
    print(
        f"{args.processes} processes x {args.jobs} jobs, one account, generate_many defaults,"
        " durations uniform 60-300 s"
    )
    for report in asyncio.run(_compare(args)):
        print(report.table())
        print()


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "child":
        base, redis_arg, scale_text, index_text, count_text, account_name = sys.argv[2:8]
        asyncio.run(
            _child(
                base,
                None if redis_arg == "-" else redis_arg,
                float(scale_text),
                int(index_text),
                int(count_text),
                account_name,
            )
        )
    else:
        main(sys.argv[1:])

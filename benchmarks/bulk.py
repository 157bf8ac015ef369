"""Bulk generation at the provider's limits: how close to the single slot's floor.

N jobs through ``generate_many`` with its defaults, against the simulator with
the provider's limits on (1 detect/s, 1 submit/s, 20 queries/s, one running
task) and task run times drawn from 60 to 300 s, everything compressed by one
time scale. The floor is the sum of the task run times on the single slot,
plus the time until the first submit arrived: no client can finish sooner.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence

import attrs

from emoji_async import EmojiJob, Template
from emoji_async import events as ev
from emoji_async.testing import SimulatedTask, SimulatorConfig, uniform_durations

from ._setup import on_one_clock

__all__ = ["BulkReport", "main", "run", "single_slot_floor"]


def single_slot_floor(
    tasks: Sequence[SimulatedTask], *, started: float, time_scale: float
) -> float:
    """The soonest any client could finish ``tasks`` on one running slot (real seconds).

    The time until the first submit arrived (from ``started``, a
    ``time.monotonic()`` reading), then every task's run time back to back.
    """
    first_submit = min(task.submitted_at for task in tasks)
    return (first_submit - started) + sum(task.duration for task in tasks) * time_scale


@attrs.frozen
class BulkReport:
    """What one bulk run measured (times in real seconds on the compressed clock)."""

    jobs: int
    time_scale: float
    makespan: float
    floor: float
    requests_per_job: float
    throttled: int
    lost: int
    tasks_created: int
    lag_p50: float
    lag_p95: float

    @property
    def ratio(self) -> float:
        return self.makespan / self.floor

    def table(self) -> str:
        return "\n".join(
            [
                f"jobs                         {self.jobs}",
                f"time scale                   {self.time_scale:g}",
                f"makespan / floor             {self.ratio:.4f}"
                f"  ({self.makespan:.2f} s / {self.floor:.2f} s)",
                f"requests per job             {self.requests_per_job:.2f}",
                f"429 answers                  {self.throttled}",
                f"jobs lost                    {self.lost}",
                f"tasks created per job        {self.tasks_created / self.jobs:.2f}",
                f"detection lag p50 / p95      {self.lag_p50:.1%} / {self.lag_p95:.1%}"
                " of task run time",
            ]
        )


async def run(*, jobs: int, time_scale: float, seed: int = 1) -> BulkReport:
    """Run ``jobs`` jobs through ``generate_many`` and report what was measured."""
    config = SimulatorConfig(
        time_scale=time_scale,
        durations=uniform_durations(60, 300),
        seed=seed,
        render_videos=False,
    )
    templates = list(Template)
    batch = [
        EmojiJob(f"https://example.com/bulk/{n}.png", templates[n % len(templates)], key=f"{n}")
        for n in range(jobs)
    ]
    held: dict[str, float] = {}

    def on_event(event: ev.JobEvent) -> None:
        if isinstance(event, ev.Succeeded):
            held[event.task_id] = event.at

    async with on_one_clock(config) as (server, client):
        sim = server.simulator
        started = time.monotonic()
        outcomes = await client.generate_many(batch, on_event=on_event)
        makespan = time.monotonic() - started
        tasks = sim.tasks()
        floor = single_slot_floor(tasks, started=started, time_scale=time_scale)
        lags = [
            (held[t.task_id] - t.ended_at) / (t.ended_at - t.scheduled_at)
            for t in tasks
            if t.task_id in held and t.ended_at is not None and t.scheduled_at is not None
        ]
        stats = sim.stats
        requests = sum(
            n for endpoint, n in stats.requests_by_endpoint.items() if endpoint != "download"
        )
    cuts = statistics.quantiles(lags, n=100, method="inclusive") if len(lags) > 1 else lags * 99
    return BulkReport(
        jobs=jobs,
        time_scale=time_scale,
        makespan=makespan,
        floor=floor,
        requests_per_job=requests / jobs,
        throttled=stats.throttled,
        lost=sum(not o.ok for o in outcomes),
        tasks_created=stats.tasks_created,
        lag_p50=cuts[49],
        lag_p95=cuts[94],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="bulk generation at the provider's limits")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--time-scale", type=float, default=0.003)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    report = asyncio.run(run(jobs=args.jobs, time_scale=args.time_scale, seed=args.seed))
    print("bulk at the provider's limits, generate_many defaults, durations uniform 60-300 s")
    print(report.table())

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
import time

from emoji_async import EmojiJob, RateLimits, Template
from emoji_async import events as ev
from emoji_async.testing import SimulatorConfig, uniform_durations

from ..bulk_report import BulkReport, single_slot_floor
from ..figures import percentiles
from ..simulator import detection_lag, on_one_clock

__all__ = ["main", "run"]


async def run(
    *, jobs: int, time_scale: float, seed: int = 1, limits: RateLimits | None = None
) -> BulkReport:
    """Run ``jobs`` jobs through ``generate_many`` and report what was measured.

    ``limits``: the client's pacing if not the default, for the suite's checks only.
    """
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

    async with on_one_clock(config, limits=limits) as (server, client):
        sim = server.simulator
        started = time.monotonic()
        outcomes = await client.generate_many(batch, on_event=on_event)
        makespan = time.monotonic() - started
        tasks = sim.tasks()
        floor = single_slot_floor(tasks, started=started, time_scale=time_scale)
        lags = [
            detection_lag(t, held[t.task_id])
            for t in tasks
            if t.task_id in held and t.ended_at is not None and t.scheduled_at is not None
        ]
        stats = sim.stats
        requests = sum(
            n for endpoint, n in stats.requests_by_endpoint.items() if endpoint != "download"
        )
    cuts = percentiles(lags)
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

"""One job at a time on an idle account: what a web app or a bot sees.

For each job: detect, submit, wait with the client's default poll policy (on
the simulator's compressed clock). Measured: requests per job, polls per job,
and the detection lag (from the moment the simulator ended the task to the
moment ``wait()`` returned) as a fraction of the task's run time.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import attrs

from emoji_async import Template
from emoji_async.testing import SimulatorConfig, uniform_durations

from ..figures import quantile
from ..simulator import detection_lag, on_one_clock, polls_of

__all__ = ["SingleJobReport", "main", "run"]


@attrs.frozen
class SingleJobReport:
    """What one run measured."""

    jobs: int
    time_scale: float
    requests_per_job: float
    polls_per_job: float
    lag_p50: float
    lag_p95: float
    throttled: int
    tasks_created: int
    wall_seconds: float

    def table(self) -> str:
        return "\n".join(
            [
                f"jobs                      {self.jobs}",
                f"time scale                {self.time_scale:g}",
                f"requests per job          {self.requests_per_job:.2f}",
                f"polls per job             {self.polls_per_job:.2f}",
                f"detection lag p50         {self.lag_p50:.1%} of task run time",
                f"detection lag p95         {self.lag_p95:.1%} of task run time",
                f"429 answers               {self.throttled}",
                f"tasks created             {self.tasks_created}",
                f"wall time                 {self.wall_seconds:.1f} s",
            ]
        )


async def run(*, jobs: int, time_scale: float, seed: int = 1) -> SingleJobReport:
    """Run ``jobs`` jobs one after another and report what was measured."""
    config = SimulatorConfig(time_scale=time_scale, durations=uniform_durations(60, 300), seed=seed)
    templates = list(Template)
    lags: list[float] = []
    polls: list[int] = []
    started = time.monotonic()
    async with on_one_clock(config) as (server, client):
        sim = server.simulator
        for n in range(jobs):
            url = f"https://example.com/bench/{n}.png"
            face = await client.detect(url)
            task = await client.submit(
                url,
                templates[n % len(templates)],
                face_bbox=face.face_bbox,
                ext_bbox=face.ext_bbox,
            )
            await task.wait()
            held = time.monotonic()
            truth = sim.task(task.task_id)
            assert truth is not None
            lags.append(detection_lag(truth, held))
            polls.append(polls_of(sim, task.task_id))
        stats = sim.stats
        requests = sum(1 for r in sim.requests if r.endpoint != "download")
    return SingleJobReport(
        jobs=jobs,
        time_scale=time_scale,
        requests_per_job=requests / jobs,
        polls_per_job=sum(polls) / jobs,
        lag_p50=quantile(lags, 0.50),
        lag_p95=quantile(lags, 0.95),
        throttled=stats.throttled,
        tasks_created=stats.tasks_created,
        wall_seconds=time.monotonic() - started,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--time-scale", type=float, default=0.005)
    args = parser.parse_args(argv)
    report = asyncio.run(run(jobs=args.jobs, time_scale=args.time_scale))
    print("single job at a time, default poll policy, durations uniform 60-300 s")
    print(report.table())

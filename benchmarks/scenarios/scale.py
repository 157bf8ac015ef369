"""Scale: ten thousand tasks in flight in one client process.

``generate_many(jobs, concurrency=tasks)`` on one ``EmojiClient`` (limits off,
boxes given) against a simulator in another process whose tasks all run
``task_seconds``: long enough that every task is submitted before the first
one ends, so all of them are in flight at once (the table shows the peak,
counted from the batch's own events). ``generate_many`` rather than
``submit`` + ``wait``: it is how a user puts ten thousand jobs in flight, and
it runs everything a batch adds per job (its semaphore, events, the task
board) on top of the polls.

The poll policy is pinned to the batch waits of the provider's suggestion
(first poll 15 s after the submit, growing 1.5x to a 60 s cap, 10 % jitter,
on the simulator's clock), so the scenario measures holding ten thousand
tasks, not where a schedule places polls.

Measured in the client process, over the whole batch:

* RSS growth: the peak (sampled every 50 ms by a thread) minus the RSS just
  before the batch (after a small unmeasured warm-up batch);
* event-loop lag: a ticker sleeps 10 ms over and over and records how late
  it wakes; p50, p99, the worst and when it came;
* the garbage collector (``gc.callbacks``): full passes, their total time,
  and the longest pause of any pass, the usual cause of the worst lags;
* TCP connections to the simulator, against the client's pool limit: the
  most open at once as ``psutil`` saw them in the client process (sampled
  every 250 ms) and as the simulator's server counted them (until it
  notices a close, so a connection the client just swapped for a new one
  can count twice for a moment: an upper bound), and how many were opened
  during the batch (the client's pool closes a connection idle for 15 s, so
  quiet spells between poll waves reopen some).

Each repeat runs in a fresh process (``isolated``), so memory freed by one
repeat but kept by the allocator does not flatter the next.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence

import attrs

from emoji_async import EmojiClient, EmojiJob, PollPolicy, Template
from emoji_async import events as ev

from .. import ROOT
from ..figures import percentiles, spread_text
from ..meters import GcWatch, Sampler, record_loop_lag, rss_mb
from ..simproc import detected_boxes, simulator_process
from ..simulator import KEY

__all__ = ["ScaleReport", "ScaleSample", "main", "measure", "run", "table"]

IMAGE = "https://example.com/bench/scale.png"
#: Warm-up tasks end at once (a simulator trigger), polled 10 ms after the submit.
WARMUP_IMAGE = "https://example.com/bench/warmup.png?sim_duration=0"


@attrs.frozen
class ScaleSample:
    """One repeat."""

    tasks: int
    task_seconds: float
    succeeded: int
    tasks_created: int
    peak_in_flight: int
    wall_seconds: float
    cpu_seconds: float
    requests: int
    rss_before_mb: float
    rss_peak_mb: float
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    lag_max_at_s: float
    ticks: int
    gc_full_collections: int
    gc_full_seconds: float
    gc_worst_pause_ms: float
    pool_limit: int
    connections_peak: int
    connections_peak_sampled: int
    connections_opened: int

    @property
    def rss_growth_mb(self) -> float:
        return self.rss_peak_mb - self.rss_before_mb


@attrs.frozen
class ScaleReport:
    """Every repeat of one configuration."""

    tasks: int
    task_seconds: float
    samples: tuple[ScaleSample, ...]


def _pool_limit(client: EmojiClient) -> int:
    # The connector EmojiClient.open() builds; read, not assumed, so a change there shows.
    session = client._life.session
    assert session is not None
    return int(session.connector.limit) if session.connector is not None else 0


def _jobs(image: str, count: int, face: list[int], ext: list[int], prefix: str) -> list[EmojiJob]:
    templates = list(Template)
    return [
        EmojiJob(
            image, templates[n % len(templates)], face_bbox=face, ext_bbox=ext, key=f"{prefix}{n}"
        )
        for n in range(count)
    ]


async def measure(*, tasks: int = 10_000, task_seconds: float = 60.0) -> ScaleSample:
    """One repeat in this process (the simulator in another)."""
    poll = PollPolicy(wait_first=15.0, wait_factor=1.5, wait_max=60.0, wait_jitter=0.1)
    # Every task runs 60 provider seconds; the clock makes that ``task_seconds`` real ones.
    scale = task_seconds / 60.0
    poll = poll.scaled(scale)
    # Bounded: the submits, the tasks' run, the polls that see them end, and slack.
    budget = 120.0 + 3 * task_seconds + tasks / 100
    async with simulator_process(task_seconds=60.0, time_scale=scale) as sim:
        port = int(sim.base_url.split(":")[2].split("/")[0])
        face, ext = await detected_boxes(sim.base_url, IMAGE)
        warm_face, warm_ext = await detected_boxes(sim.base_url, WARMUP_IMAGE)
        jobs = _jobs(IMAGE, tasks, face, ext, "")
        in_flight = 0
        peak = 0

        def on_event(event: ev.JobEvent) -> None:
            nonlocal in_flight, peak
            if isinstance(event, ev.Submitted):
                in_flight += 1
                peak = max(peak, in_flight)
            elif isinstance(event, ev.Succeeded) or (
                isinstance(event, ev.Failed) and event.task_id is not None
            ):
                in_flight -= 1

        async with EmojiClient(api_key=KEY, base_url=sim.base_url, limits=None) as client:
            warm = _jobs(WARMUP_IMAGE, 20, warm_face, warm_ext, "warm-")
            quick = PollPolicy(wait_first=0.01, wait_factor=1.0, wait_max=0.01, wait_jitter=0.0)
            await client.generate_many(warm, concurrency=20, poll=quick)
            pool_limit = _pool_limit(client)
            lags: list[tuple[float, float]] = []
            before = await sim.counters()
            rss_before = rss_mb()
            sampler = Sampler(port)
            collector = GcWatch()
            with sampler.running(), collector.installed():
                ticker = asyncio.create_task(record_loop_lag(lags))
                cpu, wall = time.process_time(), time.perf_counter()
                started = wall
                try:
                    async with asyncio.timeout(budget):
                        outcomes = await client.generate_many(
                            jobs, concurrency=tasks, poll=poll, on_event=on_event
                        )
                finally:
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                    ticker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await ticker
            seen = (await sim.counters()).since(before)
    late = [lag for _, lag in lags]
    cuts = percentiles(late)
    worst_at, worst = max(lags, key=lambda tick: tick[1], default=(started, 0.0))
    return ScaleSample(
        tasks=tasks,
        task_seconds=task_seconds,
        succeeded=sum(outcome.ok for outcome in outcomes),
        tasks_created=seen.tasks_created,
        peak_in_flight=peak,
        wall_seconds=wall,
        cpu_seconds=cpu,
        requests=seen.api_requests,
        rss_before_mb=rss_before,
        rss_peak_mb=sampler.rss_peak,
        lag_p50_ms=cuts[49] * 1000,
        lag_p99_ms=cuts[98] * 1000,
        lag_max_ms=worst * 1000,
        lag_max_at_s=worst_at - started,
        ticks=len(lags),
        gc_full_collections=collector.full_collections,
        gc_full_seconds=collector.full_seconds,
        gc_worst_pause_ms=collector.worst_pause * 1000,
        pool_limit=pool_limit,
        connections_peak=seen.connections_peak,
        connections_peak_sampled=sampler.connections_peak,
        connections_opened=seen.connections_opened,
    )


async def _measure_isolated(*, tasks: int, task_seconds: float) -> ScaleSample:
    """One repeat in a fresh Python process (``python -m benchmarks.scenarios.scale --child``)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.scenarios.scale",
        "--child",
        "--tasks",
        str(tasks),
        "--task-seconds",
        repr(task_seconds),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        out, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"the scale repeat failed (exit status {process.returncode})")
    return ScaleSample(**json.loads(out.decode().strip().splitlines()[-1]))


async def run(
    *,
    tasks: int = 10_000,
    repeats: int = 3,
    task_seconds: float = 60.0,
    isolated: bool = True,
) -> ScaleReport:
    """``repeats`` repeats of ``tasks`` tasks in flight, each in a fresh process if ``isolated``."""
    samples = []
    for _ in range(repeats):
        if isolated:
            samples.append(await _measure_isolated(tasks=tasks, task_seconds=task_seconds))
        else:
            samples.append(await measure(tasks=tasks, task_seconds=task_seconds))
    return ScaleReport(tasks=tasks, task_seconds=task_seconds, samples=tuple(samples))


# --- the table -----------------------------------------------------------------------


def table(report: ScaleReport) -> str:
    """The report as printed: medians over the repeats, [min-max] beside them."""
    samples = report.samples

    def row(label: str, values: Sequence[float], fmt: str, target: str = "") -> str:
        return f"{label:34} {spread_text(values, fmt):26} {target}".rstrip()

    pool = max(s.pool_limit for s in samples)
    return "\n".join(
        [
            f"scale: {report.tasks} tasks in flight in one process x {len(samples)} repeats"
            f" (each in a fresh process), tasks run {report.task_seconds:g} s, limits off",
            "simulator in its own process; it shares the machine's cores with the client",
            "median [min-max] over the repeats",
            "",
            row("jobs succeeded", [s.succeeded for s in samples], ".0f"),
            row("tasks created", [s.tasks_created for s in samples], ".0f"),
            row("peak tasks in flight", [s.peak_in_flight for s in samples], ".0f"),
            row("wall s", [s.wall_seconds for s in samples], ".1f"),
            row("client CPU s", [s.cpu_seconds for s in samples], ".1f"),
            row(
                "client CPU ms per task",
                [s.cpu_seconds / s.tasks * 1000 for s in samples],
                ".3f",
            ),
            row("requests per task", [s.requests / s.tasks for s in samples], ".2f"),
            row("RSS before MB", [s.rss_before_mb for s in samples], ".1f"),
            row("RSS growth MB", [s.rss_growth_mb for s in samples], ".1f", "target <= 100"),
            row("loop lag p50 ms", [s.lag_p50_ms for s in samples], ".1f"),
            row("loop lag p99 ms", [s.lag_p99_ms for s in samples], ".1f", "target <= 50"),
            row("loop lag max ms", [s.lag_max_ms for s in samples], ".1f"),
            row("  ... at s into the batch", [s.lag_max_at_s for s in samples], ".1f"),
            row("full GC passes", [s.gc_full_collections for s in samples], ".0f"),
            row("full GC s", [s.gc_full_seconds for s in samples], ".2f"),
            row("worst GC pause ms", [s.gc_worst_pause_ms for s in samples], ".1f"),
            row(
                "connections open at once (psutil)",
                [s.connections_peak_sampled for s in samples],
                ".0f",
                f"pool limit {pool} (client, sampled every 250 ms)",
            ),
            row(
                "connections open at once (server)",
                [s.connections_peak for s in samples],
                ".0f",
                "upper bound: until the server sees each close",
            ),
            row(
                "connections opened in the batch",
                [s.connections_opened for s in samples],
                ".0f",
            ),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ten thousand tasks in flight in one process")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--task-seconds", type=float, default=60.0, help="real seconds each task runs"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="run every repeat in this process"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sample = asyncio.run(measure(tasks=args.tasks, task_seconds=args.task_seconds))
        print(json.dumps(attrs.asdict(sample)), flush=True)
        return
    report = asyncio.run(
        run(
            tasks=args.tasks,
            repeats=args.repeats,
            task_seconds=args.task_seconds,
            isolated=not args.in_process,
        )
    )
    print(table(report))


if __name__ == "__main__":
    main()

"""Scenario 1, bulk at the provider's limits: every competitor in one run, side by side.

N jobs (boxes given), the simulator's default limits (1 submit/s, one running
task, 20 queries/s), task run times uniform in 60 to 300 s, everything
compressed by one time scale. Each competitor (:mod:`benchmarks.competitors`)
runs in a child process of its own against a fresh simulator with the same
config and seed, so the k-th task any of them creates runs the same time.

Per competitor and run (:class:`benchmarks.bulk_report.BulkReport`):

* makespan / floor: the makespan is the competitor's own ``run`` call, timed
  in its process; the floor is (first accepted submit's arrival - start) +
  the sum of the N run times the job set draws, times the time scale: what a
  client that kept the single slot busy from its first submit would take.
  The same N run times for every competitor, whatever it lost or duplicated;
* requests per job (API requests the simulator received / N), 429 answers,
  jobs lost, tasks created per job;
* detection lag p50 / p95: (client held the video URL - task ended) / (task
  ended - task started), over the jobs held.

Each figure is reported as the median over ``repeats`` runs, with its min-max
spread. Two more columns say how far the compression could be trusted: the
p95 loop lag of the client's process and of the simulator's, in provider
seconds (real lag / time scale). Time compresses; the CPU a request costs does
not, so a client (or a simulator) busier than its core runs its timers late,
and a late timer on a compressed clock is a long delay in provider time.

``python -m benchmarks bulk [--jobs 200] [--time-scale S] [--repeats 3]
[--only ours,raw]`` prints the table (:func:`benchmarks.bulk_report.table`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from emoji_async import EmojiClient, RateLimits, Template
from emoji_async.testing import (
    SimulatedTask,
    Simulator,
    SimulatorConfig,
    serve,
    uniform_durations,
)

from ..bulk_report import DURATIONS, BulkReport, Measurement, Row, table
from ..competitors import API_KEY, COMPETITORS, Competitor, JobSpec, competitor
from ..competitors import sdk1 as sdk1_module
from ..competitors._isolation import ChildRun, LoopLag, measure_loop_lag, run_in_child
from ..figures import p50_p95
from ..simulator import detection_lag

__all__ = [
    "DEFAULT_JOBS",
    "default_time_scale",
    "main",
    "prepare_jobs",
    "run",
]

DEFAULT_JOBS = 200
#: Real seconds one run of one competitor should take at the default time scale.
TARGET_SECONDS = 60.0


def default_time_scale(jobs: int) -> float:
    """The time scale at which the floor of ``jobs`` jobs lasts about a minute."""
    mean = sum(DURATIONS) / 2
    return TARGET_SECONDS / (max(jobs, 1) * mean)


async def prepare_jobs(count: int) -> list[JobSpec]:
    """``count`` jobs with the boxes detection returns for them (the same on every simulator).

    Detected once, on a simulator without limits by a client that does not
    pace itself, before anything is timed.
    """
    templates = list(Template)
    specs: list[JobSpec] = []
    config = SimulatorConfig(limits=None, render_videos=False)
    async with (
        serve(config) as server,
        EmojiClient(
            api_key=API_KEY, base_url=server.base_url, limits=RateLimits().scaled(1e-6)
        ) as client,
    ):
        for n in range(count):
            url = f"https://example.com/bulk/{n}.png"
            face = await client.detect(url)
            specs.append(
                JobSpec(
                    key=f"{n}",
                    image_url=url,
                    driven_id=templates[n % len(templates)].value,
                    face_bbox=face.face_bbox.as_list(),
                    ext_bbox=face.ext_bbox.as_list(),
                )
            )
    return specs


def simulator_config(time_scale: float, seed: int) -> SimulatorConfig:
    """The simulator every competitor faces: default limits, 60-300 s run times, no videos."""
    return SimulatorConfig(
        time_scale=time_scale,
        durations=uniform_durations(*DURATIONS),
        seed=seed,
        render_videos=False,
    )


def drawn_durations(config: SimulatorConfig, jobs: Sequence[JobSpec]) -> list[float]:
    """The run times (provider seconds) of the first ``len(jobs)`` tasks a simulator creates.

    The simulator draws one from ``random.Random(seed)`` per created task, in
    creation order, and from nothing else; ``_check_durations`` verifies it.
    """
    rng = random.Random(config.seed)
    return [float(config.durations(rng, spec.driven_id)) for spec in jobs]


@asynccontextmanager
async def _recording_tasks(sim: Simulator, every: float) -> AsyncIterator[dict[str, SimulatedTask]]:
    """Every task the simulator held while the block ran, in its last state seen.

    The simulator forgets a task 24 provider hours after its submission, which a
    slow competitor's run can outlast, so its tasks are read every ``every`` s.
    """
    seen: dict[str, SimulatedTask] = {}

    def read() -> None:
        for task in sim.tasks():
            seen[task.task_id] = task

    async def keep_reading() -> None:
        while True:
            await asyncio.sleep(every)
            read()

    reader = asyncio.create_task(keep_reading())
    try:
        yield seen
    finally:
        reader.cancel()
        try:
            await reader
        except asyncio.CancelledError:
            if (current := asyncio.current_task()) is not None and current.cancelling():
                raise
        read()


def _check_durations(tasks: list[SimulatedTask], drawn: list[float]) -> None:
    for index, (task, expected) in enumerate(zip(tasks, drawn, strict=False)):
        if task.duration != expected:
            raise RuntimeError(
                f"task {index} ran {task.duration} s, not the {expected} s the seed drew:"
                " the simulator no longer draws run times as this scenario assumes"
            )


_IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _reason(error: str) -> str:
    """A loss reason without the ids that make every message unique."""
    return _IDS.sub("<id>", error)[:120]


def _measure(
    child: ChildRun,
    tasks: dict[str, SimulatedTask],
    sim: Simulator,
    jobs: Sequence[JobSpec],
    drawn: list[float],
    time_scale: float,
    simulator_lag: LoopLag,
) -> Measurement:
    created = sorted(tasks.values(), key=lambda t: t.submitted_at)
    _check_durations(created, drawn)
    stats = sim.stats.snapshot()
    if created:
        first_submit = created[0].submitted_at
    else:
        arrivals = [r.at for r in sim.requests if r.endpoint == "submit"]
        first_submit = min(arrivals, default=child.started)
    floor = (first_submit - child.started) + sum(drawn) * time_scale
    lags = []
    for result in child.results:
        task = tasks.get(result.task_id or "")
        if result.held_at is None or task is None or task.status != "SUCCEEDED":
            continue
        if task.ended_at is None or task.scheduled_at is None or task.ended_at > result.held_at:
            continue
        lags.append(detection_lag(task, result.held_at))
    p50, p95 = p50_p95(lags)
    requests = sum(
        n
        for endpoint, n in stats.requests_by_endpoint.items()
        if endpoint not in {"download", "sample"}
    )
    losses = collections.Counter(_reason(r.error or "?") for r in child.results if not r.held)
    report = BulkReport(
        jobs=len(jobs),
        time_scale=time_scale,
        makespan=child.finished - child.started,
        floor=floor,
        requests_per_job=requests / len(jobs),
        throttled=stats.throttled,
        lost=sum(not r.held for r in child.results),
        tasks_created=stats.tasks_created,
        lag_p50=p50,
        lag_p95=p95,
    )
    return Measurement(
        report,
        child.loop_lag,
        simulator_lag,
        dict(losses),
        results=tuple(child.results),
        verified=len(lags),
    )


async def measure(
    entry: Competitor,
    jobs: list[JobSpec],
    *,
    time_scale: float,
    seed: int = 1,
    first_on_path: Path | None = None,
) -> Measurement:
    """One run of one competitor against a fresh simulator."""
    config = simulator_config(time_scale, seed)
    drawn = drawn_durations(config, jobs)
    async with serve(config) as server:
        sim = server.simulator
        async with (
            measure_loop_lag() as lag,
            _recording_tasks(sim, every=3600 * time_scale) as tasks,
        ):
            child = await run_in_child(
                entry.target,
                server.base_url,
                jobs,
                time_scale=time_scale,
                first_on_path=first_on_path,
            )
        if len(child.results) != len(jobs):
            raise RuntimeError(
                f"{entry.name} answered {len(child.results)} results for {len(jobs)}"
            )
        return _measure(child, tasks, sim, jobs, drawn, time_scale, LoopLag.of(lag))


def _chosen(only: Iterable[str] | None) -> list[Competitor]:
    if only is None:
        return list(COMPETITORS)
    names = list(only)
    return [competitor(name) for name in names]


async def run(
    *,
    jobs: int = DEFAULT_JOBS,
    time_scale: float | None = None,
    repeats: int = 3,
    only: Iterable[str] | None = None,
    seed: int = 1,
    sdk1_dir: str | Path | None = None,
    install_sdk1: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Run each chosen competitor ``repeats`` times; one row each, in ``COMPETITORS`` order.

    The repeats go round the competitors in turn, so a slow spell of the
    machine touches each of them alike. The SDK 1.x is installed once
    (``pip``) when missing and ``install_sdk1``; if that fails its row is
    skipped, with the reason.
    """
    if jobs < 1 or repeats < 1:
        raise ValueError(f"need jobs >= 1 and repeats >= 1, got {jobs}, {repeats}")
    scale = time_scale if time_scale is not None else default_time_scale(jobs)
    say = progress or (lambda _: None)
    chosen = _chosen(only)
    specs = await prepare_jobs(jobs)
    skipped: dict[str, str] = {}
    sdk1_path: Path | None = None
    if any(entry.needs_sdk1 for entry in chosen):
        try:
            sdk1_path, version = await sdk1_module.ensure(sdk1_dir, allow_install=install_sdk1)
            say(f"dashscope {version} from {sdk1_path}")
        except sdk1_module.Sdk1UnavailableError as exc:
            for entry in chosen:
                if entry.needs_sdk1:
                    skipped[entry.name] = str(exc)
            say(f"sdk1 skipped: {exc}")
    runs: dict[str, list[Measurement]] = {entry.name: [] for entry in chosen}
    for repeat in range(repeats):
        for entry in chosen:
            if entry.name in skipped:
                continue
            say(f"repeat {repeat + 1}/{repeats}: {entry.name} ...")
            measurement = await measure(
                entry,
                specs,
                time_scale=scale,
                seed=seed,
                first_on_path=sdk1_path if entry.needs_sdk1 else None,
            )
            runs[entry.name].append(measurement)
            report = measurement.report
            say(
                f"  {entry.name}: makespan {report.makespan:.1f} s, ratio {report.ratio:.3f},"
                f" lost {report.lost}, {report.requests_per_job:.1f} requests/job"
            )
    return [
        Row(
            competitor=entry.name,
            description=entry.description,
            jobs=jobs,
            time_scale=scale,
            shortest_wait=entry.shortest_wait,
            runs=tuple(runs[entry.name]),
            skipped=skipped.get(entry.name),
        )
        for entry in chosen
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks bulk",
        description="Scenario 1: bulk at the provider's limits, every competitor side by side",
    )
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS)
    parser.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help="real seconds per provider second (default: a floor of about a minute)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--only", default=None, help=f"comma-separated, of {','.join(c.name for c in COMPETITORS)}"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sdk1-dir", default=None, help="where dashscope 1.x is (or goes)")
    parser.add_argument(
        "--no-install", action="store_true", help="skip the SDK 1.x row rather than pip-install it"
    )
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    rows = asyncio.run(
        run(
            jobs=args.jobs,
            time_scale=args.time_scale,
            repeats=args.repeats,
            only=only,
            seed=args.seed,
            sdk1_dir=args.sdk1_dir,
            install_sdk1=not args.no_install,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    )
    print(table(rows))


if __name__ == "__main__":
    main()

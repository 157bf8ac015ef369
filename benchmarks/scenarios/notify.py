"""Waiting on task-finished notifications against adaptive polling, side by side in one run.

The simulator plays EventBridge (``notify_targets``): each task's end is
delivered, signed, to the package's receiver on loopback, which hands it to
the client (``EmojiClient(notifications=NotifyPolicy(...))``). Variants:

* **one job at a time** (detect, submit, ``wait()``): adaptive polling (no
  notifications) against events 1-5 s late and the documented 1-90 s, each
  with none and a tenth of the events lost; and, with 1-90 s events, the
  safety net varied (``start/grace/growth`` in the variant's name), for the
  curve of requests per job against lag;
* **a batch** (``generate_many``): adaptive polling against events 1-5 s late.

Per variant: requests per job after detection (submits, queries, lists;
detections are the same in every variant and not counted), the detection lag
(the task's end to ``wait()`` returning or the batch's ``Succeeded`` event,
in provider seconds), the jobs that completed, the queries beyond one per job
(the safety net's polls, and any poll a refuted event cost), the events the
simulator lost, and portraits billed twice (images with more than one
SUCCEEDED task). A batch is held against the single slot's floor.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import attrs

from emoji_async import EmojiClient, EmojiJob, NotifyPolicy, Template
from emoji_async import events as ev
from emoji_async.notify import NoticeSink, TaskFinished
from emoji_async.testing import (
    Simulator,
    SimulatorConfig,
    SimulatorServer,
    receiving,
    uniform_durations,
)

from ..bulk_report import single_slot_floor
from ..figures import quantile
from ..simulator import on_one_clock

__all__ = ["CURVE", "Row", "Settings", "main", "run", "section", "table"]

#: The safety nets of the curve, besides the default: ``(start, grace, growth)``, from
#: the sparsest to the closest to adaptive polling.
CURVE = ((1.0, 1.0, 2.0), (0.5, 10.0, 2.0), (0.0, 30.0, 1.5), (0.0, 10.0, 1.2), (0.0, 5.0, 1.1))
#: The run times of every variant, provider seconds (as scenarios 1 and 2).
DURATIONS = (60.0, 300.0)


@attrs.frozen
class Settings:
    """The size of one run."""

    single_jobs: int = 30
    #: Jobs run before each one-job variant is measured, so that the run-time model
    #: both adaptive polling and the safety net use has seen the templates.
    warm_up: int = 20
    batch_jobs: int = 200
    time_scale: float = 0.002
    seed: int = 1


@attrs.frozen
class Row:
    """What one variant measured."""

    name: str
    jobs: int
    completed: int
    requests_per_job: float
    queries_per_job: float
    extra_queries: int
    lag_p50: float
    lag_p95: float
    events_lost: int
    billed_twice: int
    makespan_over_floor: float | None = None


class _Forward:
    """The receiver's sink before the client exists: the simulator must know the
    receiver's URL before it starts, and the client the simulator's."""

    def __init__(self) -> None:
        self.to: NoticeSink | None = None

    async def deliver(self, event: TaskFinished) -> None:
        assert self.to is not None, "events come only once the client is made"
        await self.to.deliver(event)


def _config(settings: Settings, **knobs: object) -> SimulatorConfig:
    return SimulatorConfig(
        time_scale=settings.time_scale,
        durations=uniform_durations(*DURATIONS),
        seed=settings.seed,
        render_videos=False,
        notify_seed=settings.seed,
        **knobs,  # type: ignore[arg-type]
    )


def _jobs(n: int, tag: str) -> list[EmojiJob]:
    templates = list(Template)
    slug = "".join(c if c.isalnum() else "-" for c in tag)
    return [
        EmojiJob(f"https://example.com/{slug}/{k}.png", templates[k % len(templates)], key=str(k))
        for k in range(n)
    ]


def _row(
    name: str,
    sim: Simulator,
    settings: Settings,
    held: dict[str, float],
    *,
    jobs: int,
    before: dict[str, int] | None = None,
    makespan_over_floor: float | None = None,
) -> Row:
    """``held``: when each measured task's end was seen; ``before``: the request counts
    before the measured jobs began (a warm-up's), taken off."""
    base = before or {}
    counts = {e: n - base.get(e, 0) for e, n in sim.stats.requests_by_endpoint.items()}
    after_detection = sum(counts.get(e, 0) for e in ("submit", "query", "list"))
    tasks = [t for t in sim.tasks() if t.task_id in held]
    lags = [
        (held[t.task_id] - t.ended_at) / settings.time_scale
        for t in tasks
        if t.task_id in held and t.ended_at is not None
    ]
    succeeded = collections.Counter(t.image_url for t in tasks if t.status == "SUCCEEDED")
    return Row(
        name=name,
        jobs=jobs,
        completed=len(held),
        requests_per_job=after_detection / jobs,
        queries_per_job=counts.get("query", 0) / jobs,
        extra_queries=counts.get("query", 0) - jobs,
        lag_p50=quantile(lags, 0.50) if lags else float("nan"),
        lag_p95=quantile(lags, 0.95) if lags else float("nan"),
        events_lost=sum(1 for d in sim.deliveries if d.task_id in held and d.outcome == "dropped"),
        billed_twice=sum(1 for n in succeeded.values() if n > 1),
        makespan_over_floor=makespan_over_floor,
    )


@contextlib.asynccontextmanager
async def _delivering(
    settings: Settings, policy: NotifyPolicy | None, knobs: dict[str, object]
) -> AsyncIterator[tuple[SimulatorServer, EmojiClient]]:
    """``on_one_clock``, the client waiting on events when given ``policy``.

    The simulator's EventBridge then delivers (with ``knobs``) to a receiver on
    loopback that hands its events to the client.
    """
    sink = _Forward()
    async with receiving(sink) as (url, _receiver):
        config = _config(settings, **({"notify_targets": (url,)} | knobs if policy else {}))
        async with on_one_clock(config, notifications=policy) as (server, client):
            sink.to = client.notices
            yield server, client


async def _single(
    name: str, settings: Settings, policy: NotifyPolicy | None, **knobs: object
) -> Row:
    """One job at a time: detect, submit, wait."""
    async with _delivering(settings, policy, knobs) as (server, client):
        held: dict[str, float] = {}
        warm_up = _jobs(settings.warm_up, f"warm {name}")
        measured = _jobs(settings.single_jobs, name)
        before: dict[str, int] = {}
        for n, job in enumerate([*warm_up, *measured]):
            if n == len(warm_up):
                before = dict(server.simulator.stats.requests_by_endpoint)
            face = await client.detect(job.image)
            task = await client.submit(
                job.image, job.driven_id, face_bbox=face.face_bbox, ext_bbox=face.ext_bbox
            )
            await task.wait()
            if n >= len(warm_up):
                held[task.task_id] = time.monotonic()
        return _row(
            name, server.simulator, settings, held, jobs=settings.single_jobs, before=before
        )


async def _batch(
    name: str, settings: Settings, policy: NotifyPolicy | None, **knobs: object
) -> Row:
    """A batch through ``generate_many`` with its defaults."""
    async with _delivering(settings, policy, knobs) as (server, client):
        held: dict[str, float] = {}

        def on_event(event: ev.JobEvent) -> None:
            if isinstance(event, ev.Succeeded):
                held[event.task_id] = event.at

        started = time.monotonic()
        await client.generate_many(_jobs(settings.batch_jobs, name), on_event=on_event)
        makespan = time.monotonic() - started
        sim = server.simulator
        floor = single_slot_floor(sim.tasks(), started=started, time_scale=settings.time_scale)
        return _row(
            name,
            sim,
            settings,
            held,
            jobs=settings.batch_jobs,
            makespan_over_floor=makespan / floor,
        )


async def run(settings: Settings) -> list[Row]:
    """Every variant, one after another, in one run."""
    net = NotifyPolicy()
    fast, slow = (1.0, 5.0), (1.0, 90.0)
    rows = [
        await _single("one job: adaptive polling", settings, None),
        await _single("one job: events 1-5 s", settings, net, notify_latency=fast),
        await _single("one job: events 1-90 s", settings, net, notify_latency=slow),
        await _single(
            "one job: events 1-5 s, 10% lost", settings, net, notify_latency=fast, notify_drop=0.1
        ),
        await _single(
            "one job: events 1-90 s, 10% lost", settings, net, notify_latency=slow, notify_drop=0.1
        ),
    ]
    for start, grace, growth in CURVE:
        rows.append(
            await _single(
                f"one job: events 1-90 s, net {start:g}/{grace:g}/{growth:g}",
                settings,
                NotifyPolicy(start=start, grace=grace, growth=growth),
                notify_latency=slow,
            )
        )
    rows += [
        await _batch("batch: adaptive polling", settings, None),
        await _batch("batch: events 1-5 s", settings, net, notify_latency=fast),
        await _batch(
            "batch: events 1-5 s, 10% lost", settings, net, notify_latency=fast, notify_drop=0.1
        ),
    ]
    return rows


def table(rows: Sequence[Row]) -> str:
    """The rows side by side (lags in provider seconds)."""
    head = (
        f"{'variant':<38} {'done':>9} {'req/job':>8} {'query/job':>9} {'extra q':>7}"
        f" {'lag p50':>8} {'lag p95':>8} {'lost ev':>7} {'paid 2x':>7} {'span/floor':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        span = "" if r.makespan_over_floor is None else f"{r.makespan_over_floor:.4f}"
        lines.append(
            f"{r.name:<38} {f'{r.completed}/{r.jobs}':>9} {r.requests_per_job:>8.2f}"
            f" {r.queries_per_job:>9.2f} {r.extra_queries:>7} {r.lag_p50:>7.1f}s"
            f" {r.lag_p95:>7.1f}s {r.events_lost:>7} {r.billed_twice:>7} {span:>10}"
        )
    return "\n".join(lines)


def _by_name(rows: Sequence[Row], name: str) -> Row:
    return next(r for r in rows if r.name == name)


def section(settings: Settings, rows: Sequence[Row]) -> str:
    """The table, and each goal of the issue beside what this run measured."""
    polling = _by_name(rows, "one job: adaptive polling")
    fast = _by_name(rows, "one job: events 1-5 s")
    slow = _by_name(rows, "one job: events 1-90 s")
    batch = _by_name(rows, "batch: events 1-5 s")
    batch_polling = _by_name(rows, "batch: adaptive polling")
    lossy = [r for r in rows if "lost" in r.name]
    dominated = [
        r.name.removeprefix("one job: events 1-90 s, net ")
        for r in rows
        if r.name.startswith("one job: events 1-90 s, net ")
        and r.requests_per_job <= polling.requests_per_job
        and r.lag_p95 <= polling.lag_p95
    ]

    def met(ok: bool) -> str:
        return "met" if ok else "not met"

    span = batch.makespan_over_floor or float("nan")
    return "\n".join(
        [
            f"{settings.single_jobs} jobs one at a time (after {settings.warm_up} warm-up"
            f" jobs), then batches of {settings.batch_jobs}; run times uniform 60-300 s,"
            f" time scale {settings.time_scale:g}. Requests per job count submits,"
            " queries and lists (detections are the same everywhere); lags are provider"
            " seconds from the task's end to the caller seeing it. `net s/g/x` is"
            " `NotifyPolicy(start=s, grace=g, growth=x)`; every other row uses the default.",
            "",
            "```",
            table(rows),
            "```",
            "",
            f"- One job, events 1-5 s: {fast.requests_per_job:.2f} requests per job (goal 2:"
            f" {met(fast.requests_per_job <= 2.0)}); lag p95 {fast.lag_p95:.1f} s against"
            f" adaptive polling's {polling.lag_p95:.1f} s (goal: no worse;"
            f" {met(fast.lag_p95 <= polling.lag_p95)}). The event's own delay sets the lag:"
            " only polls could see an end sooner than its event. Each query beyond one a job"
            " is a safety poll that came before the task's event: the task ran past the"
            " latest end the account's run times so far allowed, plus `grace`.",
            f"- One job, events 1-90 s: the default costs {slow.requests_per_job:.2f} requests"
            f" per job at a lag p95 of {slow.lag_p95:.1f} s; adaptive polling"
            f" {polling.requests_per_job:.2f} at {polling.lag_p95:.1f} s. Safety nets with no"
            " more requests and no more lag than adaptive polling: "
            + (", ".join(dominated) if dominated else "none in this run")
            + ".",
            f"- Batch, events 1-5 s: {batch.requests_per_job:.2f} requests per job (goal"
            f" <= 2.05: {met(batch.requests_per_job <= 2.05)}) at {span:.4f} x the floor"
            f" (goal <= 1.005: {met(span <= 1.005)}); adaptive polling"
            f" {batch_polling.requests_per_job:.2f} at"
            f" {batch_polling.makespan_over_floor or float('nan'):.4f}.",
            "- With a tenth of the events lost: "
            + "; ".join(
                f"{r.name}: {r.completed} of {r.jobs} jobs done, {r.events_lost} events lost,"
                f" {r.extra_queries} queries beyond one a job"
                for r in lossy
            )
            + ".",
            f"- Portraits billed twice, all variants: {sum(r.billed_twice for r in rows)}.",
        ]
    )


#: The title of this scenario's section in ``docs/benchmarks.md``.
TITLE = "## 6. Task-finished notifications against polling"


def write_section(path: Path, text: str, *, when: str) -> None:
    """Put ``text`` as this scenario's section of the report at ``path``, in place.

    ``make bench`` writes the whole report; this writes only the section, for a
    run of this scenario alone, and says so (with ``when``) under the title.
    """
    report = path.read_text()
    body = f"{TITLE}\n\nMeasured by `python -m benchmarks notify --write-docs` ({when}), apart"
    body += f" from the sections above.\n\n{text}\n\n"
    if TITLE in report:
        start = report.index(TITLE)
        end = report.index("\n## ", start + len(TITLE)) + 1
    else:
        start = end = report.index("## Reading the figures")
    path.write_text(report[:start] + body + report[end:])


def main(argv: list[str] | None = None) -> None:
    defaults = Settings()
    parser = argparse.ArgumentParser(description="notifications against adaptive polling")
    parser.add_argument("--single-jobs", type=int, default=defaults.single_jobs)
    parser.add_argument("--warm-up", type=int, default=defaults.warm_up)
    parser.add_argument("--batch-jobs", type=int, default=defaults.batch_jobs)
    parser.add_argument("--time-scale", type=float, default=defaults.time_scale)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="also put the section in docs/benchmarks.md, in place of the one there",
    )
    args = parser.parse_args(argv)
    settings = Settings(
        single_jobs=args.single_jobs,
        warm_up=args.warm_up,
        batch_jobs=args.batch_jobs,
        time_scale=args.time_scale,
        seed=args.seed,
    )
    text = section(settings, asyncio.run(run(settings)))
    print(text)
    if args.write_docs:
        when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        write_section(
            Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md", text, when=when
        )

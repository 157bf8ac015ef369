"""Soak: many jobs through chaos; every job ends in its true state, nothing paid twice or lost.

``python -m benchmarks soak --jobs 2000 --rate 0.05`` runs ``generate_many``
(with a journal and downloads) against the simulator with every chaos kind at
``rate``, then holds each job's outcome against the simulator's own record:

* a job that succeeded has exactly one task, SUCCEEDED on the simulator, and
  its video on disk with the length the result host sent;
* a job that failed names the task the simulator failed, or, if it never got
  a task (its detection failed for good, say), the simulator has none for it;
* every task the simulator created belongs to a job (no duplicate, no orphan);
* no job ran past its deadline, and every error is one of the project's own.

The suite runs the same code at a small size (``tests/test_soak.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import tempfile
import time
from pathlib import Path

import attrs

from emoji_async import (
    EmojiClient,
    EmojiError,
    EmojiJob,
    PollPolicy,
    RetryPolicy,
    SubmissionUncertainError,
    TaskFailedError,
    Template,
    Timeouts,
    WaitTimeoutError,
    events,
)
from emoji_async.testing import Chaos, SimulatorConfig, serve, uniform_durations
from emoji_async.testing._config import TASK_RETENTION

__all__ = ["SoakReport", "main", "run"]

KEY = "sk-simulator"


@attrs.frozen
class SoakReport:
    """What one soak run saw, and what it found wrong."""

    jobs: int
    rate: float
    seed: int
    wall: float
    requests: int
    faults_by_kind: dict[str, int]
    #: Unanswered submits settled through the task list: task adopted, or sent again.
    adopted: int
    resent: int
    outcomes: dict[str, int]
    tasks_created: int
    duplicates: int
    orphans: int
    lost: int
    hung: int
    uncertain: int
    foreign: tuple[str, ...]
    mismatches: tuple[str, ...]

    def violations(self) -> list[str]:
        """Every broken promise; empty for a sound run."""
        found = [f"{n} {what}" for n, what in self._counts() if n]
        found += [f"foreign exception: {text}" for text in self.foreign]
        found += list(self.mismatches)
        return found

    def _counts(self) -> list[tuple[int, str]]:
        return [
            (self.duplicates, "jobs with more than one task"),
            (self.orphans, "tasks no job holds"),
            (self.lost, "paid results lost"),
            (self.hung, "jobs past their deadline"),
            (self.uncertain, "submits left uncertain"),
        ]

    def table(self) -> str:
        faults = sum(self.faults_by_kind.values())
        lines = [
            f"{'jobs':32}{self.jobs}",
            f"{'chaos':32}{self.rate:.0%} per kind, seed {self.seed}",
            f"{'requests':32}{self.requests}",
            f"{'faults injected':32}{faults} ({faults / max(self.requests, 1):.0%} of requests)",
            *(f"  {kind:30}{n}" for kind, n in sorted(self.faults_by_kind.items())),
            f"{'unanswered submits settled':32}{self.adopted + self.resent}"
            f" ({self.adopted} tasks adopted, {self.resent} sent again)",
            "outcomes",
            *(f"  {kind:30}{n}" for kind, n in sorted(self.outcomes.items())),
            f"{'tasks created':32}{self.tasks_created}",
            *(f"{what:32}{n}" for n, what in self._counts()),
            f"{'foreign exceptions':32}{len(self.foreign)}",
            f"{'wall time':32}{self.wall:.1f} s",
        ]
        return "\n".join(lines)


async def run(
    *,
    jobs: int,
    rate: float = 0.05,
    seed: int = 1,
    time_scale: float = 0.005,
    concurrency: int = 64,
    reconcile: bool = True,
) -> SoakReport:
    """``jobs`` through ``Chaos.uniform(rate)``; the report of what held and what did not.

    ``reconcile=False`` turns off the settling of unanswered submits, to show
    what the checks catch without it.
    """
    slow = 0.3  # real seconds: past the client's read timeout, inside its reconcile window
    chaos = Chaos.uniform(rate, seed=seed, slow_seconds=slow, retry_after=0.05, burst_length=3)
    config = SimulatorConfig(
        time_scale=time_scale,
        limits=None,
        durations=uniform_durations(60, 300),
        seed=seed,
        render_videos=False,
        chaos=chaos,
    )
    templates = list(Template)
    batch = [
        EmojiJob(f"https://example.com/soak/{n}.png", templates[n % len(templates)], key=f"j{n}")
        for n in range(jobs)
    ]
    # Retries get real time to outlast a bad patch (each call up to 10 s); a job's
    # deadline is far beyond what its task needs, so a hung job shows as one.
    retry = RetryPolicy(
        wait_first=0.01,
        wait_max=0.2,
        deadline=10.0,
        reconcile_window=2 * slow if reconcile else None,
    )
    deadline = 60.0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "videos"
        async with serve(config) as server:
            sim = server.simulator
            async with EmojiClient(
                api_key=KEY,
                base_url=server.base_url,
                poll=PollPolicy().scaled(time_scale),
                retry=retry,
                timeouts=Timeouts(connect=1.0, read=slow / 3),
                limits=None,
            ) as client:
                settled: list[events.Reconciled] = []

                def on_event(event: events.JobEvent) -> None:
                    if isinstance(event, events.Reconciled):
                        settled.append(event)

                started = time.monotonic()
                results = await client.generate_many(
                    batch,
                    concurrency=concurrency,
                    journal=Path(tmp) / "soak.db",
                    download_to=out,
                    timeout=deadline,
                    on_event=on_event,
                )
                wall = time.monotonic() - started
            if wall > TASK_RETENTION * time_scale:
                raise RuntimeError(
                    f"the run took {wall:.0f} s, past the simulator's task retention"
                    f" ({TASK_RETENTION * time_scale:.0f} s at this time scale): its record"
                    " of the first tasks is gone; rerun with a larger --time-scale"
                )
            truth = {task.task_id: task for task in sim.tasks()}
            per_image = collections.Counter(task.image_url for task in truth.values())
            stats = sim.stats
            outcomes: collections.Counter[str] = collections.Counter()
            foreign: list[str] = []
            mismatches: list[str] = []
            held: set[str] = set()
            lost = hung = uncertain = 0
            for outcome in results:
                error = outcome.error
                outcomes["succeeded" if error is None else type(error).__name__] += 1
                if error is not None and not isinstance(error, EmojiError):
                    foreign.append(f"{outcome.key}: {type(error).__name__}: {error}")
                task = truth.get(outcome.task_id) if outcome.task_id else None
                if outcome.task_id:
                    held.add(outcome.task_id)
                if isinstance(error, WaitTimeoutError):
                    hung += 1
                elif isinstance(error, SubmissionUncertainError):
                    uncertain += 1
                elif error is None:
                    if task is None or task.status != "SUCCEEDED":
                        mismatches.append(f"{outcome.key}: succeeded, simulator says {task}")
                    elif outcome.path is None or not outcome.path.is_file():
                        mismatches.append(f"{outcome.key}: succeeded without its video file")
                elif isinstance(error, TaskFailedError):
                    if task is None or task.status != "FAILED":
                        mismatches.append(f"{outcome.key}: failed, simulator says {task}")
                elif task is not None:
                    # An error with a task the simulator finished: a paid result lost.
                    lost += task.status == "SUCCEEDED"
                    mismatches.append(f"{outcome.key}: {error!r} with task {task.status}")
                elif per_image[outcome.job.image]:
                    mismatches.append(f"{outcome.key}: no task named, simulator has one")
            duplicates = sum(1 for n in per_image.values() if n > 1)
            orphans = sum(1 for task_id in truth if task_id not in held)
    return SoakReport(
        jobs=jobs,
        rate=rate,
        seed=seed,
        wall=wall,
        requests=sum(stats.requests_by_endpoint.values()),
        faults_by_kind=dict(stats.faults_by_kind),
        adopted=sum(1 for e in settled if e.task_id is not None),
        resent=sum(1 for e in settled if e.task_id is None),
        outcomes=dict(outcomes),
        tasks_created=stats.tasks_created,
        duplicates=duplicates,
        orphans=orphans,
        lost=lost,
        hung=hung,
        uncertain=uncertain,
        foreign=tuple(foreign),
        mismatches=tuple(mismatches),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="many jobs through the simulator's chaos")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=0.05, help="probability of each fault kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-scale", type=float, default=0.005)
    args = parser.parse_args(argv)
    # Each unanswered submit logs a warning; the report counts what matters.
    logging.getLogger("emoji_async").setLevel(logging.ERROR)
    report = asyncio.run(
        run(jobs=args.jobs, rate=args.rate, seed=args.seed, time_scale=args.time_scale)
    )
    print(report.table())
    broken = report.violations()
    print("violations:", "none" if not broken else "")
    for line in broken:
        print("  " + line)

"""Crash: the CLI batch killed with SIGKILL at random moments, then run to the end.

``python -m benchmarks crash --jobs 40 --kills 10`` serves a simulator with
every chaos kind at ``--rate`` (5 %), ``--late`` (1 %) of submits processed
late, the list's filters read in ``--zone`` and the service's clock ``--skew``
seconds off, and runs ``emoji-async batch`` against it with one journal: each
of the ``--kills`` runs is killed with SIGKILL after a random delay (or ends
on its own first), then a last run goes to the end. The journal's final word
on every job is then held against the simulator's record of which image each
task was made from (:mod:`benchmarks.audit`): no job may hold another job's
task, no portrait may be billed twice, at most 1 job in 1,000 may be left
uncertain, and every other job must be in its true final state.

The suite runs the same code at a small size (``tests/test_crash.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import attrs

from emoji_async import Template
from emoji_async._journal import JobState, Journal
from emoji_async.testing import Chaos, SimulatorConfig, serve, uniform_durations

from ..audit import Audit, Ending, JobEnd, TaskRecord, audit
from ..simulator import KEY

__all__ = ["CrashReport", "main", "run"]


@attrs.frozen
class CrashReport:
    """What the killed runs left, as the service recorded it."""

    jobs: int
    kills: int
    killed: int
    exit_status: int
    states: dict[str, int]
    faults: int
    audit: Audit
    wall: float

    def violations(self) -> list[str]:
        """Every broken promise; empty for a sound run."""
        found = self.audit.violations(self.jobs)
        if (
            self.exit_status != 0
            and not self.audit.uncertain
            and set(self.states) == {"DOWNLOADED"}
        ):
            found.append(f"the last run exited {self.exit_status} with every job done")
        return found

    def table(self) -> str:
        return "\n".join(
            [
                f"{'jobs':34}{self.jobs}",
                f"{'runs killed with SIGKILL':34}{self.killed} of {self.kills}",
                f"{'faults injected':34}{self.faults}",
                f"{'last run exit status':34}{self.exit_status}",
                "journal states at the end",
                *(f"  {state:32}{n}" for state, n in sorted(self.states.items())),
                *self.audit.rows(self.jobs),
                f"{'wall time':34}{self.wall:.1f} s",
            ]
        )


def _jobs_file(path: Path, jobs: int) -> list[tuple[str, str]]:
    templates = list(Template)
    rows = [(f"c{n}", f"https://example.com/crash/{n}.png") for n in range(jobs)]
    path.write_text(
        "image,driven_id,key\n"
        + "".join(
            f"{image},{templates[n % len(templates)].value},{key}\n"
            for n, (key, image) in enumerate(rows)
        )
    )
    return rows


async def run(
    *,
    jobs: int = 40,
    kills: int = 10,
    rate: float = 0.05,
    late: float = 0.01,
    seed: int = 1,
    zone: str = "UTC+8",
    skew: float = -30.0,
    time_scale: float = 0.01,
    kill_within: tuple[float, float] = (0.3, 4.0),
    limit: float = 600.0,
) -> CrashReport:
    """The batch, killed ``kills`` times after a delay drawn from ``kill_within`` (s)."""
    rng = random.Random(seed)
    chaos = Chaos.uniform(
        rate, seed=seed, late=late, slow_seconds=0.2, retry_after=0.05, burst_length=3
    )
    config = SimulatorConfig(
        time_scale=time_scale,
        durations=uniform_durations(60, 300),
        seed=seed,
        render_videos=False,
        chaos=chaos,
        list_zone=zone,  # type: ignore[arg-type]  # checked by SimulatorConfig
        clock_skew=skew,
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs_file = root / "jobs.csv"
        rows = _jobs_file(jobs_file, jobs)
        journal = root / "batch.db"
        async with serve(config) as server, TaskRecord(server.simulator) as record:
            sim = server.simulator
            command = [
                sys.executable,
                "-m",
                "emoji_async",
                "batch",
                str(jobs_file),
                "--out",
                str(root / "videos"),
                "--journal",
                str(journal),
                "--base-url",
                server.base_url,
                "--time-scale",
                str(time_scale),
                "--progress",
                "never",
            ]
            env = {**os.environ, "DASHSCOPE_API_KEY": KEY}
            quiet = asyncio.subprocess.DEVNULL
            killed = 0
            for _ in range(kills):
                child = await asyncio.create_subprocess_exec(
                    *command, env=env, stdout=quiet, stderr=quiet
                )
                try:
                    await asyncio.wait_for(child.wait(), rng.uniform(*kill_within))
                except TimeoutError:
                    child.send_signal(signal.SIGKILL)
                    await child.wait()
                    killed += 1
            last = await asyncio.create_subprocess_exec(
                *command, env=env, stdout=quiet, stderr=quiet
            )
            try:
                status = await asyncio.wait_for(last.wait(), limit)
            except TimeoutError:
                last.kill()
                await last.wait()
                raise
            await record.quiet(settle=chaos.late_after[1] * time_scale, limit=60.0)
            async with await Journal.open(journal) as book:
                entries = {e.key: e for e in book.entries()}
            ends: list[JobEnd] = []
            states: dict[str, int] = {}
            for key, image in rows:
                entry = entries.get(key)
                state = "NEW" if entry is None else entry.state.value
                states[state] = states.get(state, 0) + 1
                ending: Ending
                if entry is not None and entry.state is JobState.DOWNLOADED:
                    ending = "succeeded"
                elif entry is not None and entry.state is JobState.UNCERTAIN:
                    ending = "uncertain"
                elif entry is not None and entry.state is JobState.FAILED and entry.task_id:
                    ending = "task_failed"
                else:
                    ending = "failed"
                saved = (root / "videos" / f"{key}.mp4").is_file()
                task_id = None if entry is None else entry.task_id
                ends.append(JobEnd(key, image, task_id, ending, saved))
            found = audit(record.tasks, ends, sim.stats.tasks_created)
            faults = sim.stats.faults
    return CrashReport(
        jobs=jobs,
        kills=kills,
        killed=killed,
        exit_status=status,
        states=states,
        faults=faults,
        audit=found,
        wall=time.monotonic() - started,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the CLI batch killed at random moments")
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--late", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--zone", choices=["UTC+8", "UTC"], default="UTC+8")
    parser.add_argument("--skew", type=float, default=-30.0)
    args = parser.parse_args(argv)
    report = asyncio.run(
        run(
            jobs=args.jobs,
            kills=args.kills,
            rate=args.rate,
            late=args.late,
            seed=args.seed,
            zone=args.zone,
            skew=args.skew,
        )
    )
    print(report.table())
    broken = report.violations()
    print("violations:", "none" if not broken else "")
    for line in broken:
        print("  " + line)
    if broken:
        raise SystemExit(1)

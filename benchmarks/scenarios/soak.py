"""Soak: many jobs through chaos; held against what the service recorded, not what the client says.

``python -m benchmarks soak --jobs 2000`` runs ``generate_many`` (with a journal
and downloads) against a simulator on the provider's limits with every chaos
kind at ``--rate`` (5 %), ``--late`` (1 %) of submits processed 150 to 250
provider seconds after they were answered with a failure (beyond the 120 s
reconcile window, and out of order), and the service's clock ``--skew``
seconds behind the client's; once with the task list reading its time filters
in UTC+8 and once in UTC. Then it waits until nothing more can happen on the
service (late submits processed, every task ended) and checks each job against
the simulator's own record of which image every task was made from:

* **foreign tasks**: a job holding a task made from another job's image;
* **paid twice**: an image with more than one SUCCEEDED task (only successful
  tasks are billed);
* **uncertain**: jobs that ended ``SubmissionUncertainError`` (at most 1 in 1,000);
* **wrong state**: a job whose outcome is not the truth: "succeeded" without a
  SUCCEEDED task of its own image and its video on disk, "failed" while its
  image has a SUCCEEDED task (a paid video lost), a task failure the service
  does not show;
* **unreported**: a SUCCEEDED task no job holds that the client did not report
  as an orphan;
* **leaked key**: the API key in an outcome's error (its text, its repr, or
  those of its causes) or in any file the batch wrote (the journal, the videos).

``--hostile RATE`` adds the simulator's hostile service at that rate per kind
(``HOSTILE_KINDS``: huge answers, gzip bombs, drips, a ``Retry-After`` of
10^12 s, a gateway's 502 echoing the key, impossible task ids, gzip-encoded
videos), but not ``billing``: a refusal of the account ends a batch at its
first answer, so it has a rate of its own, ``--billing`` (default 0). Drips
send a byte more often than the client's read timeout, for longer than a
call's deadline, so only a deadline on the whole call ends them.

The suite runs the same code at a small size (``tests/test_soak.py``), the
hostile kinds off.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

from emoji_async import (
    EmojiClient,
    EmojiError,
    EmojiJob,
    Outcomes,
    RetryPolicy,
    SubmissionUncertainError,
    TaskFailedError,
    Template,
    Timeouts,
    events,
)
from emoji_async.testing import HOSTILE_KINDS, Chaos, SimulatorConfig, serve, uniform_durations

from ..audit import Audit, Ending, JobEnd, TaskRecord, audit
from ..simulator import KEY

__all__ = ["SoakReport", "chaos_for", "main", "run"]

#: Each call's retries get this many real seconds to outlast a bad patch of faults.
CALL_DEADLINE = 10.0


@attrs.frozen
class SoakReport:
    """What one soak run saw, and what it found wrong."""

    jobs: int
    rate: float
    late: float
    hostile: float
    billing: float
    zone: str
    order: str
    skew: float
    seed: int
    wall: float
    requests: int
    requests_by_endpoint: dict[str, int]
    faults_by_kind: dict[str, int]
    #: Unanswered submits settled through the task list: task adopted, or sent again.
    adopted: int
    resent: int
    outcomes: dict[str, int]
    #: Orphans the client reported: cancelled while PENDING, and not cancellable.
    orphans_cancelled: int
    orphans_billable: int
    #: What the service's record says of the outcomes.
    audit: Audit
    #: SUCCEEDED tasks no job holds that the client did not report.
    unreported: tuple[str, ...]
    exceptions: tuple[str, ...]
    #: Where the API key showed: outcomes' errors, files the batch wrote.
    leaks: tuple[str, ...] = ()

    def violations(self) -> list[str]:
        """Every broken promise; empty for a sound run."""
        found = self.audit.violations(self.jobs)
        for items, what in (
            (self.unreported, "unheld paid tasks the client did not report"),
            (self.exceptions, "foreign exceptions"),
            (self.leaks, "places showing the API key"),
        ):
            if items:
                found.append(f"{len(items)} {what}: {', '.join(items[:5])}")
        return found

    def table(self) -> str:
        faults = sum(self.faults_by_kind.values())
        lines = [
            f"{'jobs':34}{self.jobs}",
            f"{'chaos':34}{self.rate:.0%} per kind, {self.late:.0%} late, seed {self.seed}",
            f"{'hostile service':34}{self.hostile:.0%} per kind, {self.billing:.0%} billing",
            f"{'task list reads its filters in':34}{self.zone}, lists {self.order}",
            f"{'service clock':34}{self.skew:+g} s from the client's",
            f"{'requests':34}{self.requests}",
            *(f"  {name:32}{n}" for name, n in sorted(self.requests_by_endpoint.items())),
            f"{'faults injected':34}{faults} ({faults / max(self.requests, 1):.0%} of requests)",
            *(f"  {kind:32}{n}" for kind, n in sorted(self.faults_by_kind.items())),
            f"{'unanswered submits settled':34}{self.adopted + self.resent}"
            f" ({self.adopted} tasks adopted, {self.resent} sent again)",
            "outcomes",
            *(f"  {kind:32}{n}" for kind, n in sorted(self.outcomes.items())),
            *self.audit.rows(self.jobs),
            f"{'orphans reported':34}{self.orphans_cancelled} cancelled while PENDING,"
            f" {self.orphans_billable} not cancellable",
            f"{'unheld paid tasks unreported':34}{len(self.unreported)}",
            f"{'foreign exceptions':34}{len(self.exceptions)}",
            f"{'places showing the API key':34}{len(self.leaks)}",
            f"{'wall time':34}{self.wall:.1f} s",
        ]
        return "\n".join(lines)


async def run(
    *,
    jobs: int,
    rate: float = 0.05,
    late: float = 0.01,
    seed: int = 1,
    zone: str = "UTC+8",
    order: str = "newest_first",
    skew: float = -30.0,
    time_scale: float = 0.005,
    durations: tuple[float, float] = (60.0, 300.0),
    reconcile: bool = True,
    hostile: float = 0.0,
    billing: float = 0.0,
) -> SoakReport:
    """``jobs`` through ``chaos_for(...)``; the report of what held.

    ``reconcile=False`` turns off the settling of unanswered submits, to show
    what the checks catch without it.
    """
    chaos = chaos_for(
        rate=rate, late=late, seed=seed, time_scale=time_scale, hostile=hostile, billing=billing
    )
    slow = chaos.slow_seconds
    config = SimulatorConfig(
        time_scale=time_scale,
        durations=uniform_durations(*durations),
        seed=seed,
        render_videos=False,
        chaos=chaos,
        list_zone=zone,  # type: ignore[arg-type]  # checked by SimulatorConfig
        list_order=order,  # type: ignore[arg-type]
        clock_skew=skew,
    )
    templates = list(Template)
    batch = [
        EmojiJob(f"https://example.com/soak/{n}.png", templates[n % len(templates)], key=f"j{n}")
        for n in range(jobs)
    ]
    # On the simulator's clock, but each call's retries get ten real seconds to
    # outlast a bad patch of faults.
    retry = attrs.evolve(
        RetryPolicy(),
        deadline=CALL_DEADLINE / time_scale,
        reconcile_window=120.0 if reconcile else None,
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "videos"
        async with serve(config) as server, TaskRecord(server.simulator) as record:
            async with EmojiClient(
                api_key=KEY,
                base_url=server.base_url,
                retry=retry,
                time_scale=time_scale,
                timeouts=Timeouts(connect=1.0, read=slow / 3),
            ) as client:
                settled: list[events.Reconciled] = []

                def on_event(event: events.JobEvent) -> None:
                    if isinstance(event, events.Reconciled):
                        settled.append(event)

                started = time.monotonic()
                results = await client.generate_many(
                    batch, journal=Path(tmp) / "soak.db", download_to=out, on_event=on_event
                )
                wall = time.monotonic() - started
            await record.quiet(settle=chaos.late_after[1] * time_scale, limit=60.0)
            return _report(
                record,
                results,
                settled,
                leaks=_leaks(results, Path(tmp)),
                jobs=jobs,
                rate=rate,
                late=late,
                hostile=hostile,
                billing=billing,
                zone=zone,
                order=order,
                skew=skew,
                seed=seed,
                wall=wall,
            )


def chaos_for(
    *,
    rate: float,
    late: float,
    seed: int,
    time_scale: float,
    hostile: float = 0.0,
    billing: float = 0.0,
) -> Chaos:
    """The soak's chaos: every kind in transit at ``rate``, and the hostile ones asked for.

    ``hostile`` is the rate of each hostile kind but ``billing``, which has its own.
    """
    # Real seconds: past the client's read timeout, inside its reconcile window.
    slow = 60.0 * time_scale
    hostile_rates: dict[str, Any] = {k: hostile for k in HOSTILE_KINDS if k != "billing"}
    return Chaos.uniform(
        rate,
        seed=seed,
        late=late,
        slow_seconds=slow,
        retry_after=0.05,
        burst_length=3,
        **hostile_rates,
        billing=billing,
        # A byte well within the read timeout (slow / 3), for longer than a call may take.
        drip_interval=slow / 12,
        drip_seconds=1.5 * CALL_DEADLINE,
    )


def _leaks(results: Outcomes, root: Path) -> tuple[str, ...]:
    """Where the API key shows: an outcome's error or its causes, a file under ``root``."""
    found: list[str] = []
    for outcome in results:
        error: BaseException | None = outcome.error
        seen: set[int] = set()
        while error is not None and id(error) not in seen:
            seen.add(id(error))
            if KEY in str(error) or KEY in repr(error):
                found.append(f"{outcome.key}: {type(error).__name__}")
                break
            error = error.__cause__ or error.__context__
    needle = KEY.encode()
    for path in sorted(root.rglob("*")):
        if path.is_file() and needle in path.read_bytes():
            found.append(str(path.relative_to(root)))
    return tuple(found)


def _report(
    record: TaskRecord,
    results: Outcomes,
    settled: list[events.Reconciled],
    **fields: Any,
) -> SoakReport:
    ends: list[JobEnd] = []
    outcomes: collections.Counter[str] = collections.Counter()
    exceptions: list[str] = []
    for outcome in results:
        error = outcome.error
        outcomes["succeeded" if error is None else type(error).__name__] += 1
        if error is not None and not isinstance(error, EmojiError):
            exceptions.append(f"{outcome.key}: {type(error).__name__}: {error}")
        ending: Ending
        if error is None:
            ending = "succeeded"
        elif isinstance(error, SubmissionUncertainError):
            ending = "uncertain"
        elif isinstance(error, TaskFailedError):
            ending = "task_failed"
        else:
            ending = "failed"
        saved = outcome.path is not None and outcome.path.is_file()
        ends.append(JobEnd(outcome.key, outcome.job.image, outcome.task_id, ending, saved))
    sim = record.sim
    found = audit(record.tasks, ends, sim.stats.tasks_created)
    reported = {o.task_id for o in results.orphans}
    # An uncertain job names its candidates: those are reported too.
    named = {c for o in results.uncertain for c in getattr(o.error, "candidates", ())}
    stats = sim.stats
    return SoakReport(
        **fields,
        requests=sum(stats.requests_by_endpoint.values()),
        requests_by_endpoint=dict(stats.requests_by_endpoint),
        faults_by_kind=dict(stats.faults_by_kind),
        adopted=sum(1 for e in settled if e.task_id is not None),
        resent=sum(1 for e in settled if e.task_id is None),
        outcomes=dict(outcomes),
        orphans_cancelled=sum(1 for o in results.orphans if o.cancelled),
        orphans_billable=sum(1 for o in results.orphans if not o.cancelled),
        audit=found,
        unreported=tuple(t for t in found.unheld_paid if t not in reported | named),
        exceptions=tuple(exceptions),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="many jobs through the simulator's chaos")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=0.05, help="probability of each fault kind")
    parser.add_argument(
        "--late", type=float, default=0.01, help="probability of a submit processed late"
    )
    parser.add_argument(
        "--hostile",
        type=float,
        default=0.0,
        help="probability of each hostile kind but billing (huge, gzip bomb, drip...)",
    )
    parser.add_argument(
        "--billing",
        type=float,
        default=0.0,
        help="probability of a billing refusal, which ends a batch at once",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skew", type=float, default=-30.0, help="service clock offset, s")
    parser.add_argument(
        "--zone", choices=["UTC+8", "UTC", "both"], default="both", help="list filter zone"
    )
    parser.add_argument(
        "--order",
        choices=["newest_first", "oldest_first"],
        default="newest_first",
        help="the task list's order",
    )
    parser.add_argument("--time-scale", type=float, default=0.005)
    args = parser.parse_args(argv)
    # Each unanswered submit logs a warning; the report counts what matters.
    logging.getLogger("emoji_async").setLevel(logging.ERROR)
    zones = ["UTC+8", "UTC"] if args.zone == "both" else [args.zone]
    broken: list[str] = []
    for zone in zones:
        report = asyncio.run(
            run(
                jobs=args.jobs,
                rate=args.rate,
                late=args.late,
                hostile=args.hostile,
                billing=args.billing,
                seed=args.seed,
                zone=zone,
                order=args.order,
                skew=args.skew,
                time_scale=args.time_scale,
            )
        )
        print(report.table())
        found = report.violations()
        print("violations:", "none" if not found else "")
        for line in found:
            print("  " + line)
        print()
        broken += found
    if broken:
        raise SystemExit(1)

"""What the lanes scenario measures: each interactive job's wait, split; the batch; the goals.

An interactive job is a ``generate()`` call made while a bulk batch runs on the
same account. Its time to video less its own run time is split, from the
simulator's record of when each task was created, started and ended:

* **waiting for the running task**: from the job's task's creation to the end
  of the task that was running at that moment (none: zero). No client can
  shorten it: a RUNNING task cannot be cancelled without paying for it.
* **everything else**: the rest, itself made of the time before its task
  existed (detection and submit, with their pacing), the time queued behind
  other tasks once the running one ended, and the time until the caller saw
  the end (the poll that found the task SUCCEEDED).

The batch is held against its floor: the time until the first submit
arrived, then the run times of every bulk task that ran and of every
interactive task that ran before the batch's last task ended, back to back
on the single slot (:func:`benchmarks.bulk_report.single_slot_floor`).
Portraits billed twice count the images with more than one SUCCEEDED task
(only successful tasks are billed). Every figure is measured; the goals are
the issue's, printed beside what was met.

:class:`Settings` is the size of one run; :func:`section` is the text
``python -m benchmarks lanes`` prints and ``docs/benchmarks.md`` shows.
"""

from __future__ import annotations

import collections
import math
import textwrap
from collections.abc import Collection, Iterable, Mapping, Sequence

import attrs

from emoji_async import RateLimits
from emoji_async.testing import SimulatedTask

from .bulk_report import single_slot_floor
from .figures import quantile

__all__ = [
    "DEFAULT_TIME_SCALE",
    "GOAL_EVERYTHING_ELSE",
    "GOAL_MAKESPAN",
    "VISIT_EVERY",
    "LanesReport",
    "Settings",
    "Split",
    "Visit",
    "billed_twice",
    "describe",
    "floor_of",
    "section",
    "split",
    "submit_turn",
    "table",
]

#: The issue's goal: interactive p95 of "everything else", provider seconds.
GOAL_EVERYTHING_ELSE = 5.0
#: The issue's goal: the batch's makespan at most this times its floor.
GOAL_MAKESPAN = 1.01
#: Provider seconds between two interactive arrivals, on average ("one per ten minutes").
VISIT_EVERY = 600.0
#: About 77,000 provider seconds for 300 jobs and their visitors: 77 s a variant.
DEFAULT_TIME_SCALE = 0.001


@attrs.frozen
class Settings:
    """One run's sizes; ``jitter`` (real seconds) only for the suite's loaded machine."""

    jobs: int = 300
    time_scale: float = DEFAULT_TIME_SCALE
    seed: int = 1
    durations: tuple[float, float] = (60.0, 300.0)
    visit_every: float = VISIT_EVERY
    jitter: float | None = None

    @property
    def limits(self) -> RateLimits:
        return RateLimits() if self.jitter is None else RateLimits(jitter=self.jitter)


@attrs.frozen
class Visit:
    """One interactive ``generate()`` as its caller saw it (``time.monotonic()`` readings)."""

    called: float
    done: float
    task_id: str


@attrs.frozen
class Split:
    """One interactive job's time to video, in provider seconds."""

    total: float
    run: float
    waiting_running: float
    before_task: float
    queued: float
    #: Of ``queued``: the run times of the other visitors' tasks that ran in between.
    behind_interactive: float
    seeing_end: float

    @property
    def behind_bulk(self) -> float:
        """Of ``queued``: the rest, bulk tasks that ran in between (and idle slot, if any)."""
        return self.queued - self.behind_interactive

    @property
    def everything_else(self) -> float:
        """Time to video less its run time and the wait for the running task."""
        return self.total - self.run - self.waiting_running


def _ran(tasks: Iterable[SimulatedTask]) -> list[SimulatedTask]:
    return [t for t in tasks if t.scheduled_at is not None and t.ended_at is not None]


def split(
    visit: Visit,
    tasks: Mapping[str, SimulatedTask],
    time_scale: float,
    interactive: Collection[str] = (),
) -> Split:
    """``visit``'s time to video split by the simulator's record of every task (``tasks``);
    ``interactive``: the visitors' task ids."""
    own = tasks[visit.task_id]
    assert own.scheduled_at is not None
    assert own.ended_at is not None
    created = own.submitted_at
    running_end = created
    for other in _ran(tasks.values()):
        assert other.scheduled_at is not None
        assert other.ended_at is not None
        if other.task_id != own.task_id and other.scheduled_at <= created < other.ended_at:
            running_end = other.ended_at
    # The other visitors' tasks that ran between the running task's end and its own start.
    ahead = sum(
        min(other.ended_at, own.scheduled_at) - max(other.scheduled_at, running_end)
        for other in _ran(tasks.values())
        if other.task_id in interactive
        and other.task_id != own.task_id
        and other.scheduled_at is not None
        and other.ended_at is not None
        and other.scheduled_at < own.scheduled_at
        and other.ended_at > running_end
    )
    return Split(
        total=(visit.done - visit.called) / time_scale,
        run=(own.ended_at - own.scheduled_at) / time_scale,
        waiting_running=(running_end - created) / time_scale,
        before_task=(created - visit.called) / time_scale,
        queued=(own.scheduled_at - running_end) / time_scale,
        behind_interactive=max(0.0, ahead) / time_scale,
        seeing_end=(visit.done - own.ended_at) / time_scale,
    )


def floor_of(
    tasks: Mapping[str, SimulatedTask],
    interactive: Iterable[str],
    *,
    started: float,
    time_scale: float,
) -> float:
    """The batch's floor, real seconds: its tasks that ran, and the interactive ones among them.

    ``interactive``: the interactive jobs' task ids; those that started after
    the batch's last task ended took nothing from it and are left out.
    """
    visitors = set(interactive)
    bulk = [t for t in _ran(tasks.values()) if t.task_id not in visitors]
    last_end = max(t.ended_at for t in bulk if t.ended_at is not None)
    inside = [
        t
        for t in _ran(tasks.values())
        if t.task_id in visitors and t.scheduled_at is not None and t.scheduled_at < last_end
    ]
    return single_slot_floor(bulk + inside, started=started, time_scale=time_scale)


def billed_twice(tasks: Iterable[SimulatedTask]) -> int:
    """Images with more than one SUCCEEDED task (only successful tasks are billed)."""
    succeeded = collections.Counter(t.image_url for t in tasks if t.status == "SUCCEEDED")
    return sum(1 for n in succeeded.values() if n > 1)


@attrs.frozen
class LanesReport:
    """One variant's run: the interactive jobs' splits, the batch, what the service recorded."""

    variant: str
    jobs: int
    time_scale: float
    splits: tuple[Split, ...]
    interactive_failed: int
    #: The batch's ``generate_many`` call (real seconds), and its floor.
    makespan: float
    floor: float
    #: Cancel requests the simulator received, and bulk tasks it ended CANCELED.
    cancels: int
    moved_aside: int
    billed_twice: int
    throttled: int
    #: Bulk jobs without a video, as the batch says; bulk portraits with a SUCCEEDED task.
    lost: int
    made: int
    #: What the batch's ``Outcomes`` counted, where the client counts it.
    client_preempted: int | None = None
    client_preempt_cancels: int | None = None

    @property
    def ratio(self) -> float:
        return self.makespan / self.floor

    def figures(self, name: str) -> tuple[float, float, float]:
        """p50, p95 and max of one of :class:`Split`'s figures over the interactive jobs."""
        values = sorted(getattr(s, name) for s in self.splits)
        if not values:
            return math.nan, math.nan, math.nan
        return quantile(values, 0.5), quantile(values, 0.95), values[-1]

    def goals(self) -> list[tuple[str, bool]]:
        """Each of the issue's goals, and whether this run met it."""
        p95 = self.figures("everything_else")[1]
        return [
            (f'p95 "everything else" <= {GOAL_EVERYTHING_ELSE:g} s', p95 <= GOAL_EVERYTHING_ELSE),
            (f"makespan <= floor x {GOAL_MAKESPAN:g}", self.ratio <= GOAL_MAKESPAN),
            ("0 portraits billed twice", self.billed_twice == 0),
        ]


_FIGURES = (
    ("time to video - run time", "total_less_run"),
    ("  waiting for the running task", "waiting_running"),
    ("  everything else", "everything_else"),
    ("    before its task existed", "before_task"),
    ("    queued behind other tasks", "queued"),
    ("      other visitors' tasks", "behind_interactive"),
    ("      bulk tasks", "behind_bulk"),
    ("    seeing the end (polls)", "seeing_end"),
)
_LABEL = 40
_CELL = 22


def _three(report: LanesReport, name: str) -> str:
    if name == "total_less_run":
        values = sorted(s.total - s.run for s in report.splits)
        cut = (
            (quantile(values, 0.5), quantile(values, 0.95), values[-1])
            if values
            else (math.nan,) * 3
        )
    else:
        cut = report.figures(name)
    return "-" if math.isnan(cut[0]) else " / ".join(f"{v:.0f}" for v in cut)


def _client_count(value: int | None) -> str:
    return "-" if value is None else str(value)


def table(reports: Sequence[LanesReport]) -> str:
    """The variants side by side, one column each, then the goals each met."""

    def row(label: str, cells: Iterable[str]) -> str:
        return (label.ljust(_LABEL) + "".join(c.ljust(_CELL) for c in cells)).rstrip()

    per_job = [max(len(r.splits), 1) for r in reports]
    lines = [
        row("", (r.variant for r in reports)),
        row(
            "interactive jobs (failed)",
            (f"{len(r.splits)} ({r.interactive_failed})" for r in reports),
        ),
        "per interactive job, provider s, p50 / p95 / max",
        *(row(label, (_three(r, name) for r in reports)) for label, name in _FIGURES),
        row("batch makespan / floor", (f"{r.ratio:.4f}" for r in reports)),
        row(
            "  makespan / floor, provider s",
            (f"{r.makespan / r.time_scale:.0f} / {r.floor / r.time_scale:.0f}" for r in reports),
        ),
        row(
            "cancel requests per interactive job",
            (f"{r.cancels / n:.2f}" for r, n in zip(reports, per_job, strict=True)),
        ),
        row("bulk tasks moved aside", (str(r.moved_aside) for r in reports)),
        row(
            "  as the batch counted (moved/cancels)",
            (
                f"{_client_count(r.client_preempted)} / {_client_count(r.client_preempt_cancels)}"
                for r in reports
            ),
        ),
        row("portraits billed twice", (str(r.billed_twice) for r in reports)),
        row("429 answers", (str(r.throttled) for r in reports)),
        row("bulk jobs lost", (str(r.lost) for r in reports)),
        row("bulk portraits with a video", (f"{r.made} / {r.jobs}" for r in reports)),
        "goals",
    ]
    names = [name for name, _ in reports[0].goals()] if reports else []
    for index, name in enumerate(names):
        lines.append(
            row("  " + name, ("met" if r.goals()[index][1] else "not met" for r in reports))
        )
    return "\n".join(lines)


def describe(settings: Settings) -> str:
    """The line that says what was run."""
    low, high = settings.durations
    return (
        f"A {settings.jobs}-job bulk batch (generate_many defaults), run times uniform"
        f" {low:.0f}-{high:.0f} s, interactive generate() every {settings.visit_every:.0f} s"
        f" on average (Poisson, seed {settings.seed}), time scale {settings.time_scale:g}"
    )


def submit_turn(settings: Settings) -> float:
    """Provider seconds between two submits of the client at ``settings``' time scale.

    The pacing's jitter is real time (a network's delays do not compress), so
    on a compressed clock a turn is longer in provider time than the 1.1 s it
    takes uncompressed.
    """
    limits = settings.limits
    spacing = limits.window * (1 + limits.margin) + limits.jitter / settings.time_scale
    return spacing / (limits.submit_per_second * limits.window)


def section(settings: Settings, reports: Sequence[LanesReport]) -> str:
    """The report's section: what ran, the variants side by side, how to read them."""
    ran = (
        f"{describe(settings)}; one run, the variants one after another. FIFO is today's"
        " behaviour: the same code, the interactive calls given the bulk lane. In two"
        " processes, the batch runs in one child process and the interactive calls in"
        " another, sharing RedisPacing."
    )
    reading = (
        "Per interactive job, its time to video less its own run time, split by the"
        " simulator's record: waiting for the task running when its task was created, and"
        " everything else (before its task existed: detection and submit; queued behind"
        " other tasks, the other visitors' (which no lane can move: one slot serves one"
        " visitor at a time) and bulk ones; seeing the end: the poll that found it done)."
        " The floor: the time"
        " to the first submit, then the run times of every bulk task that ran and of the"
        " interactive tasks that ran before the batch's last task ended. A submit turn at"
        f" this time scale is {submit_turn(settings):.1f} provider s: the client's pacing"
        " jitter is real time and does not compress."
    )
    unmoved = [f'"{r.variant}"' for r in reports if "lanes" in r.variant and r.moved_aside == 0]
    if unmoved:
        reading += f" In {' and '.join(unmoved)}, no bulk task was moved aside."
    return "\n".join(
        [textwrap.fill(ran, 80), "", "```", table(reports), "```", "", textwrap.fill(reading, 80)]
    )

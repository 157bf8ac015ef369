"""What bulk at the provider's limits measures: one run, one competitor over its repeats, the table.

``BulkReport`` holds the figures of one run (``ours-bulk`` reports it alone;
``bulk`` reports one per competitor and run, inside a ``Measurement`` with the
loop lags); ``Row`` is one competitor over every repeat, and ``table`` prints
the rows side by side. ``single_slot_floor`` is the floor every bulk figure is
held against (``shared`` uses it too).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Sequence

import attrs

from emoji_async.testing import SimulatedTask

from .competitors import JobResult
from .competitors._isolation import LoopLag
from .figures import Figure

__all__ = [
    "DURATIONS",
    "FAITHFUL_LAG",
    "BulkReport",
    "Measurement",
    "Row",
    "single_slot_floor",
    "table",
]

#: The provider's "usually 1 to 5 minutes".
DURATIONS = (60.0, 300.0)
#: The loop lag, as a fraction of a competitor's shortest wait, past which its row is flagged.
FAITHFUL_LAG = 0.5


def single_slot_floor(
    tasks: Sequence[SimulatedTask], *, started: float, time_scale: float
) -> float:
    """The soonest any client could finish ``tasks`` on one running slot (real seconds).

    The time until the first submit arrived (from ``started``, a
    ``time.monotonic()`` reading), then every task's run time back to back.
    """
    first_submit = min(task.submitted_at for task in tasks)
    return (first_submit - started) + sum(task.duration for task in tasks) * time_scale


@attrs.frozen
class BulkReport:
    """What one bulk run measured (times in real seconds on the compressed clock)."""

    jobs: int
    time_scale: float
    makespan: float
    floor: float
    requests_per_job: float
    throttled: int
    lost: int
    tasks_created: int
    lag_p50: float
    lag_p95: float

    @property
    def ratio(self) -> float:
        return self.makespan / self.floor

    def table(self) -> str:
        return "\n".join(
            [
                f"jobs                         {self.jobs}",
                f"time scale                   {self.time_scale:g}",
                f"makespan / floor             {self.ratio:.4f}"
                f"  ({self.makespan:.2f} s / {self.floor:.2f} s)",
                f"requests per job             {self.requests_per_job:.2f}",
                f"429 answers                  {self.throttled}",
                f"jobs lost                    {self.lost}",
                f"tasks created per job        {self.tasks_created / self.jobs:.2f}",
                f"detection lag p50 / p95      {self.lag_p50:.1%} / {self.lag_p95:.1%}"
                " of task run time",
            ]
        )


@attrs.frozen
class Measurement:
    """One run of one competitor: the figures, the loop lags, and why jobs were lost.

    ``results`` are the competitor's, one per job in input order; ``verified``
    counts the held ones whose task the simulator ended SUCCEEDED no later
    than the client said it held the video.
    """

    report: BulkReport
    client_lag: LoopLag
    simulator_lag: LoopLag
    losses: dict[str, int]
    results: tuple[JobResult, ...]
    verified: int


@attrs.frozen
class Row:
    """One competitor over every repeat; ``skipped`` says why it has no runs."""

    competitor: str
    description: str
    jobs: int
    time_scale: float
    shortest_wait: float
    runs: tuple[Measurement, ...] = ()
    skipped: str | None = None

    def _figure(self, value: Callable[[Measurement], float]) -> Figure:
        return Figure.of(value(m) for m in self.runs)

    @property
    def ratio(self) -> Figure:
        return self._figure(lambda m: m.report.ratio)

    @property
    def requests_per_job(self) -> Figure:
        return self._figure(lambda m: m.report.requests_per_job)

    @property
    def throttled(self) -> Figure:
        return self._figure(lambda m: m.report.throttled)

    @property
    def lost(self) -> Figure:
        return self._figure(lambda m: m.report.lost)

    @property
    def tasks_per_job(self) -> Figure:
        return self._figure(lambda m: m.report.tasks_created / m.report.jobs)

    @property
    def lag_p50(self) -> Figure:
        return self._figure(lambda m: m.report.lag_p50)

    @property
    def lag_p95(self) -> Figure:
        return self._figure(lambda m: m.report.lag_p95)

    @property
    def makespan(self) -> Figure:
        return self._figure(lambda m: m.report.makespan)

    @property
    def client_lag_p95(self) -> Figure:
        """The client process's p95 loop lag, in provider seconds."""
        return self._figure(lambda m: m.client_lag.p95 / self.time_scale)

    @property
    def simulator_lag_p95(self) -> Figure:
        """The simulator's p95 loop lag, in provider seconds."""
        return self._figure(lambda m: m.simulator_lag.p95 / self.time_scale)

    @property
    def faithful(self) -> bool:
        """Whether both processes ran their timers within half the competitor's shortest wait.

        If not, the compression changed how the competitor behaved (its polls
        and retries came later than it asked, in provider time): rerun it with
        a larger time scale before trusting its row.
        """
        worst = max(self.client_lag_p95.high, self.simulator_lag_p95.high)
        return math.isnan(worst) or worst <= FAITHFUL_LAG * self.shortest_wait

    @property
    def losses(self) -> dict[str, int]:
        """Why jobs were lost, summed over the repeats."""
        total: collections.Counter[str] = collections.Counter()
        for measurement in self.runs:
            total.update(measurement.losses)
        return dict(total.most_common())


_COLUMNS = (
    ("competitor", 15),
    ("makespan/floor", 22),
    ("requests/job", 22),
    ("429s", 20),
    ("lost", 14),
    ("tasks/job", 16),
    ("lag p50", 20),
    ("lag p95", 22),
    ("loop lag p95 client/sim", 0),
)


def _cells(row: Row) -> list[str]:
    return [
        row.competitor,
        row.ratio.format(".3f"),
        row.requests_per_job.format(".1f"),
        row.throttled.format(".0f"),
        row.lost.format(".0f"),
        row.tasks_per_job.format(".2f"),
        _percent(row.lag_p50),
        _percent(row.lag_p95),
        f"{row.client_lag_p95.format('.2f')} / {row.simulator_lag_p95.format('.2f')} s"
        + ("" if row.faithful else " !"),
    ]


def _percent(figure: Figure) -> str:
    scaled = Figure(figure.median * 100, figure.low * 100, figure.high * 100)
    return "-" if math.isnan(figure.median) else scaled.format(".0f") + " %"


def table(rows: Sequence[Row]) -> str:
    """The rows as a plain-text table, one line per competitor, then the notes."""
    if not rows:
        return "(no competitor ran)"
    first = rows[0]
    repeats = max((len(row.runs) for row in rows), default=0)
    spread = " (median [min-max])" if repeats > 1 else ""
    lines = [
        f"bulk at the provider's limits: {first.jobs} jobs, run times uniform"
        f" {DURATIONS[0]:.0f}-{DURATIONS[1]:.0f} s, time scale {first.time_scale:.3g},"
        f" {repeats} run(s) each{spread}",
        "".join(title.ljust(width) for title, width in _COLUMNS).rstrip(),
    ]
    for row in rows:
        if row.skipped is not None:
            lines.append(f"{row.competitor.ljust(_COLUMNS[0][1])}skipped: {row.skipped}")
            continue
        cells = _cells(row)
        lines.append(
            "".join(
                cell.ljust(width) + ("" if len(cell) < width or not width else " ")
                for cell, (_, width) in zip(cells, _COLUMNS, strict=True)
            ).rstrip()
        )
    lines.append("")
    lines.append("lag: (held - task end) / task run time; losses summed over the runs.")
    lines.append("loop lag: how late each process ran its timers, in provider seconds.")
    if not all(row.faithful for row in rows if row.skipped is None):
        lines.append(
            "! a loop lag past half the competitor's shortest own wait: compression changed"
            " how it behaved; rerun it with a larger --time-scale before trusting the row."
        )
    for row in rows:
        if row.skipped is None:
            lines.append(f"{row.competitor}: {row.description}")
            for reason, count in list(row.losses.items())[:3]:
                lines.append(f"    lost {count}x: {reason}")
    return "\n".join(lines)

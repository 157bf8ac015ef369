"""The lanes benchmark at a tiny size: its invariants, checked against the simulator's record.

Only what cannot come out right by accident is asserted: every bulk portrait
has its one video, no portrait is billed twice, nothing is throttled, and no
client finishes the batch before the single slot could. Timings are the
benchmark's to report, not the suite's to hold.
"""

from __future__ import annotations

from benchmarks.lanes_report import LanesReport
from benchmarks.scenarios.lanes import Settings, run

from .conftest import LOADED_MACHINE, SCALE

#: A few short jobs with visitors every 60 provider seconds, on the tests' clock,
#: with a loaded machine's jitter (a 1/s limit is a 10 ms window here).
TINY = Settings(
    jobs=3,
    time_scale=SCALE,
    seed=3,
    durations=(60.0, 90.0),
    visit_every=60.0,
    jitter=LOADED_MACHINE.jitter,
)


def _sound(report: LanesReport) -> None:
    assert report.lost == 0, report.variant
    assert report.made == report.jobs, report.variant  # the simulator's record, not the client
    assert report.billed_twice == 0, report.variant
    assert report.throttled == 0, report.variant
    assert report.interactive_failed == 0, report.variant
    assert report.splits, report.variant  # some visitor came while the batch ran
    assert report.makespan >= report.floor * 0.99, report.variant  # nothing beats the slot


async def test_one_process_loses_nothing_and_bills_each_portrait_once() -> None:
    reports = await run(TINY, processes=(1,))
    assert [r.variant for r in reports] == ["FIFO, 1 process"]
    for report in reports:
        _sound(report)


async def test_two_processes_sharing_redis_lose_nothing_and_bill_each_portrait_once() -> None:
    reports = await run(TINY, processes=(2,))
    assert [r.variant for r in reports] == ["FIFO, 2 processes"]
    for report in reports:
        _sound(report)

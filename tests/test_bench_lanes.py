"""The lanes benchmark at a tiny size: its invariants, checked against the simulator's record.

Only what cannot come out right by accident is asserted: every bulk portrait
has its video, no portrait is billed twice, nothing is throttled, no client
finishes the batch before the single slot could, and with lanes a visitor
waits less beyond the running task than under FIFO in the same run. The
figures themselves are the benchmark's to report, not the suite's to hold.
"""

from __future__ import annotations

from benchmarks.lanes_report import LanesReport
from benchmarks.scenarios.lanes import Settings, run

from .conftest import LOADED_MACHINE, SCALE

#: A few short jobs on the tests' clock, with a loaded machine's jitter (a 1/s limit is
#: a 10 ms window here). Visitors come every 250 provider seconds on average, more than
#: three tasks' run time, as in the benchmark (600 s against 180 s): a visitor seldom
#: finds another ahead, so what lanes change is the batch's queue in front of it.
TINY = Settings(
    jobs=6,
    time_scale=SCALE,
    seed=3,
    durations=(60.0, 90.0),
    visit_every=250.0,
    jitter=LOADED_MACHINE.jitter,
)


def _sound(report: LanesReport) -> None:
    """The promises every variant keeps, read from the simulator's record where they can be."""
    assert report.lost == 0, report.variant
    assert report.made == report.jobs, report.variant  # the simulator's record, not the client
    assert report.billed_twice == 0, report.variant
    assert report.throttled == 0, report.variant
    assert report.interactive_failed == 0, report.variant
    assert report.splits, report.variant  # some visitor came while the batch ran
    assert report.makespan >= report.floor * 0.99, report.variant  # nothing beats the slot


async def test_one_process_loses_nothing_and_bills_each_portrait_once() -> None:
    reports = await run(TINY, processes=(1,))
    assert [r.variant for r in reports] == ["FIFO, 1 process", "lanes, 1 process"]
    for report in reports:
        _sound(report)
    fifo, lanes = reports
    # Under FIFO a visitor's task queues behind the batch's; with lanes it goes next.
    assert lanes.figures("everything_else")[0] < fifo.figures("everything_else")[0]
    assert fifo.moved_aside == fifo.cancels == 0
    assert lanes.client_preempted == lanes.moved_aside  # the batch's count, the service's record


async def test_two_processes_with_lanes_sharing_redis_lose_nothing_and_bill_once() -> None:
    # Lanes only: FIFO in two processes is the shared pacing the suite already tests.
    (report,) = await run(TINY, processes=(2,), lanes=(True,))
    assert report.variant == "lanes, 2 processes"
    _sound(report)
    # The batch's process counts the moves another process's visitors caused, as the
    # simulator recorded them, and each move took a cancel.
    assert report.client_preempted == report.moved_aside
    assert report.cancels >= report.moved_aside

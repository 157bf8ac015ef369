"""The soak at CI size: jobs through every chaos kind end in their true state, paid once."""

from __future__ import annotations

from benchmarks import soak
from emoji_async.testing import CHAOS_KINDS


async def test_jobs_through_chaos_end_in_their_true_state_and_are_paid_for_once() -> None:
    report = await soak.run(jobs=120, rate=0.05, seed=3)
    assert report.violations() == []
    assert report.outcomes == {"succeeded": 120}
    assert report.tasks_created == 120
    # The run met real trouble: every kind was played, on about a third of the requests.
    assert set(report.faults_by_kind) == set(CHAOS_KINDS)
    assert sum(report.faults_by_kind.values()) > report.requests / 5
    # Lost submit answers were met, and settled both ways.
    assert report.adopted > 0
    assert report.resent > 0


async def test_the_soak_catches_submits_left_unsettled() -> None:
    # The checks can fail: with reconciliation off, an unanswered submit is left
    # uncertain, and a task it created belongs to no job; the report says both.
    report = await soak.run(jobs=40, rate=0.05, seed=3, reconcile=False)
    assert report.uncertain > 0
    assert report.orphans > 0
    assert any("uncertain" in line for line in report.violations())
    assert any("no job holds" in line for line in report.violations())

"""Benchmarks run at a tiny size so they cannot rot; only invariants are asserted, never timings."""

from __future__ import annotations

from benchmarks.single_job import run


async def test_the_single_job_scenario_finishes_every_job_once() -> None:
    report = await run(jobs=2, time_scale=0.002)
    assert report.tasks_created == 2
    assert report.throttled == 0
    assert report.polls_per_job >= 1
    assert report.requests_per_job >= 2 + report.polls_per_job  # detect + submit + polls
    assert report.lag_p95 >= report.lag_p50 >= 0


async def test_the_bulk_scenario_loses_nothing_and_pays_once() -> None:
    from benchmarks.bulk import run as run_bulk

    report = await run_bulk(jobs=4, time_scale=0.002)
    assert report.lost == 0
    assert report.tasks_created == 4
    assert report.throttled == 0
    assert report.makespan >= report.floor * 0.99  # nothing beats the single slot

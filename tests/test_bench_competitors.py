"""Scenario 1's competitors, run once at a tiny size so they cannot rot; invariants only, no timing.

Each test runs one competitor through ``benchmarks.scenarios.bulk`` (child
process, fresh simulator, the figures) with a few jobs on a tiny time scale.
The SDK 1.x row runs only when 1.x is already in its cache directory: CI does
not depend on a network install (``python -m benchmarks bulk --only
sdk1`` installs it once, with pip).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bulk_report import Row, table
from benchmarks.competitors import COMPETITORS, sdk1
from benchmarks.scenarios import bulk as scenario_bulk

pytest.importorskip("dashscope.v2.resources._jobs")  # the SDK 2.x rows (the bench extra)

JOBS = 4
TIME_SCALE = 0.0005


async def one_row(name: str, *, install_sdk1: bool = True) -> Row:
    [row] = await scenario_bulk.run(
        jobs=JOBS, time_scale=TIME_SCALE, repeats=1, only=[name], install_sdk1=install_sdk1
    )
    return row


def assert_well_formed(row: Row) -> None:
    """Every job is either held (with a video the simulator really made) or lost with a reason."""
    assert row.skipped is None
    [measured] = row.runs
    results = measured.results
    assert [r.key for r in results] == [str(n) for n in range(JOBS)]
    held = [r for r in results if r.held]
    lost = [r for r in results if not r.held]
    assert len(held) + len(lost) == JOBS
    assert measured.report.lost == len(lost)
    assert all(r.error for r in lost)
    assert measured.verified == len(held)
    assert measured.report.tasks_created >= len(held)
    assert measured.report.requests_per_job > 0


async def test_ours_loses_nothing_and_creates_one_task_per_job() -> None:
    row = await one_row("ours")
    assert_well_formed(row)
    report = row.runs[0].report
    assert report.lost == 0
    assert report.tasks_created == JOBS
    assert report.throttled == 0


@pytest.mark.parametrize("name", ["sdk2_gather", "sdk2_semaphore", "raw"])
async def test_a_competitor_row_accounts_for_every_job(name: str) -> None:
    assert_well_formed(await one_row(name))


async def test_the_sdk1_row_accounts_for_every_job_when_1x_is_cached() -> None:
    if await sdk1.available() is None:
        pytest.skip(f"dashscope 1.x is not in {sdk1.sdk_dir()}; CI does not pip-install it")
    assert_well_formed(await one_row("sdk1", install_sdk1=False))


async def test_without_1x_and_no_install_the_sdk1_row_is_skipped_with_its_reason(
    tmp_path: Path,
) -> None:
    [row] = await scenario_bulk.run(
        jobs=1,
        time_scale=TIME_SCALE,
        repeats=1,
        only=["sdk1"],
        sdk1_dir=tmp_path / "nothing-here",
        install_sdk1=False,
    )
    assert row.runs == ()
    assert row.skipped is not None
    assert "not installed" in row.skipped
    assert "skipped" in table([row])


def test_the_sdk2_retry_sleeps_are_scaled_inside_the_block_and_restored_after() -> None:
    from benchmarks.competitors._sdk2 import scaled_transport_retries

    http = pytest.importorskip("dashscope.v2.transport.http")
    original = http.backoff_delay
    with scaled_transport_retries(0.001):
        assert http.backoff_delay is not original
        assert all(http.backoff_delay(attempt, None) <= 8 * 1.25 * 0.001 for attempt in range(6))
    assert http.backoff_delay is original


def test_every_competitor_has_a_row_name_the_command_line_accepts() -> None:
    names = [c.name for c in COMPETITORS]
    assert names == ["ours", "sdk2_gather", "sdk2_semaphore", "sdk1", "raw"]
    assert len(set(names)) == len(names)

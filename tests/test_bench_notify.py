"""The notifications scenario at a tiny size, so it cannot rot: invariants only, never timings."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.scenarios import notify


@pytest.mark.timeout(240)
async def test_the_notify_scenario_completes_every_job_once_in_every_variant() -> None:
    settings = notify.Settings(single_jobs=2, warm_up=1, batch_jobs=3, time_scale=0.002)
    rows = await notify.run(settings)
    assert len(rows) == 5 + len(notify.CURVE) + 3
    for row in rows:
        assert row.completed == row.jobs, row
        assert row.billed_twice == 0, row
        assert row.lag_p95 >= row.lag_p50 >= 0, row
        # A submit and at least the query that saw the end, per job.
        assert row.requests_per_job >= 2, row
    batches = [r for r in rows if r.makespan_over_floor is not None]
    assert len(batches) == 3
    assert all(r.makespan_over_floor is not None and r.makespan_over_floor >= 0.99 for r in batches)
    text = notify.section(settings, rows)
    assert "Portraits billed twice, all variants: 0." in text


def test_the_section_goes_in_place_of_the_one_there_or_before_the_reading_notes(
    tmp_path: Path,
) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\n## 5. Lanes\n\nfive\n\n## Reading the figures\n\nnotes\n")
    notify.write_section(report, "first", when="then")
    notify.write_section(report, "second", when="now")
    text = report.read_text()
    assert text.count(notify.TITLE) == 1
    assert "first" not in text
    assert text.index("five") < text.index("second")
    assert text.index("second") < text.index("## Reading the figures")
    assert "(now)" in text

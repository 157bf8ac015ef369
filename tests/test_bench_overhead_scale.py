"""The overhead and scale benchmarks at a tiny size: invariants only, never a timing."""

from __future__ import annotations

import pytest

from benchmarks.scenarios import overhead as scenario_overhead
from benchmarks.scenarios import scale as scenario_scale
from benchmarks.simproc import SimProcess, simulator_process

pytest.importorskip("psutil")
pytest.importorskip("dashscope")


async def test_the_simulator_process_answers_and_has_ended_after_the_block() -> None:
    async with simulator_process() as sim:
        assert sim.base_url.startswith("http://127.0.0.1:")
        assert sim.returncode is None
        assert (await sim.counters()).api_requests == 0
    assert sim.returncode is not None


async def test_the_simulator_process_has_ended_after_a_block_that_failed() -> None:
    started: list[SimProcess] = []

    async def fail_inside() -> None:
        async with simulator_process() as sim:
            started.append(sim)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_inside()
    assert started[0].returncode is not None


async def test_every_competitor_finishes_every_job_with_one_task_and_two_requests_each() -> None:
    report = await scenario_overhead.run(jobs=50, repeats=1, concurrency=8, warmup=5)
    (repeat,) = report.repeats
    assert [m.competitor for m in repeat] == list(scenario_overhead.COMPETITORS)
    for measured in repeat:
        assert measured.succeeded == measured.jobs == 50
        assert measured.tasks_created == 50
        # One submit and one poll per job; ours also reads the task list once before
        # its first submit, so that a lost answer can later be told from older tasks.
        assert measured.requests == 100 + (measured.competitor == "ours")
        assert measured.connections_opened <= 8  # one connection per job in flight, at most
        assert measured.cpu_seconds > 0
    assert "emoji_async / raw aiohttp" in scenario_overhead.table(report)


async def test_the_scale_run_finishes_every_task_within_the_client_pool() -> None:
    report = await scenario_scale.run(tasks=200, repeats=1, task_seconds=2.0)
    (sample,) = report.samples
    assert sample.succeeded == sample.tasks_created == 200
    assert sample.pool_limit > 0
    assert sample.connections_peak_sampled <= sample.pool_limit
    assert sample.ticks > 0
    assert sample.rss_peak_mb >= sample.rss_before_mb
    assert "loop lag p99" in scenario_scale.table(report)

"""A batch killed with SIGKILL half way resumes from its journal: every job done, paid once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from benchmarks.scenarios import crash
from emoji_async.testing import serve

from .conftest import KEY, SCALE, sim_config

JOBS = 10

# The batch runs in a child process; the simulator stays here, so it outlives the kill
# and remembers every task the child created.
CHILD = Path(__file__).with_name("batch_child.py")


async def start_child(base_url: str, tmp_path: Path) -> asyncio.subprocess.Process:
    args = [base_url, str(tmp_path / "run.db"), str(tmp_path / "videos"), str(SCALE), str(JOBS)]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        *args,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "DASHSCOPE_API_KEY": KEY},
    )


async def test_a_batch_killed_half_way_resumes_with_one_task_per_job(tmp_path: Path) -> None:
    async with serve(sim_config()) as server:
        sim = server.simulator
        child = await start_child(server.base_url, tmp_path)
        assert child.stdout is not None
        submitted = 0
        async with asyncio.timeout(60):
            while submitted < JOBS // 2:
                line = (await child.stdout.readline()).decode()
                assert line, "the child ended before half its jobs were submitted"
                submitted += line.startswith("submitted")
        child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
        created_before = sim.stats.tasks_created
        assert JOBS // 2 <= created_before < JOBS

        rerun = await start_child(server.base_url, tmp_path)
        async with asyncio.timeout(60):
            out, _ = await rerun.communicate()
        assert rerun.returncode == 0
        summary = json.loads(out.decode().strip().splitlines()[-1])
        assert summary["ok"] == [True] * JOBS
        assert summary["resumed"] >= created_before
        assert sim.stats.tasks_created == JOBS
        assert {t.status for t in sim.tasks()} == {"SUCCEEDED"}
    videos = sorted(p.name for p in (tmp_path / "videos").iterdir())
    assert videos == sorted(f"job-{n}.mp4" for n in range(JOBS))


@pytest.mark.timeout(180)
async def test_a_cli_batch_killed_at_random_moments_under_faults_pays_each_portrait_once() -> None:
    """Held against the simulator's record of which image each task was made from."""
    report = await crash.run(jobs=12, kills=4, seed=5, zone="UTC", skew=-30.0)
    assert report.violations() == []
    assert report.killed > 0
    assert report.faults > 0
    assert report.states == {"DOWNLOADED": 12}
    assert report.exit_status == 0
    assert report.audit.foreign == report.audit.paid_twice == report.audit.uncertain == ()

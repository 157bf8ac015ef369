"""A batch killed with SIGKILL half way resumes from its journal: every job done, paid once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from emoji_async._journal import JobState, Journal
from emoji_async.testing import Chaos, serve

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


async def test_a_cli_batch_killed_during_chaos_resumes_with_every_job_paid_once(
    tmp_path: Path,
) -> None:
    count = 12
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        "image,driven_id,key\n"
        + "".join(f"https://example.com/c/{n}.png,mengwa_kaixin,c{n}\n" for n in range(count))
    )
    chaos = Chaos.uniform(0.02, seed=5, slow_seconds=0.2, retry_after=0.05, burst_length=3)
    journal = tmp_path / "batch.db"
    command = [
        sys.executable,
        "-m",
        "emoji_async",
        "batch",
        str(jobs),
        "--out",
        str(tmp_path / "videos"),
        "--journal",
        str(journal),
        "--time-scale",
        str(SCALE),
        "--progress",
        "never",
    ]
    async with serve(sim_config(chaos=chaos, render_videos=False)) as server:
        sim = server.simulator
        env = {**os.environ, "DASHSCOPE_API_KEY": KEY}
        base = ["--base-url", server.base_url]
        quiet = asyncio.subprocess.DEVNULL
        first = await asyncio.create_subprocess_exec(
            *command, *base, env=env, stdout=quiet, stderr=quiet
        )
        async with asyncio.timeout(60):
            while sim.stats.tasks_created < count // 2:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        assert sim.stats.tasks_created < count

        rerun = await asyncio.create_subprocess_exec(
            *command, *base, env=env, stdout=quiet, stderr=quiet
        )
        async with asyncio.timeout(60):
            assert await rerun.wait() == 0
        faults = sim.stats.faults
        tasks = {t.image_url: t for t in sim.tasks()}
        assert sim.stats.tasks_created == count  # one task per job, none twice
    assert faults > 0
    async with await Journal.open(journal) as record:
        entries = {e.key: e for e in record.entries()}
    for n in range(count):
        entry = entries[f"c{n}"]
        assert entry.state is JobState.DOWNLOADED
        assert entry.task_id == tasks[f"https://example.com/c/{n}.png"].task_id
        assert (tmp_path / "videos" / f"c{n}.mp4").is_file()

"""``emoji-async batch`` end to end against the simulator: videos, summary, exit codes, resume."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emoji_async import BBox, DownloadError, EmojiJob, VideoResult, events, templates
from emoji_async._journal import Journal
from emoji_async.cli._progress import BatchTally, JobState
from emoji_async.testing import SimulatorServer, fixed_duration
from tests.conftest import KEY, SCALE, batch, client_for, serve_in_thread, sim_config

NAMES = ("ada", "grace", "alan", "barbara", "donald", "edsger")
TEMPLATES = (
    "mengwa_kaixin",
    "dagong_weixiao",
    "jingdian_deyi_1",
    "mengwa_jidong",
    "jingdian_qidai",
    "dagong_kaixin",
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    """A simulator in a thread (the command runs its own event loop), and the key set.

    It serves real MP4s: the tests of saved videos check that each is one.
    """
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    with serve_in_thread(sim_config(durations=fixed_duration(20), render_videos=True)) as srv:
        yield srv


def jobs_csv(
    path: Path, names: tuple[str, ...] = NAMES, *, query: dict[str, str] | None = None
) -> Path:
    """A jobs file animating ``names``; ``query`` adds a test trigger to some images."""
    rows = ["image,driven_id,key"]
    for name, template in zip(names, TEMPLATES, strict=False):
        rows.append(
            f"https://example.com/p/{name}.png{(query or {}).get(name, '')},{template},{name}"
        )
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def summary_rows(out: str) -> dict[str, list[str]]:
    """The summary table's rows by key (cells split on runs of two or more spaces)."""
    rows: dict[str, list[str]] = {}
    for line in out.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0] in NAMES:
            rows[cells[0]] = cells
    return rows


def test_a_batch_saves_every_video_prints_a_row_per_job_and_exits_0(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = jobs_csv(tmp_path / "jobs.csv")
    assert batch(server, tmp_path, jobs) == 0
    saved = sorted((tmp_path / "videos").iterdir())
    assert [p.name for p in saved] == sorted(f"{n}.mp4" for n in NAMES)
    assert all(p.read_bytes()[4:8] == b"ftyp" for p in saved)
    assert server.simulator.stats.tasks_created == 6
    captured = capsys.readouterr()
    rows = summary_rows(captured.out)
    assert list(rows) == list(NAMES)
    for name, (_, state, task_id, seconds, file) in rows.items():
        assert state == "succeeded"
        task = server.simulator.task(task_id)
        assert task is not None
        assert task.status == "SUCCEEDED"
        assert float(seconds) > 0
        assert file == f"{name}.mp4"
    total, billed = captured.out.splitlines()[-2:]
    made = sum(info.video_seconds for info in templates() if info.driven_id in TEMPLATES)
    assert total.startswith(f"6 jobs: 6 succeeded, 0 failed; {made} s of video in ")
    assert billed.startswith(f"billed: {made} s of video (6 videos), 6 detections")
    assert captured.err == ""  # no terminal: no progress bar


def test_a_job_whose_task_fails_makes_the_batch_exit_1_while_the_others_succeed(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = NAMES[:3]
    jobs = jobs_csv(tmp_path / "jobs.csv", names, query={"grace": "?sim_fail=InternalError.Algo"})
    assert batch(server, tmp_path, jobs) == 1
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["ada.mp4", "alan.mp4"]
    captured = capsys.readouterr()
    rows = summary_rows(captured.out)
    assert [rows[n][1] for n in names] == ["succeeded", "failed", "succeeded"]
    assert rows["grace"][4].startswith("TaskFailedError: task ")
    assert "InternalError.Algo" in rows["grace"][4]
    assert captured.out.splitlines()[-2].startswith("3 jobs: 2 succeeded, 1 failed;")


def test_a_rerun_with_the_same_journal_resumes_without_creating_a_task(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = jobs_csv(tmp_path / "jobs.csv", NAMES[:3])
    assert batch(server, tmp_path, jobs) == 0
    created = server.simulator.stats.tasks_created
    first = summary_rows(capsys.readouterr().out)

    assert batch(server, tmp_path, jobs) == 0
    assert server.simulator.stats.tasks_created == created == 3
    out = capsys.readouterr().out
    again = summary_rows(out)
    assert [again[n][1] for n in NAMES[:3]] == ["succeeded (resumed)"] * 3
    assert [again[n][2] for n in NAMES[:3]] == [first[n][2] for n in NAMES[:3]]
    assert "3 resumed from the journal" in out.splitlines()[-2]


def test_a_batch_into_a_folder_holding_another_runs_videos_is_refused_naming_the_job(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = jobs_csv(tmp_path / "jobs.csv", NAMES[:2])
    out = tmp_path / "videos"
    out.mkdir()
    (out / "grace.mp4").write_bytes(b"grace's video from another run")
    assert batch(server, tmp_path, jobs) == 2
    err = capsys.readouterr().err
    assert f"{jobs}: job 'grace'" in err
    assert f"{out / 'grace.mp4'}' exists" in err
    assert server.simulator.requests == []
    assert (out / "grace.mp4").read_bytes() == b"grace's video from another run"


def test_a_budget_skips_what_it_cannot_cover_and_the_summary_ends_with_the_bill(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Templates of 3, 2, 3 and 4 s, each reserved 5 s until one of its videos is billed:
    # 10 s covers the first three (3 + 2 billed, 5 held), not the fourth (8 + 5 held).
    jobs = jobs_csv(tmp_path / "jobs.csv", NAMES[:4])
    extra = ["--budget-seconds", "10", "--price-video", "0.5", "--price-detection", "0.01"]
    assert batch(server, tmp_path, jobs, *extra, "--concurrency", "1") == 0
    stats = server.simulator.stats
    assert stats.video_seconds_billed == 8
    captured = capsys.readouterr()
    rows = summary_rows(captured.out)
    assert [rows[n][1] for n in NAMES[:4]] == ["succeeded"] * 3 + ["skipped"]
    total, billed = captured.out.splitlines()[-2:]
    assert total.startswith("4 jobs: 3 succeeded, 0 failed, 1 skipped for the budget;")
    assert billed == (
        "billed: 8 s of video (3 videos), 3 detections; estimated cost 4.0300 at your prices"
    )
    assert stats.detections_billed == 3


def test_a_batch_of_one_counts_it_in_the_singular(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = jobs_csv(tmp_path / "jobs.csv", NAMES[:1])
    assert batch(server, tmp_path, jobs) == 0
    total, billed = capsys.readouterr().out.splitlines()[-2:]
    assert total.startswith("1 job: 1 succeeded, 0 failed; 3 s of video in ")
    assert billed.startswith("billed: 3 s of video (1 video), 1 detection (")


def test_into_a_pipe_each_summary_line_is_as_long_as_its_content_and_never_folded(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = jobs_csv(tmp_path / "jobs.csv", NAMES[:2], query={"ada": "?sim_fail=InternalError.Algo"})
    assert batch(server, tmp_path, jobs) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "batch summary"
    assert all(line == line.rstrip() for line in lines)
    (ada,) = (line for line in lines if line.lstrip().startswith("ada "))
    assert len(ada) > 200  # the whole error, on its row
    assert ada.endswith(")")  # ... (request_id=...)
    (grace,) = (line for line in lines if line.lstrip().startswith("grace "))
    assert grace.endswith("grace.mp4")


def test_a_saved_file_that_is_not_an_mp4_is_marked_in_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    jobs = jobs_csv(tmp_path / "jobs.csv", NAMES[:2])
    config = sim_config(durations=fixed_duration(20))
    with serve_in_thread(config) as server:
        assert batch(server, tmp_path, jobs) == 0
    out = capsys.readouterr().out
    rows = summary_rows(out)
    assert rows["ada"][4] == (
        "ada.mp4 (placeholder, not a video: install emoji-async[video] for real videos)"
    )
    assert "warning: saved files that are not MP4 videos: 2 (marked above)" in out


def test_keys_and_errors_with_square_brackets_are_shown_as_written(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        "image,driven_id,key\n"
        "https://example.com/p/ada.png,mengwa_kaixin,[b]ada[/b]\n"
        "https://example.com/p/bob.png?sim_fail=InternalError.Algo,mengwa_kaixin,bob[1]\n",
        encoding="utf-8",
    )
    assert batch(server, tmp_path, jobs) == 1
    out = capsys.readouterr().out
    assert "[b]ada[/b]" in out
    assert "bob[1]" in out


def test_budget_options_refuse_nonsense(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = jobs_csv(tmp_path / "jobs.csv", NAMES[:1])
    for bad in (["--budget-seconds", "-1"], ["--price-video", "nan"], ["--budget-detections", "x"]):
        with pytest.raises(SystemExit) as caught:
            batch(server, tmp_path, jobs, *bad)
        assert caught.value.code == 2
        assert bad[0] in capsys.readouterr().err
    assert server.simulator.stats.tasks_created == 0


def test_the_lane_option_takes_the_two_lanes_and_refuses_anything_else(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = jobs_csv(tmp_path / "jobs.csv", NAMES[:1])
    with pytest.raises(SystemExit) as caught:
        batch(server, tmp_path, jobs, "--lane", "urgent")
    assert caught.value.code == 2
    assert "--lane" in capsys.readouterr().err
    assert server.simulator.stats.tasks_created == 0
    assert batch(server, tmp_path, jobs, "--lane", "interactive") == 0
    assert server.simulator.stats.tasks_created == 1


def test_the_progress_bar_counts_jobs_by_state_on_stderr_when_forced(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = jobs_csv(
        tmp_path / "jobs.csv", NAMES[:3], query={"alan": "?sim_fail=InternalError.Algo"}
    )
    assert batch(server, tmp_path, jobs, "--progress", "always") == 1
    captured = capsys.readouterr()
    assert "\x1b[" in captured.err  # drawn as on a terminal
    drawn = ANSI.sub("", captured.err)
    assert "3/3" in drawn
    assert "succeeded 2 · failed 1" in drawn
    assert "videos/min" in drawn
    assert "ETA" in drawn
    assert "\x1b[" not in captured.out  # the summary stays plain in a pipe


def test_progress_never_draws_nothing_even_when_stderr_looks_like_a_terminal(
    server: SimulatorServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich then takes any stream for a terminal
    jobs = jobs_csv(tmp_path / "jobs.csv", NAMES[:1])
    assert batch(server, tmp_path, jobs, "--progress", "never") == 0
    assert capsys.readouterr().err == ""


def test_the_tally_counts_each_job_once_in_its_latest_state() -> None:
    tally = BatchTally(4, downloads=True)
    video = VideoResult(task_id="t1", video_url="https://x/v.mp4", video_duration=3)
    box = BBox(1, 1, 9, 9)
    for event in (
        events.Detected(key="a", face_bbox=box, ext_bbox=box, at=1.0),
        events.Submitted(key="a", task_id="t1", at=1.5),
        events.Running(key="a", task_id="t1", at=2.0),
        events.Succeeded(key="a", task_id="t1", video=video, at=5.0),
        events.Downloaded(key="a", path=Path("v/a.mp4"), size=10, at=5.5),
        events.Resumed(key="b", state="DOWNLOADED", task_id="t0", at=1.0),
        events.Submitted(key="c", task_id="t2", at=2.0),
        events.Queued(key="c", task_id="t2", ahead=1, at=2.1),
    ):
        tally(event)
    counts = tally.counts()
    assert counts[JobState.SUCCEEDED] == 2
    assert counts[JobState.QUEUED] == 1
    assert counts[JobState.WAITING] == 1
    assert sum(counts.values()) == 4
    assert tally.done == 2
    assert tally.jobs["a"].seconds == 4.5
    assert tally.jobs["b"].seconds is None  # finished by an earlier run
    # A job that fails after its task succeeded (its download broke) counts as failed only.
    tally(events.Succeeded(key="c", task_id="t2", video=video, at=6.0))
    tally(events.Failed(key="c", task_id="t2", error=DownloadError("cut short"), at=6.5))
    assert (tally.counts()[JobState.FAILED], tally.done) == (1, 3)


# --- Ctrl-C ---------------------------------------------------------------------------


async def test_ctrl_c_stops_the_batch_with_exit_130_and_cancels_its_pending_tasks(
    tmp_path: Path,
) -> None:
    jobs = jobs_csv(
        tmp_path / "jobs.csv", NAMES[:4], query=dict.fromkeys(NAMES, "?sim_duration=3000")
    )
    with serve_in_thread(sim_config()) as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "emoji_async",
            "batch",
            str(jobs),
            "--out",
            str(tmp_path / "videos"),
            "--journal",
            str(tmp_path / "batch.db"),
            "--concurrency",
            "3",
            "--cancel-pending-on-interrupt",
            "--base-url",
            server.base_url,
            "--time-scale",
            str(SCALE),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "DASHSCOPE_API_KEY": KEY},
        )
        try:
            # One task runs (30 s at this scale) and two wait behind it: then interrupt.
            deadline = time.monotonic() + 20
            while server.simulator.stats.tasks_created < 3:
                assert time.monotonic() < deadline, "the batch never submitted its jobs"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # let the batch see its tasks queued
            proc.send_signal(signal.SIGINT)
            async with asyncio.timeout(20):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        statuses = sorted(t.status for t in server.simulator.tasks())
    assert proc.returncode == 130
    assert "Traceback" not in err.decode()
    assert "run the same command again to resume" in err.decode()
    assert "batch interrupted" in out.decode()
    assert statuses == ["CANCELED", "CANCELED", "RUNNING"]


# --- one journal, one jobs file ---------------------------------------------------------


def test_a_journal_made_for_another_jobs_file_is_refused_naming_both_before_any_request(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = jobs_csv(tmp_path / "first.csv", NAMES[:1])
    other = jobs_csv(tmp_path / "other.csv", NAMES[1:2])
    assert batch(server, tmp_path, first) == 0
    capsys.readouterr()
    requests = len(server.simulator.requests)
    assert batch(server, tmp_path, other) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(
        f"emoji-async: error: the journal {tmp_path / 'batch.db'} belongs to the jobs file"
        f" {first}, not {other}: "
    )
    assert len(server.simulator.requests) == requests
    assert server.simulator.stats.tasks_created == 1


def test_a_refused_journal_draws_no_progress_bar_even_when_forced(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = jobs_csv(tmp_path / "first.csv", NAMES[:1])
    other = jobs_csv(tmp_path / "other.csv", NAMES[1:2])
    assert batch(server, tmp_path, first) == 0
    capsys.readouterr()
    assert batch(server, tmp_path, other, "--progress", "always") == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"emoji-async: error: the journal {tmp_path / 'batch.db'} belongs to")


def test_jobs_appended_to_the_same_file_run_and_the_earlier_ones_resume(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = jobs_csv(tmp_path / "jobs.csv", NAMES[:1])
    assert batch(server, tmp_path, jobs) == 0
    jobs_csv(jobs, NAMES[:2])
    assert batch(server, tmp_path, jobs) == 0
    rows = summary_rows(capsys.readouterr().out)
    assert [rows[n][1] for n in NAMES[:2]] == ["succeeded (resumed)", "succeeded"]
    assert server.simulator.stats.tasks_created == 2


def test_a_moved_jobs_file_keeps_its_journal_which_then_records_the_new_place(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = jobs_csv(tmp_path / "jobs.csv", NAMES[:1])
    assert batch(server, tmp_path, jobs) == 0
    moved = jobs.rename(tmp_path / "renamed.csv")
    assert batch(server, tmp_path, moved) == 0
    assert summary_rows(capsys.readouterr().out)["ada"][1] == "succeeded (resumed)"
    # The old name, now another file with other jobs, is no longer the journal's.
    jobs_csv(jobs, NAMES[1:2])
    assert batch(server, tmp_path, jobs) == 2
    assert f"belongs to the jobs file {moved}, not {jobs}" in capsys.readouterr().err


def test_a_journal_that_names_no_jobs_file_takes_the_first_one_given(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As a journal from before jobs files were recorded, or one the library made.
    image = "https://example.com/p/ada.png"
    face, ext = server.simulator.boxes_for(image)

    async def library_journal() -> None:
        async with await Journal.open(tmp_path / "batch.db") as journal:
            await journal.detected(
                "ada",
                image=image,
                driven_id="mengwa_kaixin",
                face_bbox=BBox.parse(face),
                ext_bbox=BBox.parse(ext),
            )

    asyncio.run(library_journal())
    first = jobs_csv(tmp_path / "first.csv", NAMES[:1])
    assert batch(server, tmp_path, first) == 0
    other = jobs_csv(tmp_path / "other.csv", NAMES[1:2])
    assert batch(server, tmp_path, other) == 2
    assert f"belongs to the jobs file {first}, not {other}" in capsys.readouterr().err


async def test_the_library_uses_a_journal_the_command_line_made_without_any_jobs_file(
    server: SimulatorServer, tmp_path: Path
) -> None:
    jobs = jobs_csv(tmp_path / "jobs.csv", NAMES[:1])
    assert await asyncio.to_thread(batch, server, tmp_path, jobs) == 0
    async with client_for(server) as client:
        (outcome,) = await client.generate_many(
            [EmojiJob("https://example.com/p/grace.png", "dagong_weixiao", key="grace")],
            journal=tmp_path / "batch.db",
        )
    assert outcome.ok
    async with await Journal.open(tmp_path / "batch.db") as journal:
        assert journal.jobs_file == jobs

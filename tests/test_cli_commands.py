"""The one-task commands against the simulator (detect, generate, status, cancel, list); the key."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emoji_async.cli import main
from emoji_async.testing import Fault, SimulatorServer, fixed_duration
from tests.conftest import KEY, SCALE, client_for, detect_and_submit, serve_in_thread, sim_config

IMG = "https://example.com/portraits/ada.png"
EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    """A simulator in a thread (the command runs its own event loop), and the key set.

    It serves real MP4s: the tests of saved videos check that each is one.
    """
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.delenv("DASHSCOPE_BASE_URL", raising=False)
    with serve_in_thread(sim_config(durations=fixed_duration(20), render_videos=True)) as srv:
        yield srv


def cli(server: SimulatorServer, *argv: str) -> int:
    """The command line, in this process, pointed at ``server`` on the tests' clock."""
    return main([*argv, "--base-url", server.base_url, "--time-scale", str(SCALE)])


def submit(server: SimulatorServer, url: str = IMG) -> str:
    """A task submitted by a client of this test, not by the command under test."""

    async def go() -> str:
        async with client_for(server) as client:
            return (await detect_and_submit(client, url)).task_id

    return asyncio.run(go())


def fields(out: str) -> dict[str, str]:
    """``name: value`` lines as a dict."""
    pairs = (line.split(":", 1) for line in out.splitlines())
    return {name: value.strip() for name, value in pairs}


@pytest.fixture
def local_zone() -> Iterator[str]:
    """This process's local time zone set to UTC+05:30 (neither UTC nor Beijing); its offset."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "XST-05:30"  # POSIX spelling: 5 h 30 east of UTC
    time.tzset()
    try:
        yield "+05:30"
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


# --- detect ---------------------------------------------------------------------------


def test_detect_prints_the_boxes_the_service_found(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(server, "detect", IMG) == 0
    face, ext = server.simulator.boxes_for(IMG)
    out = fields(capsys.readouterr().out)
    assert out["face_bbox"] == " ".join(map(str, face))
    assert out["ext_bbox"] == " ".join(map(str, ext))


def test_detect_json_is_one_object_with_both_boxes(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(server, "detect", IMG, "--json") == 0
    found = json.loads(capsys.readouterr().out)
    assert (found["face_bbox"], found["ext_bbox"]) == server.simulator.boxes_for(IMG)


def test_a_rejected_portrait_is_one_error_line_naming_the_code_and_exit_1(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(server, "detect", IMG + "?sim_reject=InvalidFile.FacePose") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("emoji-async: error: InvalidFile.FacePose: ")


def test_a_missing_local_image_with_a_long_path_is_named_by_its_start_and_its_file_name(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / ("a-long-folder-name-" * 5) / "portrait-of-grace.png"
    assert cli(server, "detect", str(missing)) == 2
    (line,) = capsys.readouterr().err.splitlines()
    expected = "emoji-async: error: IMAGE_URL: expected the path of an existing file, got "
    assert line.startswith(expected + repr(str(missing)[:20]).rstrip("'"))
    assert line.endswith("/portrait-of-grace.png'")
    assert server.simulator.requests == []


# --- generate -------------------------------------------------------------------------


def test_generate_saves_the_video_and_prints_its_url_and_length(
    server: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(server, "generate", IMG, "mengwa_kaixin", "--out", str(tmp_path)) == 0
    captured = capsys.readouterr()
    out = fields(captured.out)
    task = server.simulator.task(out["task_id"])
    assert task is not None
    assert task.status == "SUCCEEDED"
    assert out["video_url"].startswith(server.origin)
    assert out["video_duration"] == "3 s"  # mengwa_kaixin makes 3 s
    saved = Path(out["file"])
    assert saved.parent == tmp_path
    assert saved.read_bytes()[4:8] == b"ftyp"  # an MP4
    assert f"submitted: task {task.task_id}" in captured.err
    assert server.simulator.stats.tasks_created == 1


def test_generate_says_when_the_saved_file_is_the_simulators_placeholder_not_a_video(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    with serve_in_thread(sim_config(durations=fixed_duration(20))) as server:
        assert cli(server, "generate", IMG, "mengwa_kaixin", "--out", str(tmp_path)) == 0
    out = fields(capsys.readouterr().out)
    assert Path(out["file"]).read_bytes()[4:8] != b"ftyp"
    assert out["warning"] == (
        "placeholder, not a video: install emoji-async[video] for real videos"
    )


def test_generate_of_a_task_that_fails_exits_1_naming_the_task_and_the_code(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(server, "generate", IMG + "?sim_fail=InternalError.Algo", "dagong_kaixin") == 1
    (task,) = server.simulator.tasks()
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(f"emoji-async: error: task {task.task_id}: failed: InternalError.Algo")


# --- status ---------------------------------------------------------------------------


def test_status_prints_the_tasks_state_after_one_query(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = submit(server)
    queries = server.simulator.stats.requests_by_endpoint.get("query", 0)
    assert cli(server, "status", task_id) == 0
    out = fields(capsys.readouterr().out)
    assert out["task_id"] == task_id
    assert out["status"] in ("PENDING", "RUNNING")
    assert "video_url" not in out
    assert server.simulator.stats.requests_by_endpoint["query"] == queries + 1


def test_status_and_list_show_a_tasks_creation_as_the_same_instant_in_the_local_zone(
    server: SimulatorServer, local_zone: str, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = submit(server)
    assert cli(server, "status", task_id) == 0
    submitted = fields(capsys.readouterr().out)["submit_time"]
    assert cli(server, "list") == 0
    (row,) = (line.split() for line in capsys.readouterr().out.splitlines() if task_id in line)
    created = row[2]
    assert created == submitted
    assert created.endswith(local_zone)
    assert dt.datetime.fromisoformat(created).utcoffset() == dt.timedelta(hours=5, minutes=30)


def test_status_wait_follows_the_task_to_its_video(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = submit(server)
    assert cli(server, "status", task_id, "--wait", "--json") == 0
    captured = capsys.readouterr()
    snapshot = json.loads(captured.out)
    assert snapshot["status"] == "SUCCEEDED"
    assert snapshot["video_duration"] == 3
    assert snapshot["video_url"].startswith(server.origin)
    assert captured.err.splitlines()[-1].endswith("SUCCEEDED")


def test_status_wait_of_a_task_that_did_not_succeed_exits_1(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(server, "status", "no-such-task", "--wait") == 1
    captured = capsys.readouterr()
    assert fields(captured.out)["status"] == "UNKNOWN"
    assert captured.err.splitlines()[-1] == "emoji-async: error: task no-such-task ended UNKNOWN"


# --- cancel ---------------------------------------------------------------------------


def test_cancel_cancels_a_task_still_pending(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    submit(server, "https://example.com/first.png")  # takes the one running slot
    queued = submit(server)
    assert cli(server, "cancel", queued) == 0
    assert capsys.readouterr().out == f"canceled task {queued}\n"
    task = server.simulator.task(queued)
    assert task is not None
    assert task.status == "CANCELED"


def test_cancel_of_a_running_task_is_refused_naming_its_state_and_the_services_answer(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    running = submit(server)
    assert cli(server, "cancel", running) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"emoji-async: error: cannot cancel task {running}: it is RUNNING, and only a PENDING"
        " task can be cancelled (HTTP 400 UnsupportedOperation, request_id="
    )


def test_cancel_of_a_task_that_does_not_exist_says_so_plainly(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(server, "cancel", "no-such-task") == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("emoji-async: error: task no-such-task does not exist: ")
    assert "24 h" in line
    assert "PENDING" not in line


# --- list -----------------------------------------------------------------------------


def test_list_shows_the_accounts_tasks_and_filters_them_by_state(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    running = submit(server, "https://example.com/first.png")
    queued = submit(server)
    assert cli(server, "list") == 0
    out = capsys.readouterr().out
    assert running in out
    assert queued in out
    assert out.splitlines()[-1] == "page 1 of 1: 2 tasks in all"

    assert cli(server, "list", "--status", "pending", "--json") == 0
    page = json.loads(capsys.readouterr().out)
    assert [t["task_id"] for t in page["tasks"]] == [queued]
    assert page["tasks"][0]["status"] == "PENDING"


def test_list_with_no_task_says_so_without_page_arithmetic(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(server, "list") == 0
    assert capsys.readouterr().out == "no tasks in the last 24 h\n"
    submit(server)  # RUNNING: none is PENDING
    assert cli(server, "list", "--status", "pending") == 0
    assert capsys.readouterr().out == "no PENDING tasks in the last 24 h\n"
    assert cli(server, "list", "--page", "3") == 0
    assert capsys.readouterr().out == "no page 3: 1 task in all, on 1 page of 10\n"


def test_list_says_how_many_rows_it_could_not_read(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    running = submit(server, "https://example.com/first.png")
    queued = submit(server)
    # The newest row (the queued task's) comes without its status on every ask.
    server.simulator.faults.add(Fault("list", "drop_field", field="data.0.status", times=10))
    assert cli(server, "list") == 0
    out = capsys.readouterr().out
    assert running in out
    assert queued not in out
    assert out.splitlines()[-1] == "page 1 of 1: 2 tasks in all (1 unreadable row left out)"
    assert cli(server, "list", "--json") == 0
    page = json.loads(capsys.readouterr().out)
    assert (page["total"], page["unreadable"]) == (2, 1)
    assert [t["task_id"] for t in page["tasks"]] == [running]


def test_list_pages_through_the_tasks(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    first = submit(server, "https://example.com/first.png")
    second = submit(server)
    assert cli(server, "list", "--page", "2", "--page-size", "1", "--json") == 0
    page = json.loads(capsys.readouterr().out)
    assert (page["page"], page["pages"], page["total"]) == (2, 2, 2)
    assert [t["task_id"] for t in page["tasks"]] == [first]  # newest first
    assert second != first


# --- the key --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["detect", IMG],
        ["generate", IMG, "mengwa_kaixin"],
        ["status", "some-task"],
        ["cancel", "some-task"],
        ["list"],
        ["batch", str(EXAMPLES / "jobs.csv"), "--out", "{tmp}/videos", "--journal", "{tmp}/b.db"],
    ],
    ids=lambda argv: argv[0],
)
def test_without_a_key_a_command_says_so_in_one_line_exits_1_and_sends_nothing(
    argv: list[str],
    server: SimulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    assert cli(server, *(arg.replace("{tmp}", str(tmp_path)) for arg in argv)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "emoji-async: error: no API key: set DASHSCOPE_API_KEY in the environment\n"
    )
    assert server.simulator.requests == []
    assert list(tmp_path.iterdir()) == []


def test_a_refused_key_is_reported_without_ever_being_printed(server: SimulatorServer) -> None:
    secret = "sk-not-for-your-eyes-0123456789"
    result = subprocess.run(  # noqa: S603  (our own interpreter, our own arguments)
        [sys.executable, "-m", "emoji_async", "list", "--base-url", server.base_url],
        env={"DASHSCOPE_API_KEY": secret, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("emoji-async: error: HTTP 401 InvalidApiKey")
    assert "Traceback" not in result.stderr
    assert secret not in result.stdout + result.stderr


def test_plain_http_to_a_host_other_than_loopback_is_refused_naming_the_clis_option(
    server: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # 0.0.0.0 is no loopback address, yet on Linux a connection to it reaches this machine.
    remote = server.base_url.replace("127.0.0.1", "0.0.0.0")  # noqa: S104
    assert main(["list", "--base-url", remote, "--time-scale", str(SCALE)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        "emoji-async: error: refusing plain http:// to 0.0.0.0: the API key would travel"
        " unencrypted (use https://, or add --allow-insecure-http)"
    )
    assert server.simulator.requests == []

    argv = ["list", "--base-url", remote, "--allow-insecure-http", "--time-scale", str(SCALE)]
    assert main(argv) == 0
    assert capsys.readouterr().out == "no tasks in the last 24 h\n"
    assert len(server.simulator.requests) == 1


@pytest.mark.parametrize("command", ["detect", "generate", "batch", "status", "cancel", "list"])
def test_every_service_command_takes_allow_insecure_http(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--allow-insecure-http" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["detect", "generate", "batch", "status", "cancel", "list"])
def test_no_command_takes_the_key_on_its_command_line(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "--api-key" not in text
    assert "DASHSCOPE_API_KEY" in text

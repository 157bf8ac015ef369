"""The command line: every command explains itself, the simulator runs on its own, and
mistakes are one line on stderr."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from emoji_async._quoting import shortened
from emoji_async.cli import main
from emoji_async.cli._common import counted
from emoji_async.cli._demo import run_demo
from emoji_async.testing import SAMPLE_PORTRAITS

from .commands import command, interrupt, read_line


def test_templates_lists_the_twenty_ids_with_their_lengths(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["templates"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 20
    assert lines[0].split()[:3] == ["mengwa_kaixin", "3", "s"]


COMMANDS = [
    "templates",
    "detect",
    "generate",
    "batch",
    "status",
    "cancel",
    "list",
    "simulator",
    "demo",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_explains_itself(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert "usage: emoji-async " + command in capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_describes_what_it_does_in_its_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    usage, _, rest = capsys.readouterr().out.partition("\n\n")
    description = rest.partition("\n\n")[0]
    assert usage.startswith("usage: emoji-async " + command)
    assert not description.startswith(("options:", "positional arguments:"))
    assert len(description.split()) >= 8


@pytest.mark.parametrize("command", ["detect", "generate", "batch", "status", "cancel", "list"])
def test_every_service_command_shows_an_example_in_its_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = capsys.readouterr().out
    assert f"example:\n  emoji-async {command} " in help_text
    assert "--base-url" in help_text
    assert "--time-scale" in help_text


def test_the_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    listed = re.findall(r"^ {4}(\w+)\b", help_text, flags=re.MULTILINE)
    assert listed == COMMANDS


def test_a_bad_option_is_one_line_on_stderr_and_a_non_zero_exit() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emoji_async", "simulator", "--time-scale", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--time-scale: expected a number > 0" in result.stderr


async def test_the_simulator_command_serves_until_interrupted() -> None:
    async with command("simulator", "--port", "0", "--time-scale", "0.01") as proc:
        base_url = await read_line(proc.stdout)
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/api/v1")
        body = {
            "model": "emoji-detect-v1",
            "input": {"image_url": "https://example.com/a.png"},
            "parameters": {"ratio": "1:1"},
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                base_url + "/services/aigc/image2video/face-detect",
                json=body,
                headers={"Authorization": "Bearer sk-simulator"},
            ) as resp,
        ):
            assert resp.status == 200
            assert "bbox_face" in (await resp.json())["output"]
        status, _ = await interrupt(proc)
    assert status == 0


async def test_the_demo_animates_every_sample_portrait_and_runs_again_into_its_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("av")
    assert await run_demo(out_dir=tmp_path, time_scale=0.002, progress="always") == 0
    saved = sorted(tmp_path.glob("*.mp4"))  # noqa: ASYNC240
    assert len(saved) == len(SAMPLE_PORTRAITS) == 12
    captured = capsys.readouterr()
    assert "12 jobs: 12 succeeded, 0 failed" in captured.out
    assert "h264 512x512 @ 15 fps" in captured.out
    # At this compression a rate window lasts 2 ms, less than the in-process renders can
    # delay a request; the demo reports what it saw (0 at its default scale), and the
    # no-self-caused-429 invariant is proven at sane scales in test_batch and test_limits.
    assert re.search(r"\d+ answered 429", captured.out)
    assert "succeeded 12" in captured.err  # the progress bar's counts
    assert "earlier demo" not in captured.out

    # Run again into the same folder: a batch never writes over a file, but the demo
    # replaces its own videos, and only those.
    mine = tmp_path / "my-own.mp4"
    mine.write_bytes(b"a video of the user's own")
    assert await run_demo(out_dir=tmp_path, time_scale=0.002, progress="never") == 0
    again = capsys.readouterr().out
    assert f"replacing the 12 videos of an earlier demo in {tmp_path}/" in again
    assert "12 jobs: 12 succeeded, 0 failed" in again
    assert sorted(tmp_path.glob("*.mp4")) == sorted([*saved, mine])  # noqa: ASYNC240
    assert mine.read_bytes() == b"a video of the user's own"


def test_a_count_is_singular_for_one_and_plural_otherwise() -> None:
    assert [counted(n, "job") for n in (0, 1, 2)] == ["0 jobs", "1 job", "2 jobs"]
    assert counted(1, "entry", "entries") == "1 entry"
    assert counted(3, "entry", "entries") == "3 entries"


def test_a_long_path_is_cut_in_the_middle_keeping_its_start_and_its_file_name() -> None:
    path = "/home/ada/" + "projects/" * 12 + "portraits/ada-lovelace.png"
    short = shortened(path, 60)
    assert len(short) == 60
    assert short.startswith("/home/ada/projects/")
    assert short.endswith(".../ada-lovelace.png")
    assert shortened("/short/path.png", 60) == "/short/path.png"
    # A file name longer than the limit is kept whole, behind a little of the start.
    name = "x" * 70 + ".png"
    assert shortened("/some/folder/" + name, 60) == "/some/fold.../" + name

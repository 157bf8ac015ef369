"""Events are told to the current job's handler, and mypy checks how each one is built."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

from emoji_async import events
from emoji_async._reporting import report, reporting


def test_an_event_is_built_only_when_someone_listens() -> None:
    built: list[str] = []

    def make(*, key: str) -> events.JobEvent:
        built.append(key)
        return events.Started(key=key)

    report(make)
    with reporting("job-1", None):
        report(make)
    assert built == []
    seen: list[events.JobEvent] = []
    with reporting("job-1", seen.append):
        report(make)
        report(lambda key: events.Running(key=key, task_id="t-1"))
    assert built == ["job-1"]
    assert [type(e).__name__ for e in seen] == ["Started", "Running"]
    assert all(e.key == "job-1" for e in seen)


def test_a_failing_handler_is_logged_and_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: events.JobEvent) -> None:
        raise RuntimeError("display broke")

    with caplog.at_level(logging.ERROR, logger="emoji_async"), reporting("job-1", broken):
        report(events.Started)
    assert "the on_event handler failed on a Started event" in caplog.text


def _mypy(tmp_path: Path, call: str) -> tuple[str, int]:
    """mypy --strict's report and exit status on a module that makes one ``report`` call.

    The cache in ``tmp_path`` is shared by a test's two runs, so the second checks
    only the snippet: about 2.5 s for the first run, a fraction of one for the second.
    """
    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        textwrap.dedent(
            """\
            from emoji_async import events
            from emoji_async._reporting import report

            """
        )
        + call
        + "\n"
    )
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n")
    out, err, status = mypy_api.run(
        [
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            str(snippet),
        ]
    )
    return out + err, status


def test_mypy_rejects_an_event_built_with_a_misspelt_field(tmp_path: Path) -> None:
    right, status = _mypy(
        tmp_path, "report(lambda key: events.Queued(key=key, task_id='t-1', ahead=2))"
    )
    assert (right, status) == ("", 0)
    wrong, status = _mypy(
        tmp_path, "report(lambda key: events.Queued(key=key, task_id='t-1', ahaed=2))"
    )
    assert status == 1
    assert 'Unexpected keyword argument "ahaed" for "Queued"' in wrong


def test_mypy_rejects_an_event_class_that_needs_more_than_the_key(tmp_path: Path) -> None:
    right, status = _mypy(tmp_path, "report(events.Started)")
    assert (right, status) == ("", 0)
    wrong, status = _mypy(tmp_path, "report(events.Queued)")
    assert status == 1
    assert 'incompatible type "type[Queued]"' in wrong

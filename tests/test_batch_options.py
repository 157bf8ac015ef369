"""A batch's options are one frozen value, checked once, from generate_many's keyword arguments."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from emoji_async import Budget, ValidationError
from emoji_async._batch_options import BatchOptions, default_concurrency


def test_the_options_keep_paths_as_paths_and_leave_the_defaults_to_the_client() -> None:
    options = BatchOptions(journal="run.db", download_to=Path("videos"))
    assert options.journal == Path("run.db")
    assert options.download_to == Path("videos")
    assert options.concurrency is None
    assert options.poll is None
    assert BatchOptions().journal is None


def test_the_options_cannot_change_once_built() -> None:
    options = BatchOptions(concurrency=3)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.concurrency = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("concurrency", 0),
        ("concurrency", 2.0),
        ("concurrency", True),
        ("timeout", 0),
        ("timeout", float("nan")),
        ("budget", 5),
    ],
)
def test_a_bad_option_is_refused_when_the_options_are_built(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        BatchOptions(**{field: value})  # type: ignore[arg-type]


def test_good_options_are_accepted() -> None:
    options = BatchOptions(concurrency=1, timeout=0.5, budget=Budget(video_seconds=20))
    assert (options.concurrency, options.timeout) == (1, 0.5)


def test_the_default_concurrency_keeps_one_task_queued_beside_the_running_ones() -> None:
    assert default_concurrency(1) == 3

"""A batch without a journal speaks to a null one: the journal's calls, and nothing recorded."""

from __future__ import annotations

import inspect
import os
import threading
from pathlib import Path

import pytest

from emoji_async import BBox, EmojiJob
from emoji_async._journal import Journal
from emoji_async._journal_null import NullJournal

from .conftest import running, sim_config


def _calls(cls: type) -> dict[str, inspect.Signature]:
    """The public calls of ``cls``, its bases' included (the journal has a base of its own)."""
    return {
        name: inspect.signature(member)
        for klass in reversed(cls.__mro__)
        for name, member in vars(klass).items()
        if callable(member) and not name.startswith("_")
    }


def test_every_call_of_the_null_journal_is_the_journals_with_the_same_parameters() -> None:
    journal = _calls(Journal)
    null = _calls(NullJournal)
    assert null
    for name, signature in null.items():
        assert name in journal, name
        assert list(signature.parameters) == list(journal[name].parameters), name
    assert Journal.resumable
    assert not NullJournal.resumable


async def test_the_null_journal_knows_nothing_and_keeps_nothing() -> None:
    null = NullJournal()
    await null.submitting(
        "k",
        image="https://e.com/a.png",
        driven_id="d",
        face_bbox=BBox(1, 1, 9, 9),
        ext_bbox=BBox(0, 0, 10, 10),
    )
    await null.submitted("k", task_id="t")
    null.orphaned_soon("t")
    null.sighted_soon([("t", 0.0)])
    assert null.get("k") is None
    assert null.resume("k", image="https://e.com/a.png", driven_id="d") is None
    assert (null.entries(), null.attempts(), null.sightings()) == ([], [], [])
    await null.aclose()


async def test_a_batch_without_a_journal_opens_no_file_and_starts_no_journal_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    threads: set[str] = set()

    def on_event(_: object) -> None:
        threads.update(t.name for t in threading.enumerate())

    jobs = [EmojiJob(f"https://example.com/p/{n}.png", "mengwa_kaixin") for n in range(3)]
    async with running(sim_config()) as (_, client):
        outcomes = await client.generate_many(jobs, on_event=on_event)
    assert all(o.ok for o in outcomes)
    assert threads
    assert not any(name.startswith("emoji_async-journal") for name in threads)
    assert os.listdir(tmp_path) == []

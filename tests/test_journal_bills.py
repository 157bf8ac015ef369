"""Detections billed that no job's entry counts: recorded in the journal, counted by a rerun."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from emoji_async import BBox, EmojiJob, ResponseLostError, RetryPolicy, ValidationError, events
from emoji_async._journal import JobState, Journal
from emoji_async._journal_schema import SCHEMA_VERSION
from emoji_async.testing import Fault

from .conftest import rerun_client, running, sim_config

QUICK = RetryPolicy(wait_first=1, wait_max=2, deadline=30)


async def test_a_rerun_counts_the_detections_a_failed_detection_was_billed(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "run.db"
    job = EmojiJob("https://example.com/p/ada.png", "mengwa_kaixin", key="ada")
    async with running(sim_config(), retry=QUICK) as (sim, client):
        # Every answer lost: the detection is sent again, billed each time, and fails.
        sim.faults.add(Fault("detect", "reset", after_processing=True, times=1000))
        first = await client.generate_many([job], journal=journal)
        lost = sim.stats.detections_billed
        sim.faults.clear()
        async with rerun_client(client, retry=QUICK) as again:
            second = await again.generate_many([job], journal=journal)
        billed = sim.stats.detections_billed
    assert isinstance(first[0].error, ResponseLostError)
    assert lost >= 2
    assert first.spent.detections == lost
    assert second[0].ok
    assert billed == lost + 1
    # The rerun's spending counts what the first run was billed, though no entry does.
    assert second.spent.detections == billed
    async with await Journal.open(journal) as kept:
        assert kept.bills() == {"ada": lost}
        entry = kept.get("ada")
        assert entry is not None
        assert entry.detections == 1


async def test_a_detection_throttled_back_in_line_after_a_lost_answer_keeps_that_bill(
    tmp_path: Path,
) -> None:
    """Its first round's bill is on record though its second round's detection is the entry's."""
    journal = tmp_path / "run.db"
    job = EmojiJob("https://example.com/p/ada.png", "mengwa_kaixin", key="ada")
    async with running(sim_config(), retry=QUICK) as (sim, client):

        def take(event: events.JobEvent) -> None:
            if isinstance(event, events.Requeued):
                sim.faults.clear()  # the throttling ends: the next round detects

        sim.faults.add(Fault("detect", "reset", after_processing=True))
        sim.faults.add(Fault("detect", "status", status=429, code="Throttling", times=100_000))
        (first,) = await client.generate_many([job], journal=journal, on_event=take)
        billed = sim.stats.detections_billed
        async with rerun_client(client, retry=QUICK) as again:
            second = await again.generate_many([job], journal=journal)
    assert first.ok
    assert billed == 2
    assert second[0].resumed
    assert second.spent.detections == billed
    async with await Journal.open(journal) as kept:
        assert kept.bills() == {"ada": 1}


async def test_bills_are_kept_across_opens_and_summed_by_job(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    async with await Journal.open(path) as journal:
        await journal.billed("ada", detections=2)
        await journal.billed("grace", detections=1)
        await journal.billed("ada", detections=1)
        assert journal.bills() == {"ada": 3, "grace": 1}
        with pytest.raises(ValidationError):
            await journal.billed("ada", detections=0)
    async with await Journal.open(path) as journal:
        assert journal.bills() == {"ada": 3, "grace": 1}
        assert journal.entries() == []


async def test_a_journal_of_schema_version_3_opens_with_no_bills_and_takes_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.db"
    async with await Journal.open(path) as journal:
        await journal.detected(
            "ada",
            image="https://example.com/p/ada.png",
            driven_id="mengwa_kaixin",
            face_bbox=BBox.parse([1, 1, 10, 10]),
            ext_bbox=BBox.parse([0, 0, 20, 20]),
            billed=2,
        )
    with closing(sqlite3.connect(path)) as db:  # as version 3 wrote it
        db.executescript(
            "DROP TABLE bills; UPDATE meta SET value = '3' WHERE name = 'schema_version';"
        )
    async with await Journal.open(path) as journal:
        assert journal.bills() == {}
        entry = journal.get("ada")
        assert entry is not None
        assert entry.detections == 2
        await journal.billed("grace", detections=1)
    with closing(sqlite3.connect(path)) as db:
        (version,) = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    assert version == str(SCHEMA_VERSION) == "5"


async def test_a_journal_of_schema_version_4_opens_as_version_5_with_its_entries(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v4.db"
    async with await Journal.open(path) as journal:
        await journal.detected(
            "ada",
            image="https://example.com/ada.png",
            driven_id="mengwa_kaixin",
            face_bbox=BBox(1, 1, 5, 5),
            ext_bbox=BBox(0, 0, 9, 9),
        )
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE meta SET value = '4' WHERE name = 'schema_version'")
    async with await Journal.open(path) as journal:
        entry = journal.get("ada")
        assert entry is not None
        assert entry.state is JobState.DETECTED
    with closing(sqlite3.connect(path)) as db:
        (version,) = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    assert version == "5"

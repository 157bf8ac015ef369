"""What a batch costs: totals to the unit, a budget the provider never bills past, resumes."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from emoji_async import Budget, EmojiJob, Prices, Spending, ValidationError, events
from emoji_async._journal import Journal
from emoji_async._journal_schema import SCHEMA_VERSION
from emoji_async._templates import template_info

from .conftest import running, sim_config

#: Video lengths of these templates: 3, 4, 2 and 5 s.
TEMPLATES = ["mengwa_kaixin", "mengwa_gandong", "dagong_weixiao", "mengwa_kun_1"]


def jobs(count: int, *, rejected: frozenset[int] = frozenset()) -> list[EmojiJob]:
    made = []
    for n in range(count):
        trigger = "?sim_reject=InvalidFile.FullFace" if n in rejected else ""
        made.append(
            EmojiJob(
                f"https://example.com/b/{n}.png{trigger}",
                TEMPLATES[n % len(TEMPLATES)],
                key=f"b{n}",
            )
        )
    return made


def seconds_of(driven_id: str) -> int:
    info = template_info(driven_id)
    assert info is not None
    return info.video_seconds


async def test_totals_match_what_the_simulator_billed_rejections_included() -> None:
    seen: list[events.JobEvent] = []
    batch = jobs(8, rejected=frozenset({1, 6}))
    async with running(sim_config()) as (sim, client):
        outcomes = await client.generate_many(batch, on_event=seen.append)
        billed = sim.stats.snapshot()
    assert [o.ok for o in outcomes].count(True) == 6
    assert outcomes.spent == Spending(
        videos=6,
        video_seconds=billed.video_seconds_billed,
        detections=billed.detections_billed,
    )
    assert billed.detections_billed == 8  # the two rejected portraits are billed too
    assert billed.video_seconds_billed == sum(seconds_of(o.job.driven_id) for o in outcomes if o.ok)
    # The running totals on the events end where the summary does.
    last = [e for e in seen if isinstance(e, events.Billed)][-1]
    assert last.spent == outcomes.spent


async def test_a_budget_of_seconds_is_never_billed_past_and_the_rest_is_skipped() -> None:
    seen: list[events.JobEvent] = []
    budget = Budget(video_seconds=10)
    async with running(sim_config()) as (sim, client):
        outcomes = await client.generate_many(
            jobs(8), budget=budget, concurrency=4, on_event=seen.append
        )
        billed = sim.stats.snapshot()
        created = sim.stats.tasks_created
    assert billed.video_seconds_billed <= 10
    assert outcomes.spent.video_seconds == billed.video_seconds_billed
    skipped = [o for o in outcomes if o.skipped]
    assert skipped
    assert all(o.error is None and o.task_id is None and not o.ok for o in skipped)
    assert outcomes.spent.skipped == len(skipped)
    assert created == len(outcomes) - len(skipped)
    assert {e.key for e in seen if isinstance(e, events.Skipped)} == {o.key for o in skipped}
    # Once one job could not fit, the batch started no new work.
    first = min(int(o.key[1:]) for o in skipped)
    assert all(o.skipped for o in outcomes if int(o.key[1:]) > first)


async def test_a_budget_of_detections_counts_each_detection_before_it_is_made() -> None:
    async with running(sim_config()) as (sim, client):
        outcomes = await client.generate_many(jobs(5), budget=Budget(detections=2))
        billed = sim.stats.detections_billed
    assert billed == 2
    assert sum(o.ok for o in outcomes) == 2
    assert sum(o.skipped for o in outcomes) == 3


async def test_a_run_stopped_by_its_budget_and_resumed_with_more_spends_the_difference(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "run.db"
    batch = jobs(8)
    async with running(sim_config()) as (sim, client):
        first = await client.generate_many(batch, journal=journal, budget=Budget(video_seconds=9))
        after_first = sim.stats.video_seconds_billed
        second = await client.generate_many(batch, journal=journal, budget=Budget(video_seconds=20))
        after_second = sim.stats.video_seconds_billed
        again = await client.generate_many(batch, journal=journal, budget=Budget(video_seconds=20))
        after_again = sim.stats.video_seconds_billed
    assert first.spent.video_seconds == after_first <= 9
    # The second run counts what the first spent, and adds only what fits in the rest.
    assert second.spent.video_seconds == after_second <= 20
    assert after_second - after_first == sum(
        o.video.video_duration for o in second if o.ok and not o.resumed and o.video
    )
    assert sum(o.ok for o in second) > sum(o.ok for o in first)
    # A third run with the same budget never bills past it either. It may fit a job
    # the second held 5 s back for: the journal tells it what each template billed.
    assert again.spent.video_seconds == after_again <= 20
    assert after_again - after_second == sum(
        o.video.video_duration for o in again if o.ok and not o.resumed and o.video
    )


async def test_a_resumed_run_reports_what_earlier_runs_spent(tmp_path: Path) -> None:
    journal = tmp_path / "run.db"
    batch = jobs(4, rejected=frozenset({2}))
    async with running(sim_config()) as (sim, client):
        first = await client.generate_many(batch, journal=journal)
        second = await client.generate_many(batch, journal=journal)
        billed = sim.stats.snapshot()
    assert second.spent == first.spent
    assert second.spent.detections == billed.detections_billed == 4
    assert second.spent.video_seconds == billed.video_seconds_billed


def test_prices_turn_the_totals_into_an_estimate() -> None:
    spent = Spending(videos=3, video_seconds=10, detections=4)
    assert spent.cost(Prices(video_second=0.08, detection=0.004)) == pytest.approx(0.816)
    assert spent.cost(Prices(video_second=0.08)) is None  # detections billed, no price for them
    assert Spending(videos=1, video_seconds=3).cost(Prices(video_second=0.5)) == 1.5


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Budget(video_seconds=-1), "video_seconds"),
        (lambda: Budget(detections=2.5), "detections"),  # type: ignore[arg-type]
        (lambda: Budget(video_seconds=True), "video_seconds"),
        (lambda: Prices(video_second=float("nan")), "video_second"),
        (lambda: Prices(detection=-0.1), "detection"),
        (lambda: Prices(video_second=10**400), "video_second"),  # was an OverflowError
    ],
)
def test_bad_budgets_and_prices_are_refused_by_name(make: object, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        make()  # type: ignore[operator]


async def test_a_version_1_journal_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    # closing(): a connection's own `with` only commits, and Python 3.13 warns of one
    # left open (an error here, surfacing in whichever later test the collector runs in).
    with closing(sqlite3.connect(path)) as db:
        db.executescript(
            """
            CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('format', 'emoji_async journal'), ('schema_version', '1');
            CREATE TABLE jobs (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
                state TEXT NOT NULL, image TEXT NOT NULL, driven_id TEXT NOT NULL,
                face_bbox TEXT, ext_bbox TEXT, task_id TEXT, intent_at TEXT, video TEXT,
                code TEXT, message TEXT, path TEXT, size INTEGER, updated_at TEXT NOT NULL);
            CREATE TABLE transitions (id INTEGER PRIMARY KEY, key TEXT NOT NULL,
                state TEXT NOT NULL, at TEXT NOT NULL);
            INSERT INTO jobs (key, state, image, driven_id, face_bbox, ext_bbox, updated_at)
                VALUES ('a', 'DETECTED', 'https://example.com/a.png', 'mengwa_kaixin',
                '[1, 1, 9, 9]', '[0, 0, 10, 10]', '2026-11-25T10:00:00+00:00');
            """
        )
    async with await Journal.open(path) as journal:
        [entry] = journal.entries()
    assert entry.detections == 0
    with closing(sqlite3.connect(path)) as db:
        version = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)

"""generate_many and as_completed against the simulator at the provider's limits."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from contextlib import aclosing, closing
from pathlib import Path

import pytest

from emoji_async import (
    EmojiJob,
    FaceRejectedError,
    PollPolicy,
    RateLimitError,
    RetryPolicy,
    TaskFailedError,
    ValidationError,
    events,
)
from emoji_async.testing import Fault, SimulatedTask, Simulator, fixed_duration

from .conftest import KEY, LOADED_MACHINE, SCALE, client_for, running, serve_in_thread, sim_config


def jobs_for(count: int, *, query: str = "", template: str = "mengwa_kaixin") -> list[EmojiJob]:
    return [
        EmojiJob(f"https://example.com/p/{n}.png{query}", template, key=f"job-{n:03d}")
        for n in range(count)
    ]


def in_start_order(sim: Simulator) -> list[SimulatedTask]:
    started = [t for t in sim.tasks() if t.scheduled_at is not None]
    return sorted(started, key=lambda t: t.scheduled_at or 0.0)


async def test_outcomes_come_in_input_order_and_one_failure_touches_no_other() -> None:
    jobs = [
        EmojiJob("https://example.com/a.png", "mengwa_kaixin", key="a"),
        EmojiJob(
            "https://example.com/b.png?sim_reject=InvalidFile.NoHuman", "mengwa_kaixin", key="b"
        ),
        EmojiJob("https://example.com/c.png?sim_fail=InternalError.Algo", "dagong_kaixin", key="c"),
        EmojiJob("https://example.com/d.png", "jingdian_lei", key="d"),
    ]
    async with running(sim_config()) as (_, client):
        outcomes = await client.generate_many(jobs)
    assert [o.key for o in outcomes] == ["a", "b", "c", "d"]
    assert [o.ok for o in outcomes] == [True, False, False, True]
    assert isinstance(outcomes[1].error, FaceRejectedError)
    assert isinstance(outcomes[2].error, TaskFailedError)
    assert outcomes[2].task_id is not None
    assert outcomes[3].video is not None
    assert outcomes[3].video.video_duration == 4


async def test_at_the_providers_limits_nothing_is_throttled_and_the_slot_never_idles() -> None:
    short = sim_config(durations=fixed_duration(30))
    async with running(short, limits=LOADED_MACHINE) as (sim, client):
        outcomes = await client.generate_many(jobs_for(12))
        assert all(o.ok for o in outcomes)
        assert sim.stats.throttled == 0
        assert sim.stats.tasks_created == 12
        order = in_start_order(sim)
    # The provider starts the next queued task the instant one ends: with the default
    # concurrency a task is always queued, so every start but the first is an end.
    gaps = [(b.scheduled_at or 0.0) - (a.ended_at or 0.0) for a, b in itertools.pairwise(order)]
    assert max(gaps) <= 1e-9


async def test_a_batch_stays_under_the_query_budget_with_many_jobs_in_flight() -> None:
    short = sim_config(durations=fixed_duration(30))
    async with running(short, limits=LOADED_MACHINE) as (sim, client):
        outcomes = await client.generate_many(jobs_for(10), concurrency=10)
    assert all(o.ok for o in outcomes)
    assert sim.stats.throttled == 0
    window = 1.0 * SCALE
    queries = [r.at for r in sim.requests if r.endpoint == "query"]
    busiest = max(
        sum(1 for t in queries[i:] if t - start < window) for i, start in enumerate(queries)
    )
    assert busiest <= 20


async def test_every_job_is_checked_before_anything_is_sent() -> None:
    bad_template = [*jobs_for(2), EmojiJob("https://example.com/x.png", "no_such_template")]
    one_box = [EmojiJob("https://example.com/x.png", "mengwa_kaixin", face_bbox=[1, 1, 5, 5])]
    twice = [*jobs_for(2), EmojiJob("https://example.com/other.png", "jingdian_lei", key="job-001")]
    async with running(sim_config()) as (sim, client):
        with pytest.raises(ValidationError, match=r"jobs\[2\]\.driven_id"):
            await client.generate_many(bad_template)
        with pytest.raises(ValidationError, match=r"jobs\[0\]\.ext_bbox: expected both boxes"):
            await client.generate_many(one_box)
        with pytest.raises(ValidationError, match=r"jobs\[2\]\.key: expected a key unique"):
            await client.generate_many(twice)
        with pytest.raises(ValidationError, match="concurrency"):
            await client.generate_many(jobs_for(1), concurrency=0)
    assert sim.requests == []


async def test_jobs_with_boxes_skip_detection() -> None:
    async with running(sim_config()) as (sim, client):
        face, ext = sim.boxes_for("https://example.com/known.png")
        job = EmojiJob(
            "https://example.com/known.png", "mengwa_kaixin", face_bbox=face, ext_bbox=ext
        )
        [outcome] = await client.generate_many([job])
    assert outcome.ok
    assert not any(r.endpoint == "detect" for r in sim.requests)


async def test_videos_are_saved_under_their_keys_and_never_outside_the_directory(
    tmp_path: Path,
) -> None:
    out = tmp_path / "videos"
    keys = ["../../escape", "/etc/passwd", "a/b\\c", "..", "ünï cödé", "plain"]
    jobs = [
        EmojiJob(f"https://example.com/{n}.png", "dagong_weixiao", key=key)
        for n, key in enumerate(keys)
    ]
    async with running() as (_, client):
        outcomes = await client.generate_many(jobs, download_to=out)
    assert all(o.ok for o in outcomes)
    saved = sorted(out.iterdir())
    assert len(saved) == len(keys)
    assert all(path.parent == out and path.suffix == ".mp4" for path in saved)
    assert all(o.path is not None and o.path.parent == out for o in outcomes)
    assert sorted(tmp_path.iterdir()) == [out]  # noqa: ASYNC240
    assert all(path.stat().st_size > 0 for path in saved)


async def test_events_follow_each_job_through_its_life() -> None:
    seen: list[events.JobEvent] = []
    async with running(sim_config()) as (_, client):
        await client.generate_many(jobs_for(3), on_event=seen.append)
    life = ["Started", "Detected", "Submitted", "Queued", "Running", "Succeeded"]
    for key in ("job-000", "job-001", "job-002"):
        # Billed comes twice (the detection, the video), each before the step it pays for.
        billed = [e for e in seen if e.key == key and isinstance(e, events.Billed)]
        assert [(e.detections, e.video_seconds > 0) for e in billed] == [(1, False), (0, True)]
        # Throttled and Retrying are the service's weather, not steps of a life: a loaded
        # machine can run two paced requests' handlers back to back in the simulator and
        # meet a 429 the client then waits out (the test below reports those).
        weather = (events.Billed, events.Throttled, events.Retrying)
        kinds = [type(e).__name__ for e in seen if e.key == key and not isinstance(e, weather)]
        # Each step in life order; Running is seen only if a poll catches the task running
        # (a batch polls once, when a task is surely done).
        assert kinds == sorted(kinds, key=life.index)
        assert {"Started", "Detected", "Submitted", "Queued", "Succeeded"} <= set(kinds)
        assert kinds[-1] == "Succeeded"
    queued = [e for e in seen if isinstance(e, events.Queued)]
    assert {e.ahead for e in queued} >= {0, 1}


async def test_throttling_and_retries_are_reported_against_the_job_that_met_them() -> None:
    seen: list[events.JobEvent] = []
    async with running(sim_config()) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=429, code="Throttling", retry_after=0.05))
        [outcome] = await client.generate_many(jobs_for(1), on_event=seen.append)
    assert outcome.ok
    throttled = [e for e in seen if isinstance(e, events.Throttled)]
    retrying = [e for e in seen if isinstance(e, events.Retrying)]
    assert [(e.key, e.endpoint, e.wait) for e in throttled] == [("job-000", "submit", 0.05)]
    assert [(e.key, e.endpoint, e.attempt) for e in retrying] == [("job-000", "submit", 1)]


async def test_a_failing_event_handler_costs_no_job(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: events.JobEvent) -> None:
        raise RuntimeError("display broke")

    async with running(sim_config()) as (_, client):
        outcomes = await client.generate_many(jobs_for(2), on_event=broken)
    assert all(o.ok for o in outcomes)
    assert "the on_event handler failed" in caplog.text


async def test_as_completed_yields_each_outcome_as_its_job_ends() -> None:
    # Limits off: all four run at once, so the shortest ends first whatever the input order.
    seconds = [90, 30, 70, 50]
    jobs = [
        EmojiJob(f"https://example.com/{n}.png?sim_duration={s}", "mengwa_kaixin", key=f"{s}s")
        for n, s in enumerate(seconds)
    ]
    config = sim_config(limits=None)
    async with running(config, limits=None, poll=PollPolicy()) as (_, client):
        keys = [outcome.key async for outcome in client.as_completed(jobs)]
    assert keys == ["30s", "50s", "70s", "90s"]


async def test_leaving_as_completed_early_stops_the_other_jobs() -> None:
    async with running(sim_config()) as (sim, client):
        async with aclosing(client.as_completed(jobs_for(8))) as stream:
            first = await anext(stream)
        created = sim.stats.tasks_created
        await asyncio.sleep(0.2)
        assert sim.stats.tasks_created == created
    assert first.ok
    assert created < 8


async def test_cancelling_a_batch_leaves_nothing_running_and_can_cancel_queued_tasks() -> None:
    with serve_in_thread(sim_config()) as server:
        sim = server.simulator
        async with client_for(server) as client:
            run = asyncio.create_task(
                client.generate_many(jobs_for(6, query="?sim_duration=600"), cancel_pending=True)
            )
            while sim.tasks_created < 3:  # noqa: ASYNC110  (the simulator is on another thread)
                await asyncio.sleep(0.01)
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
            assert asyncio.all_tasks() == {asyncio.current_task()}
        statuses = sorted(t.status for t in sim.tasks())
    assert statuses.count("RUNNING") == 1
    assert "PENDING" not in statuses
    assert statuses.count("CANCELED") == len(statuses) - 1


async def test_a_rerun_with_the_journal_redoes_nothing_finished(tmp_path: Path) -> None:
    journal, out = tmp_path / "run.db", tmp_path / "videos"
    jobs = [
        *jobs_for(3),
        EmojiJob(
            "https://example.com/r.png?sim_reject=InvalidFile.FullFace",
            "mengwa_kaixin",
            key="rejected",
        ),
    ]
    async with running() as (sim, client):
        first = await client.generate_many(jobs, journal=journal, download_to=out)
        before = len(sim.requests)
        second = await client.generate_many(jobs, journal=journal, download_to=out)
        assert len(sim.requests) == before
    assert [o.ok for o in first] == [o.ok for o in second] == [True, True, True, False]
    assert all(o.resumed for o in second)
    assert [o.path for o in second] == [o.path for o in first]
    assert [o.video for o in second] == [o.video for o in first]
    assert isinstance(second[3].error, FaceRejectedError)
    assert second[3].error.code == "InvalidFile.FullFace"


async def test_a_journal_kept_in_a_download_folder_not_made_yet_opens(tmp_path: Path) -> None:
    # The journal is opened before the download folder is made, so it makes its own.
    out = tmp_path / "runs" / "videos"
    async with running() as (sim, client):
        outcomes = await client.generate_many(
            jobs_for(2), journal=out / "journal.db", download_to=out
        )
    assert all(o.ok for o in outcomes)
    assert sorted(p.name for p in out.iterdir()) == ["job-000.mp4", "job-001.mp4", "journal.db"]
    assert len(sim.tasks()) == 2


async def test_a_rerun_polls_submitted_jobs_instead_of_paying_again(tmp_path: Path) -> None:
    journal = tmp_path / "run.db"
    jobs = jobs_for(5, query="?sim_duration=100")
    async with running(sim_config()) as (sim, client):
        run = asyncio.create_task(client.generate_many(jobs, journal=journal))
        while sim.tasks_created < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        outcomes = await client.generate_many(jobs, journal=journal)
        created = sim.stats.tasks_created
    # A job cancelled while its submit was on the wire is settled by the rerun through
    # the task list: its task adopted if the submit created one, sent again if not.
    assert all(o.ok for o in outcomes)
    assert created == len(jobs)  # nothing paid twice
    assert sum(o.resumed for o in outcomes) >= 3


async def test_an_unanswered_submit_is_settled_through_the_task_list(tmp_path: Path) -> None:
    journal = tmp_path / "run.db"
    seen: list[events.JobEvent] = []
    async with running(sim_config()) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=502, after_processing=True))
        [first] = await client.generate_many(jobs_for(1), journal=journal, on_event=seen.append)
        [second] = await client.generate_many(jobs_for(1), journal=journal)
        submits = sum(1 for r in sim.requests if r.endpoint == "submit")
    assert first.ok
    assert second.resumed
    assert second.task_id == first.task_id
    assert sim.stats.tasks_created == 1
    assert submits == 1
    [reconciled] = [e for e in seen if isinstance(e, events.Reconciled)]
    assert reconciled.task_id == first.task_id


async def test_a_submit_that_provably_created_nothing_is_sent_again_next_run(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "run.db"
    quick = RetryPolicy(wait_first=1, wait_max=2, deadline=10)  # 0.1 s here
    with serve_in_thread(sim_config()) as server:
        sim = server.simulator
        sim.faults.add(Fault("submit", "status", status=429, code="Throttling", times=1000))
        async with client_for(server, retry=quick) as client:
            [first] = await client.generate_many(jobs_for(1), journal=journal)
        sim.faults.clear()
        async with client_for(server) as client:
            [second] = await client.generate_many(jobs_for(1), journal=journal)
    assert isinstance(first.error, RateLimitError)
    assert second.ok
    assert sim.stats.tasks_created == 1
    assert (
        sum(1 for r in sim.requests if r.endpoint == "detect") == 1
    )  # boxes came from the journal


async def test_the_journal_never_holds_the_api_key(tmp_path: Path) -> None:
    journal = tmp_path / "run.db"
    async with running(sim_config()) as (_, client):
        await client.generate_many(jobs_for(2), journal=journal)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())  # noqa: ASYNC240
    assert KEY.encode() not in raw
    with closing(sqlite3.connect(journal)) as db:
        dumped = "\n".join(db.iterdump())
    assert KEY not in dumped
    assert "job-001" in dumped


async def test_a_client_without_pacing_still_runs_a_batch() -> None:
    async with running(sim_config(limits=None), limits=None) as (_, client):
        assert client.limits is None
        assert client.pacing is None
        outcomes = await client.generate_many(jobs_for(4))
    assert len(outcomes) == 4
    assert all(o.ok for o in outcomes)
    assert len({o.task_id for o in outcomes}) == 4  # one task per job

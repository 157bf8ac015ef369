"""Priority lanes: an interactive job goes ahead of a batch's queued tasks, at no extra bill.

Each outcome is checked against what the simulator recorded: which portrait
each task was made from, when it started, and which tasks succeeded (only
SUCCEEDED tasks are billed).
"""

from __future__ import annotations

import asyncio
import collections
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from emoji_async import EmojiJob, Lane, RetryPolicy, ValidationError, events
from emoji_async._journal import JobState, Journal
from emoji_async._lane_lock import MAX_OVERTAKEN, LaneLock
from emoji_async.cli._batch_command import print_summary
from emoji_async.cli._common import counted
from emoji_async.cli._progress import BatchTally
from emoji_async.testing import Fault, SimulatedTask, Simulator

from .conftest import (
    SCALE,
    cancels_carried_out,
    each_job_paid_once,
    overtaken,
    raw_submit,
    rerun_client,
    running,
    sim_config,
    succeeded_by_image,
)

FACE = [120, 140, 380, 400]
EXT = [40, 60, 460, 480]
VISITOR = "https://example.com/visitors/ada.png"


def _bulk(count: int) -> list[EmojiJob]:
    return [
        EmojiJob(f"https://example.com/catalogue/p{i}.png", "mengwa_kaixin", key=f"p{i}")
        for i in range(count)
    ]


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1000):  # 10 s at most
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never came: {what}")


def _queued_behind_a_running_one(sim: Simulator) -> bool:
    states = collections.Counter(sim.task_states().values())
    return states["RUNNING"] == 1 and states["PENDING"] >= 1


def _bulk_made(sim: Simulator) -> int:
    return sum("/catalogue/" in t.image_url for t in sim.tasks())


def _bulk_pending(sim: Simulator) -> int:
    return sum(t.status == "PENDING" and "/catalogue/" in t.image_url for t in sim.tasks())


def _the_visitors(sim: Simulator) -> SimulatedTask:
    [task] = [t for t in sim.tasks() if t.image_url == VISITOR]
    return task


@pytest.mark.parametrize("lane", [Lane.INTERACTIVE, Lane.BULK])
async def test_an_interactive_job_starts_when_the_running_task_ends_and_bulk_waits(
    lane: Lane,
) -> None:
    jobs = _bulk(6)
    seen: list[events.JobEvent] = []
    async with running(sim_config()) as (sim, client):
        batch = asyncio.create_task(client.generate_many(jobs, on_event=seen.append))
        await _until(lambda: _queued_behind_a_running_one(sim), "a queue behind the slot")
        video = await client.generate(
            VISITOR, "mengwa_kaixin", face=await client.detect(VISITOR), lane=lane
        )
        outcomes = await batch
    visitor = _the_visitors(sim)
    assert video.task_id == visitor.task_id
    assert visitor.scheduled_at is not None
    bulk = [t for t in sim.tasks() if t.image_url != VISITOR]
    # Bulk tasks queued when the visitor's was made, and those that started before it.
    queued_then, went_first = overtaken(tuple(bulk), visitor)
    assert len(queued_then) >= 2
    each_job_paid_once(sim, jobs, outcomes)
    moved = [t for t in bulk if t.status == "CANCELED"]
    if lane is Lane.BULK:  # first in, first out: it waited for the queue
        assert went_first
        assert (outcomes.preempted, outcomes.preempt_cancels, moved) == (0, 0, [])
        return
    assert went_first == []
    # Every bulk task queued ahead of it (not the one running) was moved aside, for free.
    assert {t.task_id for t in moved} == {t.task_id for t in queued_then if t.scheduled_at is None}
    # A cancel that reached a task just started is refused, and that task stays its job's.
    carried_out, refused = cancels_carried_out(sim)
    assert outcomes.preempted == len(moved) == carried_out
    assert outcomes.preempt_cancels == carried_out + refused
    assert sum(o.moved_aside for o in outcomes) == len(moved)
    told = [e for e in seen if isinstance(e, events.Preempted)]
    assert sorted(e.task_id for e in told) == sorted(t.task_id for t in moved)
    assert {e.by for e in told} == {visitor.task_id}
    assert {e.lane for e in seen if isinstance(e, events.Started)} == {"bulk"}


async def test_a_cancel_that_comes_too_late_leaves_the_task_with_its_job(tmp_path: Path) -> None:
    jobs = _bulk(4)
    journal = tmp_path / "batch.db"
    async with running(sim_config()) as (sim, client):
        batch = asyncio.create_task(client.generate_many(jobs, journal=journal))
        await _until(lambda: _queued_behind_a_running_one(sim), "a queue behind the slot")
        # The provider's answer to a cancel of a task that already started.
        sim.faults.add(
            Fault("cancel", "status", status=400, code="UnsupportedOperation", times=100)
        )
        await client.generate(VISITOR, "mengwa_kaixin", face=await client.detect(VISITOR))
        outcomes = await batch
    each_job_paid_once(sim, jobs, outcomes)
    assert [t for t in sim.tasks() if t.status == "CANCELED"] == []
    assert outcomes.preempted == 0
    assert outcomes.preempt_cancels >= 1
    async with await Journal.open(journal) as recorded:
        steps = {job.key: [s for s, _ in recorded.history(str(job.key))] for job in jobs}
    kept = [key for key, states in steps.items() if JobState.PREEMPTING in states]
    assert len(kept) == outcomes.preempt_cancels
    for key in kept:
        # Recorded before the cancel left, then back to its task when it came too late.
        at = steps[key].index(JobState.PREEMPTING)
        assert steps[key][at - 1 : at + 2] == [
            JobState.SUBMITTED,
            JobState.PREEMPTING,
            JobState.SUBMITTED,
        ]


@pytest.mark.parametrize("cancel_left", [True, False])
async def test_a_rerun_after_a_crash_in_the_middle_of_a_move_pays_once(
    tmp_path: Path, cancel_left: bool
) -> None:
    """The run stopped after recording ``preempting``: before or after its cancel left."""
    image = "https://example.com/catalogue/p0.png"
    key = "p0"
    path = tmp_path / "batch.db"
    async with running(sim_config()) as (sim, client):
        assert client.base_url is not None
        face = await client.detect(image)
        job = EmojiJob(
            image, "mengwa_kaixin", face_bbox=face.face_bbox, ext_bbox=face.ext_bbox, key=key
        )
        boxes = face.face_bbox.as_list(), face.ext_bbox.as_list()
        # Another task runs first, so the job's stays PENDING while the run "stops".
        other = await client.detect("https://example.com/other.png")
        await raw_submit(
            client.base_url,
            "https://example.com/other.png",
            other.face_bbox.as_list(),
            other.ext_bbox.as_list(),
        )
        await asyncio.sleep(SCALE * 5)  # the account takes one submit a second
        task_id = await raw_submit(client.base_url, image, *boxes)
        async with await Journal.open(path) as journal:
            await journal.submitting(
                key,
                image=image,
                driven_id=job.driven_id,
                face_bbox=face.face_bbox,
                ext_bbox=face.ext_bbox,
            )
            await journal.submitted(key, task_id=task_id)
            await journal.preempting(key, by="t-interactive")
        if cancel_left:
            await client.task(task_id).cancel()
        async with rerun_client(client) as again:
            [outcome] = await again.generate_many([job], journal=path)
    assert outcome.error is None
    assert outcome.video is not None
    mine = [t for t in sim.tasks() if t.image_url == image]
    assert succeeded_by_image(sim)[image] == 1
    if cancel_left:  # moved aside: submitted once more, behind
        assert sorted(t.status for t in mine) == ["CANCELED", "SUCCEEDED"]
        assert outcome.video.task_id != task_id
    else:  # never cancelled: the task is still the job's
        assert [t.status for t in mine] == ["SUCCEEDED"]
        assert outcome.video.task_id == task_id


async def test_the_oldest_waiting_bulk_job_lets_at_most_max_overtaken_visitors_go_first() -> None:
    jobs = _bulk(3)
    visitors = [f"https://example.com/visitors/v{i}.png" for i in range(MAX_OVERTAKEN + 2)]
    async with running(sim_config()) as (sim, client):
        faces = [await client.detect(url) for url in visitors]
        batch = asyncio.create_task(client.generate_many(jobs, concurrency=3))
        # All three of the batch's tasks made: one running, two queued behind it.
        await _until(lambda: len(sim.tasks()) == 3, "the batch's three tasks")
        await _until(lambda: _queued_behind_a_running_one(sim), "a queue behind the slot")
        # Visitors one after another, each made while the batch's first task still runs,
        # and each once the batch's jobs moved for the one before are queued again (a
        # burst of visitors would also pass their submits in the submit turn, a bound
        # of its own, tested with the lock).
        waits = []
        made = 3  # the batch's tasks so far: each move makes one more
        for n, (url, face) in enumerate(zip(visitors, faces, strict=True)):
            waits.append(asyncio.create_task(client.generate(url, "mengwa_kaixin", face=face)))
            # Both queued jobs are moved for the first MAX_OVERTAKEN visitors, then the
            # younger one only: the oldest keeps its place.
            made += 2 if n < MAX_OVERTAKEN else 1
            await _until(
                lambda made=made: _bulk_made(sim) == made and _bulk_pending(sim) == 2,  # type: ignore[misc]
                f"the batch's jobs moved for visitor {n} queued again",
            )
        await asyncio.gather(*waits)
        outcomes = await batch
    each_job_paid_once(sim, jobs, outcomes)
    by_image = {t.image_url: t for t in sim.tasks() if t.status == "SUCCEEDED"}
    first, oldest, _ = (by_image[job.image] for job in jobs)
    assert first.scheduled_at is not None
    assert oldest.scheduled_at is not None
    # The first visitors went ahead of the batch's oldest waiting job; once it had let
    # MAX_OVERTAKEN go first, it kept its place, and the later visitors came after it.
    started_before = [
        url
        for url in visitors
        if (ran := by_image[url].scheduled_at) is not None and ran < oldest.scheduled_at
    ]
    assert started_before == visitors[:MAX_OVERTAKEN]
    assert [o.moved_aside for o in outcomes][:2] == [0, MAX_OVERTAKEN]
    # The younger job, queued behind the oldest anyway, was moved for every visitor.
    assert outcomes[2].moved_aside == len(visitors)
    for job, outcome in zip(jobs, outcomes, strict=True):
        cancelled = [t for t in sim.tasks() if t.image_url == job.image and t.status == "CANCELED"]
        assert len(cancelled) == outcome.moved_aside


async def test_an_unknown_lane_is_refused_before_anything_is_sent() -> None:
    async with running(sim_config()) as (sim, client):
        with pytest.raises(ValidationError, match="lane") as caught:
            await client.generate(VISITOR, "mengwa_kaixin", lane="urgent")
        assert "Lane.INTERACTIVE or Lane.BULK" in str(caught.value)
        with pytest.raises(ValidationError, match="lane"):
            await client.submit(
                VISITOR,
                "mengwa_kaixin",
                face_bbox=FACE,
                ext_bbox=EXT,
                lane=1,  # type: ignore[arg-type]
            )
        with pytest.raises(ValidationError, match="lane"):
            await client.generate_many(_bulk(2), lane="later")
        job = EmojiJob(VISITOR, "mengwa_kaixin", lane="soon")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match=r"jobs\[0\]\.lane"):
            await client.generate_many([job])
        assert sim.requests == []
    # The words are accepted as well as the members.
    async with running(sim_config()) as (sim, client):
        face = await client.detect(VISITOR)
        await client.submit(
            VISITOR, "mengwa_kaixin", face_bbox=face.face_bbox, ext_bbox=face.ext_bbox, lane="bulk"
        )
        assert len(sim.tasks()) == 1


async def test_the_submit_turn_goes_to_interactive_waiters_first_and_never_starves_bulk() -> None:
    lock = LaneLock()
    order: list[str] = []

    async def take(name: str, lane: Lane) -> None:
        async with lock.turn(lane):
            order.append(name)
            await asyncio.sleep(0)

    async with lock.turn(Lane.BULK):  # held while everyone queues up
        waiting = [asyncio.create_task(take("b1", Lane.BULK))]
        waiting += [asyncio.create_task(take(f"i{n}", Lane.INTERACTIVE)) for n in range(5)]
        waiting.append(asyncio.create_task(take("b2", Lane.BULK)))
        await asyncio.sleep(0)
    await asyncio.gather(*waiting)
    # Interactive first, but the oldest bulk waiter lets only MAX_OVERTAKEN go ahead.
    assert order == ["i0", "i1", "i2", "b1", "b2", "i3", "i4"]
    assert MAX_OVERTAKEN == 3


async def test_the_batch_summary_and_progress_count_each_move(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    jobs = _bulk(4)
    tally = BatchTally(len(jobs))
    async with running(sim_config()) as (sim, client):
        batch = asyncio.create_task(
            client.generate_many(jobs, on_event=tally, download_to=tmp_path / "videos")
        )
        await _until(lambda: _queued_behind_a_running_one(sim), "a queue behind the slot")
        await client.generate(VISITOR, "mengwa_kaixin", face=await client.detect(VISITOR))
        outcomes = await batch
    moved = [t for t in sim.tasks() if t.status == "CANCELED"]
    assert tally.preempted == outcomes.preempted == len(moved) >= 1
    print_summary(outcomes, tally, tmp_path)
    printed = capsys.readouterr().out
    out = " ".join(printed.split())
    assert (
        f"moved aside for interactive jobs: {counted(len(moved), 'task')}, each submitted again"
        f" behind them; {counted(outcomes.preempt_cancels, 'cancel')} sent (free while PENDING)"
    ) in out
    rows = {cells[0]: line for line in printed.splitlines() if (cells := line.split())}
    for outcome in outcomes:
        said = f"(moved aside {counted(outcome.moved_aside, 'time')})"
        assert (said in rows[outcome.key]) == (outcome.moved_aside > 0), rows[outcome.key]
    assert "(interactive)" not in out  # a bulk batch: no row says otherwise


async def test_the_batch_summary_names_the_interactive_jobs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    jobs = [*_bulk(2), EmojiJob(VISITOR, "mengwa_kaixin", key="ada", lane=Lane.INTERACTIVE)]
    tally = BatchTally(len(jobs), downloads=False)
    async with running(sim_config()) as (_, client):
        outcomes = await client.generate_many(jobs, on_event=tally)
    print_summary(outcomes, tally, tmp_path)
    rows = {
        cells[0]: cells[1]
        for line in capsys.readouterr().out.splitlines()
        if len(cells := re.split(r"\s{2,}", line.strip())) > 1
    }
    assert (rows["p0"], rows["p1"], rows["ada"]) == (
        "succeeded",
        "succeeded",
        "succeeded (interactive)",
    )


async def test_a_moved_job_whose_new_submit_is_throttled_goes_back_in_line() -> None:
    jobs = _bulk(4)
    seen: list[events.JobEvent] = []
    quick = RetryPolicy(wait_first=1, wait_max=2, deadline=30)
    async with running(sim_config(), retry=quick) as (sim, client):

        def on_event(event: events.JobEvent) -> None:
            seen.append(event)
            if isinstance(event, events.Preempted) and not sim.faults:
                # Its task cancelled, the job's new submit meets a long burst of 429s.
                sim.faults.add(
                    Fault("submit", "status", status=429, code="Throttling", times=100_000)
                )
            if isinstance(event, events.Requeued):
                sim.faults.clear()  # the burst ends while the job waits in line

        batch = asyncio.create_task(client.generate_many(jobs, on_event=on_event))
        await _until(lambda: _queued_behind_a_running_one(sim), "a queue behind the slot")
        await client.generate(VISITOR, "mengwa_kaixin", face=await client.detect(VISITOR))
        outcomes = await batch
    # The throttled submit made nothing: the job waited in line and got its one video.
    each_job_paid_once(sim, jobs, outcomes)
    assert outcomes.preempted >= 1
    assert any(isinstance(e, events.Requeued) for e in seen)

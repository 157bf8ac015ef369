"""The paid path: every job holds a task made from its own inputs, and no portrait is paid twice.

Each test is held against the simulator's record of which image every task was
made from and how it ended, not against what the client believes; each plays
a reading of the protocol the provider's pages leave open (docs/wire.md).
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emoji_async import (
    BBox,
    EmojiClient,
    EmojiJob,
    InvalidRequestError,
    RetryPolicy,
    SubmissionUncertainError,
    TaskStatus,
    events,
)
from emoji_async._journal import JobState, Journal
from emoji_async.testing import Fault, Simulator, fixed_duration

from .conftest import (
    KEY,
    SCALE,
    batch,
    intent_on_record,
    raw_submit,
    rerun_client,
    running,
    serve_in_thread,
    sim_config,
)

ADA = "https://example.com/portraits/ada.png"
GRACE = "https://example.com/portraits/grace.png"
#: The reconcile window on the tests' clock (120 provider seconds).
WINDOW = 120 * SCALE

#: Two readings of what the provider leaves open: the list's zone and order, and its clock.
READINGS = pytest.mark.parametrize(
    "reading",
    [
        {},
        {"list_zone": "UTC", "list_order": "oldest_first", "clock_skew": -30.0},
    ],
    ids=["UTC+8,newest_first", "UTC,oldest_first,skew-30"],
)


def count(sim: Simulator, endpoint: str) -> int:
    return sum(1 for r in sim.requests if r.endpoint == endpoint)


def succeeded_by_image(sim: Simulator) -> collections.Counter[str]:
    return collections.Counter(t.image_url for t in sim.tasks() if t.status == "SUCCEEDED")


async def submit(client: EmojiClient, sim: Simulator, url: str) -> str:
    face, ext = sim.boxes_for(url)
    task = await client.submit(url, "mengwa_kaixin", face_bbox=face, ext_bbox=ext)
    return task.task_id


async def until(check: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    async with asyncio.timeout(limit):
        while not check():  # noqa: ASYNC110  (the simulator changes on its own)
            await asyncio.sleep(0.01)


# --- 1. a job holds only a task made from its own inputs -------------------------------


@READINGS
async def test_a_fresh_job_never_adopts_the_task_a_killed_run_left_for_another(
    tmp_path: Path, reading: dict[str, Any]
) -> None:
    path = tmp_path / "run.db"
    async with running(sim_config(**reading)) as (sim, client):
        # A killed run recorded the intent for ADA, sent it, and died before the answer.
        face, ext = await intent_on_record(path, sim, "ada", ADA)
        assert client.base_url is not None
        left = await raw_submit(client.base_url, ADA, face, ext)
        await asyncio.sleep(0.05)  # past the account's submit rate
        # On the rerun the fresh job (its boxes known: it goes straight to its submit)
        # has its submit dropped before anything is created.
        sim.faults.add(Fault("submit", "reset"))
        grace_face, grace_ext = sim.boxes_for(GRACE)
        jobs = [
            EmojiJob(
                GRACE,
                "mengwa_kaixin",
                key="grace",
                face_bbox=BBox.parse(grace_face),
                ext_bbox=BBox.parse(grace_ext),
            ),
            EmojiJob(ADA, "mengwa_kaixin", key="ada"),
        ]
        async with rerun_client(client) as rerun:
            outcomes = await rerun.generate_many(jobs, journal=path)
        truth = {t.task_id: t.image_url for t in sim.tasks()}
        paid = succeeded_by_image(sim)
    assert [o.ok for o in outcomes] == [True, True]
    for outcome in outcomes:
        assert truth[outcome.task_id or ""] == outcome.job.image  # its own portrait
    assert outcomes[1].task_id == left  # the killed run's task went to its own job
    assert paid == {ADA: 1, GRACE: 1}


async def test_a_task_another_unknown_submit_may_have_made_is_not_adopted_but_moved_aside() -> None:
    # The slot is busy, so every new task waits PENDING (a cancel is free there).
    config = sim_config(durations=fixed_duration(200))
    async with running(config) as (sim, client):
        await submit(client, sim, "https://example.com/blocker.png")
        # ADA's answer is lost and nothing of it appears in the window: it is sent again,
        # and the first attempt may still be processed late.
        sim.faults.add(Fault("submit", "status", status=503, code="ServiceUnavailable"))
        ada = await submit(client, sim, ADA)
        # GRACE's answer is lost after its task was made: ADA's first attempt may have
        # made that task as well, so it is cancelled while PENDING and GRACE sent again.
        sim.faults.add(Fault("submit", "reset", after_processing=True))
        grace = await submit(client, sim, GRACE)
        truth = {t.task_id: t for t in sim.tasks()}
    assert truth[ada].image_url == ADA
    assert truth[grace].image_url == GRACE
    grace_tasks = [t for t in truth.values() if t.image_url == GRACE]
    assert sorted(t.status for t in grace_tasks) == ["CANCELED", "PENDING"]
    [moved] = [o for o in client.orphans if o.cancelled]
    assert truth[moved.task_id].image_url == GRACE
    assert moved.owners == ("https://example.com/portraits/ada.png", GRACE)


@READINGS
async def test_a_pending_task_beside_a_running_one_is_cancelled_for_the_submit_that_made_it(
    reading: dict[str, Any],
) -> None:
    # ADA's and GRACE's submits are both answered 500 and processed later, after each
    # first look at the list found nothing: ADA's task starts on the free slot, then
    # GRACE's queues behind it. ADA's next look sees both and cannot tell them apart.
    # The running one is named to ADA's user; the PENDING one is cancelled (free).
    # GRACE may have made the running one: it names it too, and sends nothing again.
    # Margins for a busy machine: the first looks come within 0.5 s (before processing),
    # the next ones a second later, and ADA's task runs 3 s, so they find it still running.
    config = sim_config(durations=fixed_duration(300), **reading)
    looks = RetryPolicy(wait_first=100.0, wait_max=120.0, wait_jitter=0.0)
    async with running(config, retry=looks) as (sim, client):
        sim.faults.add(Fault("submit", "late", status=500, delay=0.5))
        sim.faults.add(Fault("submit", "late", status=500, delay=0.5))
        ada, grace = await asyncio.gather(
            submit(client, sim, ADA), submit(client, sim, GRACE), return_exceptions=True
        )
        await until(lambda: all(t.status != "PENDING" for t in sim.tasks()), "the queue drained")
        await until(lambda: all(t.status != "RUNNING" for t in sim.tasks()), "the slot idle")
        truth = {t.task_id: t for t in sim.tasks()}
        paid = succeeded_by_image(sim)
    # The state under test: a running task and a PENDING one, both from a lost answer.
    first_ada, first_grace = sorted(
        (t for t in truth.values() if t.image_url in (ADA, GRACE)), key=lambda t: t.submitted_at
    )[:2]
    assert (first_ada.image_url, first_grace.image_url) == (ADA, GRACE)
    assert isinstance(ada, SubmissionUncertainError)
    assert ada.candidates == (first_ada.task_id,)  # the running one, kept for ADA's user
    assert first_grace.status == "CANCELED"  # cancelled while PENDING: it costs nothing
    assert isinstance(grace, SubmissionUncertainError)
    assert grace.candidates == (first_ada.task_id,)
    assert len(truth) == 2  # nothing was sent again
    assert paid == {ADA: 1}


@READINGS
async def test_a_task_named_to_another_uncertain_submit_is_never_paid_again_by_its_maker(
    reading: dict[str, Any],
) -> None:
    # ADA's submit is answered 503 and made nothing; GRACE's is answered 500 and its
    # task starts later on the free slot. ADA looks first, cannot tell whose the
    # running task is, and names it to its user. GRACE must not take that task's
    # absence from its candidates for proof that it made nothing: sending again
    # would pay for GRACE's portrait twice. It names the same task, and waits for a user.
    config = sim_config(durations=fixed_duration(30), **reading)
    looks = RetryPolicy(wait_first=5.0, wait_max=60.0, wait_jitter=0.0)
    async with running(config, retry=looks) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=503, code="ServiceUnavailable"))
        sim.faults.add(Fault("submit", "late", status=500, delay=0.08))
        ada, grace = await asyncio.gather(
            submit(client, sim, ADA), submit(client, sim, GRACE), return_exceptions=True
        )
        await until(
            lambda: all(t.status not in ("PENDING", "RUNNING") for t in sim.tasks()), "the end"
        )
        tasks = sim.tasks()
        paid = succeeded_by_image(sim)
    assert paid == {GRACE: 1}
    [made] = tasks
    assert made.image_url == GRACE
    assert isinstance(ada, SubmissionUncertainError)
    assert isinstance(grace, SubmissionUncertainError)
    assert made.task_id in ada.candidates
    assert made.task_id in grace.candidates
    assert count(sim, "submit") == 2  # nothing was sent again


# --- 2. one late task poisons nothing ---------------------------------------------------


@READINGS
async def test_a_task_processed_after_its_window_is_cancelled_and_later_settlements_stay_sure(
    reading: dict[str, Any],
) -> None:
    config = sim_config(durations=fixed_duration(150), **reading)
    jobs = [EmojiJob(f"https://example.com/late/{n}.png", "mengwa_kaixin") for n in range(6)]
    seen: list[events.JobEvent] = []
    async with running(config) as (sim, client):
        # The first submit is answered 500 and processed only after its reconcile window.
        sim.faults.add(Fault("submit", "late", delay=1.6 * WINDOW, status=500))
        run = asyncio.create_task(client.generate_many(jobs, on_event=seen.append))
        first = jobs[0].image
        await until(lambda: sum(t.image_url == first for t in sim.tasks()) == 2, "the late task")
        # Answers lost from now on still settle: the late task is no candidate of theirs.
        sim.faults.add(Fault("submit", "reset", after_processing=True, times=2))
        outcomes = await run
        await until(lambda: all(t.status != "PENDING" for t in sim.tasks()), "the queue drained")
        late = [t for t in sim.tasks() if t.image_url == first and t.task_id != outcomes[0].task_id]
        paid = succeeded_by_image(sim)
    assert all(o.ok for o in outcomes)
    assert not any(isinstance(o.error, SubmissionUncertainError) for o in outcomes)
    [orphan] = late
    assert orphan.status == "CANCELED"  # cancelled while PENDING: it costs nothing
    assert all(n == 1 for n in paid.values())
    assert len(paid) == len(jobs)
    found = [e for e in seen if isinstance(e, events.Orphaned)]
    assert orphan.task_id in {e.task_id for e in found if e.cancelled}


def test_a_damaged_answer_keeps_the_task_id_it_carried() -> None:
    from emoji_async._wire import task_id_in

    task_id = "4909100c-5ff8-4a7e-9b1c-2f3e4d5c6b7a"
    body = json.dumps({"output": {"task_status": "PENDING", "task_id": task_id}}).encode()
    cut = body.index(task_id.encode()) + 21
    assert task_id_in(body[:cut]) == (task_id[:21], False)
    assert task_id_in(body[: cut + 40]) == (task_id, True)
    assert task_id_in(b'{"output": {"task_status": "PEN') == (None, False)
    assert task_id_in(b'{"task_id": "../../etc"}') == (None, False)


def _cut_inside_the_id(keep_chars: int) -> float:
    """The ``keep`` of a truncate fault that cuts a submit answer ``keep_chars`` into its id."""
    sample = json.dumps(
        {
            "output": {"task_status": "PENDING", "task_id": "x" * 36},
            "request_id": "y" * 36,
        },
        ensure_ascii=False,
    )
    return (sample.index("x" * 36) + keep_chars + 0.5) / len(sample)


@READINGS
async def test_the_first_characters_of_a_task_id_in_a_cut_answer_name_its_task(
    reading: dict[str, Any],
) -> None:
    config = sim_config(durations=fixed_duration(200), **reading)
    async with running(config) as (sim, client):
        # ADA's first attempt is processed only after its window: a ghost, sent again.
        sim.faults.add(Fault("submit", "late", delay=1.3 * WINDOW, status=500))
        ada = await submit(client, sim, ADA)
        await until(lambda: sum(t.image_url == ADA for t in sim.tasks()) == 2, "the late task")
        # GRACE's answer is cut 21 characters into its task id; the late task of ADA
        # appeared just before, so without those characters it would be ambiguous.
        sim.faults.add(Fault("submit", "truncate", keep=_cut_inside_the_id(21)))
        grace = await submit(client, sim, GRACE)
        truth = {t.task_id: t for t in sim.tasks()}
    assert truth[grace].image_url == GRACE
    assert truth[ada].image_url == ADA
    assert count(sim, "submit") == 3  # never sent again
    assert [t.status for t in truth.values() if t.image_url == GRACE] == ["PENDING"]


async def test_a_whole_task_id_in_a_cut_answer_is_taken_at_its_word() -> None:
    async with running(sim_config()) as (sim, client):
        sim.faults.add(Fault("submit", "truncate", keep=_cut_inside_the_id(36 + 8)))
        task_id = await submit(client, sim, ADA)
        assert sim.stats.tasks_created == 1
        assert count(sim, "submit") == 1
        assert sim.task(task_id) is not None


# --- 3. the list's zone, 5. the service's clock ------------------------------------------


@pytest.mark.parametrize(
    "knobs",
    [
        {"list_zone": "UTC+8"},
        {"list_zone": "UTC"},
        {"list_zone": "UTC", "list_order": "oldest_first"},
        {"clock_skew": -30.0},
        {"clock_skew": 30.0},
        {"clock_skew": -3600.0, "list_zone": "UTC"},
    ],
    ids=lambda knobs: ",".join(f"{k}={v}" for k, v in knobs.items()),
)
async def test_a_submit_answered_500_after_its_task_was_made_is_settled_whatever_the_clocks(
    knobs: dict[str, Any],
) -> None:
    async with running(sim_config(**knobs)) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=500, after_processing=True))
        task_id = await submit(client, sim, ADA)
        assert count(sim, "submit") == 1
        assert sim.stats.tasks_created == 1
        assert sim.task(task_id) is not None


async def test_an_empty_list_page_without_data_proves_nothing_was_made() -> None:
    async with running(sim_config(empty_page="bare")) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=503, code="ServiceUnavailable"))
        task_id = await submit(client, sim, ADA)
        assert count(sim, "submit") == 2  # sent again once the window showed nothing
        assert sim.stats.tasks_created == 1
        assert sim.task(task_id) is not None


async def test_a_task_whose_queries_carry_no_times_is_followed_to_its_video() -> None:
    # The provider shows no PENDING or RUNNING example: neither time may be required.
    async with running(sim_config(pending_times=False)) as (sim, client):
        sim.faults.add(Fault("submit", "reset", after_processing=True))
        video = await client.generate(ADA, "mengwa_kaixin")
        truth = sim.task(video.task_id)
    assert truth is not None
    assert truth.image_url == ADA
    assert truth.status == "SUCCEEDED"


# --- 4. only a documented 4xx proves nothing was made -------------------------------------


@pytest.mark.parametrize("status", [302, 307, 408, 409])
async def test_an_answer_the_protocol_never_gives_is_settled_like_a_lost_one(status: int) -> None:
    async with running(sim_config()) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=status, after_processing=True))
        task_id = await submit(client, sim, ADA)
        assert count(sim, "submit") == 1
        assert sim.stats.tasks_created == 1
        assert sim.task(task_id) is not None


async def test_a_batch_records_the_task_of_a_submit_answered_408_and_fetches_its_video(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.db"
    async with running(sim_config()) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=408, after_processing=True))
        [outcome] = await client.generate_many([EmojiJob(ADA, "mengwa_kaixin")], journal=path)
        assert sim.stats.tasks_created == 1
    assert outcome.ok
    async with await Journal.open(path) as journal:
        [entry] = journal.entries()
    assert entry.state is JobState.SUCCEEDED
    assert entry.task_id == outcome.task_id


async def test_a_documented_refusal_is_certain_and_nothing_is_searched() -> None:
    async with running(sim_config()) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=400, code="InvalidParameter"))
        with pytest.raises(InvalidRequestError, match="InvalidParameter"):
            await submit(client, sim, ADA)
        assert count(sim, "submit") == 1  # never sent again
        assert count(sim, "list") == 1  # the read before the first submit; no search
        assert sim.stats.tasks_created == 0


async def test_a_read_answered_with_a_redirect_is_retried_not_trusted() -> None:
    async with running(sim_config()) as (sim, client):
        task_id = await submit(client, sim, ADA)
        sim.faults.add(Fault("query", "status", status=302))
        snapshot = await client.task(task_id).refresh()
        assert snapshot.task_id == task_id
        assert count(sim, "query") == 2


# --- 6. a caller that stopped waiting leaves no task untracked ----------------------------


async def test_every_task_of_a_cancelled_generate_is_on_the_clients_record() -> None:
    rng = random.Random(4)
    told: list[events.JobEvent] = []
    config = sim_config(durations=fixed_duration(30))
    async with running(config, on_event=told.append) as (sim, client):
        returned: set[str] = set()
        for n in range(24):
            try:
                async with asyncio.timeout(rng.uniform(0.0, 0.4)):
                    video = await client.generate(
                        f"https://example.com/cancelled/{n}.png", "mengwa_kaixin"
                    )
            except TimeoutError:
                continue
            returned.add(video.task_id)
        await client.aclose()  # lets a submit still on its way settle
        abandoned = {record.task_id for record in client.abandoned}
        created = set(sim.task_states())
    assert len(abandoned) >= 5  # the run did cancel callers after their submit left
    assert created == returned | abandoned  # every paid task is known to someone
    assert abandoned <= {e.task_id for e in told if isinstance(e, events.Abandoned)}
    assert not any(record.cancelled for record in client.abandoned)


async def test_abandoned_tasks_can_be_cancelled_while_pending() -> None:
    config = sim_config(durations=fixed_duration(300))
    async with running(config) as (sim, client):
        await submit(client, sim, "https://example.com/blocker.png")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await client.generate(ADA, "mengwa_kaixin")
        [record] = client.abandoned
        assert sim.task_states()[record.task_id] == "PENDING"
        assert await client.cancel_abandoned_tasks() == [record.task_id]
        assert sim.task_states()[record.task_id] == "CANCELED"
        assert client.abandoned[0].cancelled


# --- what cannot be settled is said, counted and not 0 ------------------------------------


async def test_a_task_that_could_not_be_cancelled_is_reported_with_its_id() -> None:
    # No queue: every task starts at once, so a late one cannot be caught PENDING.
    config = sim_config(limits=None, durations=fixed_duration(400))
    told: list[events.JobEvent] = []
    async with running(config, on_event=told.append) as (sim, client):
        sim.faults.add(Fault("submit", "late", delay=1.5 * WINDOW, status=503))
        wait = asyncio.create_task(client.generate(ADA, "mengwa_kaixin"))
        await until(lambda: len(client.orphans) == 1, "the orphan reported")
        wait.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wait
        [orphan] = client.orphans
        truth = sim.task(orphan.task_id)
    assert truth is not None
    assert truth.image_url == ADA
    assert not orphan.cancelled
    assert orphan.status is TaskStatus.RUNNING
    assert orphan.owners == (ADA,)
    assert [e.task_id for e in told if isinstance(e, events.Orphaned)] == [orphan.task_id]


async def test_an_uncertain_submit_says_what_was_sent_when_and_its_candidates() -> None:
    async with running(sim_config(limits=None)) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=503, code="ServiceUnavailable"))
        first = asyncio.create_task(submit(client, sim, ADA))
        await until(lambda: count(sim, "submit") == 1, "ADA's first attempt")
        await asyncio.sleep(0.05)  # past the account's submit rate
        sim.faults.add(Fault("submit", "reset", after_processing=True))
        with pytest.raises(SubmissionUncertainError) as caught:
            await submit(client, sim, GRACE)
        # ADA's attempt may have made that task just as well: sending ADA again would
        # pay for it twice if so. ADA names the same task to its user.
        with pytest.raises(SubmissionUncertainError) as also:
            await first
        truth = {t.task_id: t.image_url for t in sim.tasks()}
    error = caught.value
    assert error.inputs["image_url"] == GRACE
    assert error.sent_at.tzinfo is not None
    [candidate] = error.candidates
    assert truth[candidate] == GRACE  # it was GRACE's; the client could not prove it
    assert candidate in str(error)
    assert also.value.candidates == (candidate,)
    assert list(truth) == [candidate]  # nothing was sent again


def test_the_cli_counts_uncertain_jobs_and_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"image,driven_id,key\n{ADA},mengwa_kaixin,ada\n{GRACE},mengwa_kaixin,grace\n")
    # Every task starts at once: GRACE's, made before its answer was lost, is already
    # running while ADA's first attempt (answered 503) may have made it as well: both
    # jobs are uncertain, and neither is sent again.
    config = sim_config(limits=None)
    with serve_in_thread(config) as server:
        server.simulator.faults.add(Fault("submit", "status", status=503, code="InternalError"))
        server.simulator.faults.add(Fault("submit", "reset", after_processing=True))
        status = batch(server, tmp_path, jobs, "--concurrency", "2", "--progress", "never")
        made = server.simulator.tasks()
    out = capsys.readouterr().out
    assert status == 1
    assert "2 uncertain" in out
    [grace] = made  # GRACE's one task: not sent again, and named to the user
    assert grace.image_url == GRACE
    assert grace.task_id in out.split("batch summary")[1]


# --- a hostile service on the paid path -----------------------------------------------


def endless_429(endpoint: str, times: int) -> Fault:
    """429s whose Retry-After (10**12 s) ends past any call's deadline: each fails at once."""
    return Fault(
        endpoint, "status", times=times, status=429, code="Throttling.RateQuota", retry_after=1e12
    )


async def test_a_batch_job_whose_poll_is_refused_past_its_deadline_keeps_following_its_task() -> (
    None
):
    async with running(sim_config()) as (sim, client):
        sim.faults.add(endless_429("query", times=2))
        (outcome,) = await client.generate_many([EmojiJob(ADA, "mengwa_kaixin")])
    # The polls that met the 429 failed at once; the paid task was watched again.
    assert [r.status for r in sim.requests if r.endpoint == "query"][:2] == [429, 429]
    assert outcome.ok, outcome.error
    assert outcome.task_id == sim.tasks()[0].task_id
    assert sim.stats.tasks_created == 1


async def test_a_lost_submit_whose_task_list_cannot_be_read_for_a_while_is_settled_later() -> None:
    async with running(sim_config()) as (sim, client):
        # The submit is answered 500 at once and processed half a window later.
        sim.faults.add(Fault("submit", "late", status=500, delay=WINDOW / 2))
        # The reads before the submit and right after it go through; the next three
        # are refused with a Retry-After no call could wait for.
        sim.faults.add(Fault("list", "delay", delay=0.0, times=2))
        sim.faults.add(endless_429("list", times=3))
        (outcome,) = await client.generate_many([EmojiJob(ADA, "mengwa_kaixin")])
    assert outcome.ok, outcome.error
    assert [r.status for r in sim.requests if r.endpoint == "list"][2:5] == [429, 429, 429]
    # The task the lost submit made was found and adopted: one task, one submit.
    assert sim.stats.tasks_created == 1
    assert count(sim, "submit") == 1
    assert outcome.task_id == sim.tasks()[0].task_id

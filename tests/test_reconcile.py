"""A submit whose answer was lost is settled through the task list: one task, never two."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from emoji_async import (
    EmojiClient,
    EmojiJob,
    RetryPolicy,
    ServerError,
    SubmissionUncertainError,
    Timeouts,
    events,
)
from emoji_async._journal import JobState, Journal
from emoji_async._reconcile import RESENDS
from emoji_async.testing import Fault, Simulator

from .conftest import SCALE, intent_on_record, raw_submit, rerun_client, running, sim_config

PORTRAIT = "https://example.com/portraits/ada.png"


def count(sim: Simulator, endpoint: str) -> int:
    return sum(1 for r in sim.requests if r.endpoint == endpoint)


async def submit(client: EmojiClient, sim: Simulator, url: str = PORTRAIT) -> str:
    face, ext = sim.boxes_for(url)
    task = await client.submit(url, "mengwa_kaixin", face_bbox=face, ext_bbox=ext)
    return task.task_id


async def test_a_task_created_before_the_connection_dropped_is_adopted() -> None:
    async with running(sim_config()) as (sim, client):
        sim.faults.add(Fault("submit", "reset", after_processing=True))
        task_id = await submit(client, sim)
        assert count(sim, "submit") == 1
        assert count(sim, "list") >= 1
        assert sim.stats.tasks_created == 1
        assert sim.task(task_id) is not None


async def test_a_submit_that_created_nothing_is_sent_again_once_the_window_has_passed() -> None:
    async with running(sim_config()) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=503, code="ServiceUnavailable"))
        sent = asyncio.get_running_loop().time()
        task_id = await submit(client, sim)
        waited = asyncio.get_running_loop().time() - sent
        assert count(sim, "submit") == 2
        assert sim.stats.tasks_created == 1
        assert sim.task(task_id) is not None
    # Sent again only once the whole window had shown no task.
    window = RetryPolicy().scaled(SCALE).reconcile_window
    assert window is not None
    assert waited >= window


async def test_a_submit_the_service_acted_on_after_the_client_gave_up_is_adopted() -> None:
    # The request waits at the server past the client's read timeout, then creates its task.
    timeouts = Timeouts(connect=1.0, read=0.05)
    async with running(sim_config(), timeouts=timeouts) as (sim, client):
        sim.faults.add(Fault("submit", "delay", delay=0.4))
        task_id = await submit(client, sim)
        await asyncio.sleep(0.5)  # the abandoned request has long been processed
        assert count(sim, "submit") == 1
        assert sim.stats.tasks_created == 1
        assert sim.task(task_id) is not None


async def test_two_unknown_tasks_leave_the_submit_uncertain_and_name_them() -> None:
    async with running(sim_config()) as (sim, client):
        face, ext = sim.boxes_for(PORTRAIT)
        await submit(client, sim, "https://example.com/portraits/first.png")
        await asyncio.sleep(0.05)  # past the account's submit rate (1/s, scaled)
        # Another process on the account submits at the same moment (which the
        # client's documented assumption excludes): the match is ambiguous.
        assert client.base_url is not None
        other = await raw_submit(client.base_url, PORTRAIT, face, ext, "dagong_ganji")
        await asyncio.sleep(0.05)  # past the account's submit rate (1/s, scaled)
        sim.faults.add(Fault("submit", "reset", after_processing=True))
        with pytest.raises(SubmissionUncertainError) as caught:
            await submit(client, sim)
        assert count(sim, "submit") == 3  # the other process's, and ours: never resent
        assert sim.stats.tasks_created == 3
        # More tasks than this client's submits could have made: nothing of them is touched.
        assert count(sim, "cancel") == 0
    assert other in caught.value.candidates
    assert len(caught.value.candidates) == 2


@pytest.mark.parametrize("cancel_abandoned", [False, True])
async def test_a_cancelled_callers_task_is_on_record_and_cancelled_only_if_asked(
    cancel_abandoned: bool,
) -> None:
    config = sim_config()
    async with running(config, cancel_abandoned=cancel_abandoned) as (sim, client):
        await submit(client, sim, "https://example.com/long.png?sim_duration=600")
        # The running slot is taken: the next task waits PENDING, where a cancel is free.
        sim.faults.add(Fault("submit", "delay", delay=0.2, after_processing=True))
        pending = asyncio.create_task(submit(client, sim))
        while count(sim, "submit") < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await client.aclose()  # lets the submit settle, and its cancel finish
        [record] = client.abandoned
        state = sim.task_states()[record.task_id]
    assert sim.stats.tasks_created == 2
    assert record.label == PORTRAIT
    assert record.cancelled is cancel_abandoned
    assert state == ("CANCELED" if cancel_abandoned else "PENDING")


async def test_a_rerun_adopts_the_task_a_crashed_run_created_without_recording_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.db"
    job = EmojiJob(PORTRAIT, "mengwa_kaixin", key="ada")
    async with running(sim_config()) as (sim, client):
        face, ext = await intent_on_record(path, sim, "ada", PORTRAIT)
        # ... and its submit sent, whose answer it never recorded.
        sent = await client.submit(PORTRAIT, "mengwa_kaixin", face_bbox=face, ext_bbox=ext)
        seen: list[events.JobEvent] = []
        async with rerun_client(client) as rerun:  # a new process: it knows only its journal
            [outcome] = await rerun.generate_many([job], journal=path, on_event=seen.append)
        assert sim.stats.tasks_created == 1
    assert outcome.ok
    assert outcome.task_id == sent.task_id
    assert [e.task_id for e in seen if isinstance(e, events.Reconciled)] == [sent.task_id]


async def test_a_rerun_sends_an_intent_that_never_left(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    job = EmojiJob(PORTRAIT, "mengwa_kaixin", key="ada")
    async with running(sim_config()) as (sim, client):
        await intent_on_record(path, sim, "ada", PORTRAIT)
        [outcome] = await client.generate_many([job], journal=path)
        assert sim.stats.tasks_created == 1
    assert outcome.ok
    async with await Journal.open(path) as journal:
        states = journal.history("ada")
    assert [state for state, _ in states] == [
        JobState.SUBMITTING,
        JobState.UNCERTAIN,
        JobState.SUBMITTING,
        JobState.SUBMITTED,
        JobState.SUCCEEDED,
    ]


async def test_without_a_window_nothing_is_searched() -> None:
    unsettled = RetryPolicy(reconcile_window=None)
    async with running(sim_config(), retry=unsettled) as (sim, client):
        sim.faults.add(Fault("submit", "reset", after_processing=True))
        with pytest.raises(SubmissionUncertainError) as caught:
            await submit(client, sim)
        assert count(sim, "list") == 0
    assert caught.value.sent_at <= dt.datetime.now(dt.UTC)
    assert caught.value.candidates == ()


async def test_a_task_list_that_cannot_be_read_proves_nothing() -> None:
    async with running(sim_config()) as (sim, client):
        sim.faults.add(Fault("submit", "reset", after_processing=True))
        # Every list answer lacks its data: that must not read as an empty list.
        sim.faults.add(Fault("list", "drop_field", field="data", times=10_000))
        with pytest.raises(SubmissionUncertainError, match="task list could not be read"):
            await submit(client, sim)
        assert count(sim, "submit") == 1
        assert sim.stats.tasks_created == 1


#: Both readings of the list's open points (PROTOCOL.md), and where the submit's own
#: row stands on a page of two tasks under each: first when the newest come first.
ROW_READINGS = pytest.mark.parametrize(
    ("reading", "row"),
    [
        ({}, 0),
        ({"list_zone": "UTC", "list_order": "oldest_first", "clock_skew": -30.0}, 1),
    ],
    ids=["UTC+8,newest_first", "UTC,oldest_first,skew-30"],
)


@ROW_READINGS
@pytest.mark.parametrize("dropped", ["status", "task_id"])
async def test_a_task_list_row_that_cannot_be_read_is_never_taken_for_no_task(
    reading: dict[str, object], row: int, dropped: str
) -> None:
    async with running(sim_config(**reading)) as (sim, client):
        await submit(client, sim, "https://example.com/portraits/first.png")  # the baseline read
        await asyncio.sleep(0.05)  # past the account's submit rate (1/s, scaled)
        sim.faults.add(Fault("submit", "reset", after_processing=True))
        # The submit's own task is a row no look can read: left out, the page would
        # show no task of its, and the submit would be sent again, paid twice.
        sim.faults.add(Fault("list", "drop_field", field=f"data.{row}.{dropped}", times=10_000))
        with pytest.raises(SubmissionUncertainError, match="task list could not be read"):
            await submit(client, sim)
        assert count(sim, "submit") == 2
        assert sorted(t.image_url for t in sim.tasks()) == sorted(
            ["https://example.com/portraits/first.png", PORTRAIT]
        )


@ROW_READINGS
async def test_a_lost_submit_is_adopted_when_its_unreadable_row_reads_on_the_next_ask(
    reading: dict[str, object], row: int
) -> None:
    async with running(sim_config(**reading)) as (sim, client):
        await submit(client, sim, "https://example.com/portraits/first.png")  # the baseline read
        await asyncio.sleep(0.05)  # past the account's submit rate (1/s, scaled)
        sim.faults.add(Fault("submit", "reset", after_processing=True))
        # The first look's page has the submit's row unreadable: the page is asked for again
        # (as one that breaks the protocol is), and the next answer reads whole.
        sim.faults.add(Fault("list", "drop_field", field=f"data.{row}.status"))
        task_id = await submit(client, sim)
        assert count(sim, "submit") == 2
        assert sim.stats.tasks_created == 2
        assert sim.stats.faults_by_kind == {"reset_after": 1, "missing_field": 1}
        adopted = sim.task(task_id)
        assert adopted is not None
        assert adopted.image_url == PORTRAIT  # the task adopted is this submit's own


async def test_a_submit_that_keeps_failing_before_creating_anything_ends_in_its_certain_error() -> (
    None
):
    short = RetryPolicy(reconcile_window=20.0)
    async with running(sim_config(), retry=short) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=503, code="ServiceUnavailable", times=50))
        with pytest.raises(ServerError):
            await submit(client, sim)
        assert count(sim, "submit") == 1 + RESENDS  # each resent once a window showed nothing
        assert sim.stats.tasks_created == 0

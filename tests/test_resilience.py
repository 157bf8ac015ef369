"""Faults on the wire: polls retry, paid submits never repeat, deadlines and cancellation hold."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest

from emoji_async import (
    ConnectError,
    EmojiClient,
    PermissionDeniedError,
    PollPolicy,
    RateLimitError,
    RetryPolicy,
    SubmissionUncertainError,
    Task,
    Timeouts,
    WaitTimeoutError,
)
from emoji_async.testing import Fault, Simulator, SimulatorServer

from .conftest import client_for, detect_and_submit, running, serve_in_thread, sim_config

PORTRAIT = "https://example.com/portraits/grace.png"


def count(sim: Simulator, endpoint: str) -> int:
    return sum(1 for r in sim.requests if r.endpoint == endpoint)


async def submit(client: EmojiClient, url: str = PORTRAIT) -> Task:
    return await detect_and_submit(client, url)


#: Reconciliation off: what a lost submit answer raises when the client may not settle it.
UNSETTLED = RetryPolicy(reconcile_window=None)


@pytest.mark.parametrize("after_processing", [True, False])
async def test_without_reconciliation_a_submit_answered_500_is_never_resent(
    after_processing: bool,
) -> None:
    async with running(sim_config(), retry=UNSETTLED) as (sim, client):
        face = await client.detect(PORTRAIT)
        sim.faults.add(Fault("submit", "status", status=500, after_processing=after_processing))
        with pytest.raises(SubmissionUncertainError) as caught:
            await client.submit(
                PORTRAIT, "mengwa_kaixin", face_bbox=face.face_bbox, ext_bbox=face.ext_bbox
            )
        assert count(sim, "submit") == 1
        assert count(sim, "list") == 0
        assert sim.stats.tasks_created == (1 if after_processing else 0)
    assert caught.value.inputs["driven_id"] == "mengwa_kaixin"
    assert caught.value.inputs["face_bbox"] == face.face_bbox.as_list()
    assert caught.value.sent_at.tzinfo is not None


async def test_without_reconciliation_a_connection_dropped_after_processing_is_uncertain() -> None:
    async with running(sim_config(), retry=UNSETTLED) as (sim, client):
        face = await client.detect(PORTRAIT)
        sim.faults.add(Fault("submit", "reset", after_processing=True))
        with pytest.raises(SubmissionUncertainError):
            await client.submit(
                PORTRAIT, "mengwa_kaixin", face_bbox=face.face_bbox, ext_bbox=face.ext_bbox
            )
        assert count(sim, "submit") == 1
        assert sim.stats.tasks_created == 1


async def test_a_throttled_submit_is_retried_and_creates_one_task(
    client: EmojiClient, sim: Simulator
) -> None:
    sim.faults.add(Fault("submit", "status", status=429, code="Throttling.RateQuota", times=2))
    task = await submit(client)
    assert count(sim, "submit") == 3
    assert sim.stats.tasks_created == 1
    assert sim.task(task.task_id) is not None


async def test_a_submit_that_never_connected_is_a_connect_error_not_uncertain() -> None:
    # Take a port, then free it: nothing listens there any more.
    holder = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = holder.sockets[0].getsockname()[1]
    holder.close()
    await holder.wait_closed()
    async with EmojiClient(
        api_key="sk-x",
        base_url=f"http://127.0.0.1:{port}/api/v1",
        retry=RetryPolicy(wait_first=0.01, wait_max=0.02, deadline=0.2),
        limits=None,
    ) as client:
        with pytest.raises(ConnectError):
            await client.submit(
                PORTRAIT, "mengwa_kaixin", face_bbox=[1, 1, 5, 5], ext_bbox=[0, 0, 9, 9]
            )


async def test_a_submit_whose_deadline_passes_while_it_connects_was_not_sent() -> None:
    # A listener whose one-place backlog is full and which never accepts: Linux
    # drops the next SYN, so a connection to it hangs in the making.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(2):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        await asyncio.sleep(0.05)
        async with EmojiClient(
            api_key="sk-x",
            base_url=f"http://127.0.0.1:{port}/api/v1",
            retry=RetryPolicy(wait_first=0.01, wait_max=0.02, deadline=0.3),
            timeouts=Timeouts(connect=30, read=30),
            limits=None,
        ) as client:
            started = time.monotonic()
            with pytest.raises(ConnectError, match="was not sent"):
                await client.submit(
                    PORTRAIT, "mengwa_kaixin", face_bbox=[1, 1, 5, 5], ext_bbox=[0, 0, 9, 9]
                )
            # Not uncertain, so no task list was asked for: the call ended at its deadline.
            assert time.monotonic() - started < 5
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_polls_ride_out_429_500_resets_and_read_timeouts(server: SimulatorServer) -> None:
    sim = server.simulator
    async with client_for(server, timeouts=Timeouts(connect=5, read=0.2)) as client:
        task = await submit(client)
        for fault in (
            Fault("query", "status", status=429, code="Throttling.RateQuota"),
            Fault("query", "status", status=500, code="InternalError"),
            Fault("query", "status", status=503, code="ServiceUnavailable"),
            # aiohttp quietly resends a GET once after a hang-up: two resets reach the client.
            Fault("query", "reset", times=2),
            Fault("query", "delay", delay=0.5),
        ):
            sim.faults.add(fault)
        video = await task.wait()
    assert video.task_id == task.task_id
    statuses = [r.status for r in sim.requests if r.endpoint == "query"]
    assert {429, 500, 503, 0} <= set(statuses)


async def test_retry_after_is_honoured_before_the_next_poll(
    client: EmojiClient, sim: Simulator
) -> None:
    task = await submit(client)
    sim.faults.add(Fault("query", "status", status=429, code="Throttling", retry_after=0.4))
    await task.wait()
    polls = [r for r in sim.requests if r.endpoint == "query"]
    throttled = next(i for i, r in enumerate(polls) if r.status == 429)
    assert polls[throttled + 1].at - polls[throttled].at >= 0.4


async def test_a_403_on_a_poll_fails_at_once(client: EmojiClient, sim: Simulator) -> None:
    task = await submit(client)
    sim.faults.add(Fault("query", "status", status=403, code="AccessDenied", times=5))
    with pytest.raises(PermissionDeniedError):
        await task.wait()
    assert count(sim, "query") == 1


async def test_a_throttled_detect_is_retried_until_the_retry_deadline(
    server: SimulatorServer,
) -> None:
    sim = server.simulator
    sim.faults.add(Fault("detect", "status", status=429, code="Throttling", times=1000))
    retry = RetryPolicy(wait_first=1, wait_max=5, deadline=30)  # 0.3 s here
    async with client_for(server, retry=retry) as client:
        started = time.monotonic()
        with pytest.raises(RateLimitError):
            await client.detect(PORTRAIT)
        elapsed = time.monotonic() - started
    assert count(sim, "detect") > 2
    # Retried until the deadline (30 provider seconds), not stopped by a count of attempts.
    assert 0.3 <= elapsed < 0.3 + 0.2


async def test_the_deadline_holds_and_reports_the_last_state() -> None:
    async with running() as (_, client):
        task = await submit(client, PORTRAIT + "?sim_duration=6000")  # 60 s here
        started = time.monotonic()
        with pytest.raises(WaitTimeoutError) as caught:
            await task.wait(timeout=0.3)
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.3 + 0.15
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.task_id == task.task_id
    assert caught.value.snapshot is not None
    assert caught.value.snapshot.status.value == "RUNNING"


async def test_the_deadline_also_cuts_a_request_in_flight(
    client: EmojiClient, sim: Simulator
) -> None:
    task = client.task((await submit(client)).task_id)  # no snapshot: the first poll is at once
    sim.faults.add(Fault("query", "delay", delay=5.0))
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError):
        await task.wait(timeout=0.2)
    assert time.monotonic() - started < 0.2 + 0.15


async def test_the_policy_deadline_applies_when_wait_is_given_none() -> None:
    async with running() as (_, client):
        task = await submit(client, PORTRAIT + "?sim_duration=6000")
        with pytest.raises(WaitTimeoutError) as caught:
            await task.wait(policy=PollPolicy(wait_first=0.01, deadline=0.2))
    assert caught.value.timeout == 0.2


async def test_a_cancelled_wait_leaves_no_task_and_no_busy_connection() -> None:
    # The simulator runs on its own loop in another thread, so every task left on
    # this loop after the cancel would be the client's.
    with serve_in_thread(sim_config()) as server:
        sim = server.simulator
        # One connection in the pool: if the cancelled poll kept it, the next call would hang.
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session,
            client_for(server, session=session) as client,
        ):
            task = client.task((await submit(client)).task_id)
            sim.faults.add(Fault("query", "delay", delay=5.0))
            waiter = asyncio.create_task(task.wait())
            while not any(r.endpoint == "query" for r in list(sim.requests)):  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # the record lives on the simulator's thread
            await asyncio.sleep(0.05)  # the delayed poll is in flight
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            assert asyncio.all_tasks() == {asyncio.current_task()}
            async with asyncio.timeout(2):
                snap = await task.refresh()
            assert snap.task_id == task.task_id

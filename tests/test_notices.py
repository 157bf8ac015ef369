"""Waiting on task-finished notifications: a waiter wakes on its task's event and confirms it
with one query; polls are a sparse safety net for events late or lost.

Until the simulator plays EventBridge itself, :class:`Bridge` does: it watches the
simulator's own record of tasks and delivers each ended task's event to a client's hub,
late, twice, or never, as a test asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

import pytest

from emoji_async import (
    EmojiClient,
    EmojiJob,
    Notices,
    NotifyPolicy,
    PollPolicy,
    TaskStatus,
    ValidationError,
    WaitTimeoutError,
)
from emoji_async._notify_policy import safety_wait
from emoji_async.notify import EVENT_SOURCE, TaskFinished
from emoji_async.testing import Simulator, receiving

from .conftest import SCALE, detect_and_submit, each_job_paid_once, running, sim_config

#: The notifications the tests wait with (the defaults, on the simulator's clock by the client).
NOTIFY = NotifyPolicy()
#: Run times the tests' clients start from: 30 to 90 provider seconds, so that the
#: safety net's first poll (90 s + 10 s after a task starts) is a second away in real time.
QUICK = PollPolicy(run_time=(30.0, 90.0))


def portrait(name: str, seconds: float = 60) -> str:
    return f"https://example.com/{name}.png?sim_duration={seconds:g}"


def event_for(task_id: str, status: str) -> TaskFinished:
    """The event EventBridge delivers when ``task_id`` ends in ``status`` (a new id each time)."""
    return TaskFinished(
        event_id=str(uuid.uuid4()),
        source=EVENT_SOURCE,
        task_id=task_id,
        status=TaskStatus.from_wire(status),
        raw_status=status,
    )


class Bridge:
    """EventBridge, played from the simulator's record: each task that ends is told to ``notices``.

    ``delay`` (provider seconds, drawn uniformly) is how long after the task's end its
    event arrives; ``drop`` the share of events lost; ``duplicate`` delivers each one twice.
    """

    def __init__(
        self,
        sim: Simulator,
        notices: Notices,
        *,
        delay: tuple[float, float] = (1.0, 5.0),
        drop: float = 0.0,
        duplicate: bool = False,
        seed: int = 3,
    ) -> None:
        self._sim = sim
        self._notices = notices
        self._delay = delay
        self._drop = drop
        self._duplicate = duplicate
        self._rng = random.Random(seed)
        self._handled: set[str] = set()
        self._runner: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self.delivered: list[TaskFinished] = []
        self.dropped: list[str] = []

    async def __aenter__(self) -> Self:
        self._runner = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in [self._runner, *self._sending]:
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in [self._runner, *self._sending] if t is not None), return_exceptions=True
        )

    async def _run(self) -> None:
        while True:
            for task in self._sim.tasks():
                ended = task.ended_at
                if task.task_id in self._handled or ended is None:
                    continue
                self._handled.add(task.task_id)
                if self._rng.random() < self._drop:
                    self.dropped.append(task.task_id)
                    continue
                due = ended + self._rng.uniform(*self._delay) * SCALE
                sending = asyncio.create_task(self._deliver(due, task.task_id, task.status))
                self._sending.add(sending)
                sending.add_done_callback(self._sending.discard)
            await asyncio.sleep(0.002)

    async def _deliver(self, due: float, task_id: str, status: str) -> None:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        for _ in range(2 if self._duplicate else 1):
            event = event_for(task_id, status)
            self.delivered.append(event)
            await self._notices.deliver(event)


def queries(sim: Simulator) -> int:
    return sim.stats.requests_by_endpoint.get("query", 0)


async def ended(sim: Simulator, task_id: str) -> None:
    """Return once the simulator's record says the task ended."""
    while (task := sim.task(task_id)) is None or task.ended_at is None:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def notified(**client: object) -> AsyncIterator[tuple[Simulator, EmojiClient]]:
    """A simulator and a client waiting on notifications, run time learned from QUICK."""
    client.setdefault("notifications", NOTIFY)
    client.setdefault("poll", QUICK)
    async with running(sim_config(), **client) as (sim, c):
        yield sim, c


# --- the policy -------------------------------------------------------------------


def test_the_safety_net_polls_after_the_latest_plausible_end_then_at_growing_intervals() -> None:
    policy = NotifyPolicy(grace=10, growth=2, cap=120)
    assert safety_wait(policy, 0, 60, 300) == 310
    assert safety_wait(policy, 200, 60, 300) == 110
    # Past the first safety poll: grace, grace, then twice as far from the end each time.
    steps, at = [], 310.0
    for _ in range(7):
        wait = safety_wait(policy, at, 60, 300)
        steps.append(wait)
        at += wait
    assert steps == [10, 10, 20, 40, 80, 120, 120]


def test_a_safety_net_started_early_polls_through_the_window_of_plausible_ends() -> None:
    # start=0: the first poll a grace after the earliest plausible end; then the
    # distance grows by a tenth of how overdue the net is, never under the grace.
    policy = NotifyPolicy(start=0, grace=10, growth=1.1, cap=120)
    assert safety_wait(policy, 0, 60, 300) == 70
    assert safety_wait(policy, 0, 60, 300) < safety_wait(NotifyPolicy(start=0.5), 0, 60, 300)
    steps, at = [], 70.0
    while at < 300:
        wait = safety_wait(policy, at, 60, 300)
        steps.append(wait)
        at += wait
    assert steps[:10] == [10] * 10  # overdue * 0.1 stays under the grace for 100 s
    assert steps[-1] > 10
    assert 15 <= len(steps) <= 23


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("grace", 0, "> 0"),
        ("grace", float("nan"), "> 0"),
        ("growth", 0.5, ">= 1"),
        ("cap", -1, "> 0"),
        ("start", 1.5, "from 0 to 1"),
    ],
)
def test_a_bad_notify_policy_names_its_field_and_what_it_allows(
    field: str, value: float, allowed: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        NotifyPolicy(**{field: value})
    assert field in str(caught.value)
    assert allowed in str(caught.value)


def test_the_client_refuses_notifications_that_are_not_a_notify_policy() -> None:
    with pytest.raises(ValidationError, match="notifications"):
        EmojiClient(notifications=True)  # type: ignore[arg-type]


# --- the hub ----------------------------------------------------------------------


async def test_an_event_for_a_task_nobody_waits_for_is_kept_as_unclaimed() -> None:
    async with notified() as (sim, client):
        before = dict(sim.stats.requests_by_endpoint)
        event = event_for("not-a-task-of-ours", "SUCCEEDED")
        await client.notices.deliver(event)
        assert client.notices.unclaimed == (event,)
        assert client.notices.counts.unclaimed == 1
        assert client.notices.counts.woke == 0
        assert sim.stats.requests_by_endpoint == before  # nothing was asked of the service


async def test_the_hub_keeps_a_bounded_number_of_unclaimed_events() -> None:
    notices = Notices(keep=3)
    for n in range(5):
        await notices.deliver(event_for(f"t{n}", "SUCCEEDED"))
    assert [e.task_id for e in notices.unclaimed] == ["t2", "t3", "t4"]


# --- waiting ----------------------------------------------------------------------


async def test_a_waiting_task_wakes_on_its_event_and_makes_exactly_one_query() -> None:
    async with notified() as (sim, client), Bridge(sim, client.notices, delay=(1, 5)):
        task = await detect_and_submit(client, portrait("one"))
        started = time.monotonic()
        video = await task.wait()
        took = time.monotonic() - started
        assert video.task_id == task.task_id
        assert queries(sim) == 1
        assert client.notices.counts.woke == 1
        assert client.notices.counts.relayed_out == 0  # no other process to tell
        # Woken by the event (60 s + 1-5 s), before the safety net's poll (90 + 10 s).
        assert took < 100 * SCALE


async def test_a_task_longer_than_its_templates_runs_so_far_is_not_polled_before_its_event() -> (
    None
):
    # Two templates ran 40 s twice each, two others 100 s: each template's runs agree.
    # A third run of a 40 s template takes 80 s, within the account's range: its event
    # (1-5 s after its end) comes before the safety net. A net fitted to the template's
    # own runs (40 s, spread 1) would have polled it from 51 s on, every 10 s or so.
    runs = [("mengwa_kaixin", 40), ("mengwa_dengyan", 40), ("mengwa_gandong", 100)]
    runs += [("mengwa_renzhen_1", 100)]
    async with notified() as (sim, client), Bridge(sim, client.notices, delay=(1, 5)):
        for n, (template, seconds) in enumerate(runs * 2):
            await (await detect_and_submit(client, portrait(f"w{n}", seconds), template)).wait()
        before = queries(sim)
        task = await detect_and_submit(client, portrait("longer", 80), "mengwa_kaixin")
        await task.wait()
        assert queries(sim) - before == 1
        counts = client.notices.counts
        # Before 100 s runs were seen, their safety poll (90 s + 10) came before their
        # events, which came late; every other wait was woken by its event.
        assert counts.woke + counts.late == len(runs) * 2 + 1


async def test_notifications_off_polls_more_for_the_same_job() -> None:
    async with running(sim_config(), poll=QUICK) as (sim, client):
        task = await detect_and_submit(client, portrait("off"))
        await task.wait()
        assert queries(sim) >= 4  # 5, 7.5, 11.25, then every 15 s over 60 s


async def test_an_event_that_arrived_before_the_watcher_started_wakes_it_at_once() -> None:
    async with notified() as (sim, client):
        task = await detect_and_submit(client, portrait("early"))
        await ended(sim, task.task_id)
        await client.notices.deliver(event_for(task.task_id, "SUCCEEDED"))
        assert [e.task_id for e in client.notices.unclaimed] == [task.task_id]
        started = time.monotonic()
        await client.task(task.task_id).wait()
        # At once: the safety net's poll would come 100 s after the task's start.
        assert time.monotonic() - started < 50 * SCALE
        assert queries(sim) == 1
        assert client.notices.counts.claimed_late == 1
        assert client.notices.unclaimed == ()


async def test_a_duplicate_event_is_harmless() -> None:
    async with notified() as (sim, client), Bridge(sim, client.notices, duplicate=True) as bridge:
        task = await detect_and_submit(client, portrait("twice"))
        await task.wait()
        await asyncio.sleep(10 * SCALE)  # the second copy arrives with the first
        assert len(bridge.delivered) == 2
        assert queries(sim) == 1
        assert client.notices.counts.delivered == 1
        assert client.notices.counts.duplicates == 1


async def test_a_dropped_event_is_covered_by_the_safety_net() -> None:
    async with notified() as (sim, client), Bridge(sim, client.notices, drop=1.0) as bridge:
        task = await detect_and_submit(client, portrait("lost"))
        started = time.monotonic()
        video = await task.wait()
        took = time.monotonic() - started
        assert video.task_id == task.task_id
        assert bridge.dropped == [task.task_id]
        # One poll, the safety net's, 90 + 10 s after the start: the lost event cost latency.
        assert queries(sim) == 1
        assert took >= 95 * SCALE


async def test_an_event_later_than_the_safety_net_is_counted_late_not_kept() -> None:
    async with notified() as (sim, client), Bridge(sim, client.notices, delay=(150, 150)) as bridge:
        task = await detect_and_submit(client, portrait("overtaken"))
        await task.wait()  # the safety net's poll, 100 s after the start, saw it end
        assert queries(sim) == 1
        while not bridge.delivered:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        assert client.notices.counts.late == 1
        assert client.notices.unclaimed == ()
        assert queries(sim) == 1


async def test_with_events_lost_a_long_task_is_polled_sparsely_until_it_ends() -> None:
    async with notified() as (sim, client), Bridge(sim, client.notices, drop=1.0):
        task = await detect_and_submit(client, portrait("slow", 250))
        await task.wait()
        # Safety polls at 100, 110, 120, 140, 180 and 260 s: six, where the plain
        # schedule polls every 15 s (17 times).
        assert 5 <= queries(sim) <= 7


async def test_a_forged_success_for_a_running_task_does_not_end_the_wait() -> None:
    async with notified() as (sim, client), Bridge(sim, client.notices):
        task = await detect_and_submit(client, portrait("forged"))
        waiting = asyncio.create_task(task.wait())
        await asyncio.sleep(10 * SCALE)
        assert not waiting.done()
        await client.notices.deliver(event_for(task.task_id, "SUCCEEDED"))
        await asyncio.sleep(10 * SCALE)
        # The query said the task goes on: the wait goes on.
        assert not waiting.done()
        assert queries(sim) == 1
        assert client.notices.counts.refuted == 1
        # The true event, when the task ends, is no duplicate of the refuted one: it wakes it.
        video = await waiting
        assert video.task_id == task.task_id
        assert queries(sim) == 2
        record = sim.task(task.task_id)
        assert record is not None
        assert record.status == "SUCCEEDED"


async def test_a_wait_on_notifications_keeps_its_deadline() -> None:
    async with notified() as (sim, client), Bridge(sim, client.notices, drop=1.0):
        task = await detect_and_submit(client, portrait("deadline"))
        with pytest.raises(WaitTimeoutError):
            await task.wait(timeout=20 * SCALE)
        assert queries(sim) == 0  # the safety net's poll was still far off


async def test_a_cancelled_wait_leaves_no_waiter_in_the_hub() -> None:
    async with notified() as (_, client):
        task = await detect_and_submit(client, portrait("cancelled"))
        waiting = asyncio.create_task(task.wait())
        await asyncio.sleep(5 * SCALE)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await client.notices.deliver(event_for(task.task_id, "SUCCEEDED"))
        # Nobody waits for it any more: the event is kept for whoever looks next.
        assert client.notices.counts.woke == 0
        assert [e.task_id for e in client.notices.unclaimed] == [task.task_id]


async def test_a_task_queued_behind_our_own_is_not_polled_and_each_event_wakes_its_own() -> None:
    async with notified() as (sim, client), Bridge(sim, client.notices):
        first = await detect_and_submit(client, portrait("ahead"))
        second = await detect_and_submit(client, portrait("behind"))
        videos = await asyncio.gather(first.wait(), second.wait())
        assert [v.task_id for v in videos] == [first.task_id, second.task_id]
        # The second waited behind the first without a poll (one slot on the account),
        # then for its own event: one query each.
        assert queries(sim) == 2
        assert client.notices.counts.woke == 2


async def test_a_batch_with_events_costs_about_one_query_per_job() -> None:
    jobs = [EmojiJob(portrait(f"b{n}", 20), "mengwa_kaixin") for n in range(20)]
    async with notified() as (sim, client), Bridge(sim, client.notices):
        outcomes = await client.generate_many(jobs, poll=QUICK.for_batches())
        each_job_paid_once(sim, jobs, outcomes)
        assert sim.stats.requests_by_endpoint.get("submit") == 20
        assert queries(sim) <= 22


# --- end to end: the simulated EventBridge, the receiver, the client's hub ---------


class Forward:
    """A sink handing each event on to a client's hub, once the client is made."""

    def __init__(self) -> None:
        self.to: Notices | None = None

    async def deliver(self, event: TaskFinished) -> None:
        assert self.to is not None
        await self.to.deliver(event)


async def test_signed_events_from_the_simulator_wake_the_jobs_of_a_batch() -> None:
    sink = Forward()
    async with receiving(sink) as (url, receiver):
        config = sim_config(
            notify_targets=(url,),
            notify_latency=(1.0, 5.0),
            notify_drop=0.1,
            notify_duplicates=0.2,
            notify_seed=11,
        )
        async with running(config, notifications=NOTIFY, poll=QUICK) as (sim, client):
            sink.to = client.notices
            jobs = [EmojiJob(portrait(f"e{n}", 20), "mengwa_kaixin") for n in range(12)]
            outcomes = await client.generate_many(jobs, poll=QUICK.for_batches())
            each_job_paid_once(sim, jobs, outcomes)
            lost = sim.stats.dropped
            woke = client.notices.counts.woke
    assert receiver.stats.accepted >= woke
    assert sum(receiver.stats.refused.values()) == 0
    # One query for each job an event woke; a job whose event was lost, the safety
    # net's poll instead (one, its task being no slower than any seen).
    assert woke >= 12 - lost
    assert queries(sim) <= 12 + lost

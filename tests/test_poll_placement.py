"""A poll policy's schedule picks the strategy that places its polls, built from the policy."""

from __future__ import annotations

import time

import pytest

from emoji_async import PollPolicy, PollSchedule
from emoji_async._adaptive import DurationModel, batch_concurrency
from emoji_async._poll_placement import Adaptive, Backoff, Batch, placement_for


def never_started() -> float | None:
    raise AssertionError("the backoff placement never asks when a task started")


def test_every_schedule_names_a_placement_built_from_its_policy() -> None:
    policies = {
        PollSchedule.BACKOFF: (PollPolicy(), Backoff),
        PollSchedule.ADAPTIVE: (PollPolicy().adaptive(), Adaptive),
        PollSchedule.BATCH: (PollPolicy().for_batches(), Batch),
    }
    assert set(policies) == set(PollSchedule)
    for schedule, (policy, kind) in policies.items():
        assert policy.schedule is schedule
        placement = placement_for(policy)
        assert type(placement) is kind
        assert placement.policy is policy


def test_backoff_follows_the_series_and_looks_at_once_when_woken() -> None:
    placement = placement_for(PollPolicy(wait_first=2, wait_factor=2, wait_max=10, wait_jitter=0))
    waits = placement.policy.waits()
    durations = DurationModel()

    def wait(*, woken: bool) -> float:
        return placement.next_wait(
            waits, woken=woken, started=never_started, durations=durations, template=None
        )

    assert wait(woken=False) == 2
    assert wait(woken=True) == 0.0
    assert wait(woken=False) == 4


@pytest.mark.parametrize("policy", [PollPolicy().adaptive(), PollPolicy().for_batches()])
def test_a_learned_placement_waits_on_the_series_until_the_start_is_known(
    policy: PollPolicy,
) -> None:
    placement = placement_for(policy.scaled(1e-3))
    waits = iter([7.0])
    durations = DurationModel()
    unknown = placement.next_wait(
        waits, woken=False, started=lambda: None, durations=durations, template=None
    )
    assert unknown == 7.0
    # Started just now on a cold model: no poll before the documented shortest run.
    known = placement.next_wait(
        waits, woken=False, started=time.time, durations=durations, template=None
    )
    assert 0 < known <= placement.policy.run_time[0]


def test_only_the_batch_placement_asks_a_batch_for_more_jobs_in_flight() -> None:
    durations = DurationModel()
    lo, hi = PollPolicy().run_time
    assert placement_for(PollPolicy()).concurrency(3, 1, durations) == 3
    assert placement_for(PollPolicy().adaptive()).concurrency(3, 1, durations) == 3
    batch = placement_for(PollPolicy().for_batches())
    assert batch.concurrency(3, 1, durations) == batch_concurrency(1, lo, hi)

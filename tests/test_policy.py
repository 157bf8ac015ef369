"""Poll and retry waits follow the documented formula, and Retry-After is a floor."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from typing import Any

import pytest

from emoji_async import PollPolicy, RateLimitError, RetryPolicy, ValidationError
from emoji_async._answers import parse_retry_after
from emoji_async._policy import _retry_waits, retrying


def test_poll_waits_grow_by_the_factor_to_the_cap_within_the_jitter() -> None:
    policy = PollPolicy(wait_first=5, wait_factor=1.5, wait_max=15, wait_jitter=0.1)
    bases = [5, 7.5, 11.25, 15, 15, 15]
    for _ in range(50):
        waits = list(itertools.islice(policy.waits(), len(bases)))
        for wait, base in zip(waits, bases, strict=True):
            assert base * 0.9 <= wait <= base * 1.1


def test_without_jitter_the_poll_waits_are_exact() -> None:
    policy = PollPolicy(wait_first=2, wait_factor=2, wait_max=10, wait_jitter=0)
    assert list(itertools.islice(policy.waits(), 5)) == [2, 4, 8, 10, 10]


def test_the_default_poll_policy_follows_the_providers_facts() -> None:
    policy = PollPolicy()
    assert policy.wait_max == 15  # the interval the provider suggests
    assert policy.deadline > 3 * 3600  # the provider fails a task itself after 3 h


def test_scaling_a_policy_scales_every_duration_but_not_the_factor() -> None:
    policy = PollPolicy().scaled(0.01)
    assert policy.wait_first == pytest.approx(0.05)
    assert policy.wait_max == pytest.approx(0.15)
    assert policy.deadline == pytest.approx(PollPolicy().deadline * 0.01)
    assert policy.wait_factor == PollPolicy().wait_factor
    retry = RetryPolicy().scaled(0.1)
    assert retry.wait_first == pytest.approx(0.1)
    assert retry.deadline == pytest.approx(12.0)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("wait_first", 0, "a finite number > 0"),
        ("wait_first", math.inf, "a finite number > 0"),  # it would sleep forever
        ("wait_first", "5", "a finite number > 0"),
        ("wait_factor", 0.5, "a finite number >= 1"),
        ("wait_factor", Decimal("sNaN"), "a finite number >= 1"),
        ("wait_max", -1, "a finite number > 0"),
        ("wait_max", None, "a finite number > 0"),
        ("wait_jitter", 1.0, "a number in [0, 1)"),
        ("wait_jitter", [0.1], "a number in [0, 1)"),
        ("deadline", 0, "a finite number > 0"),
        ("deadline", True, "a finite number > 0"),
        ("lag", math.nan, "a finite number > 0"),
        ("run_time", (60, math.inf), "a pair (lo, hi) of finite seconds with 0 < lo < hi"),
        ("schedule", "batch", "one of PollSchedule.BACKOFF, PollSchedule.ADAPTIVE"),
    ],
)
def test_a_bad_policy_value_names_its_field_and_range(field: str, value: Any, allowed: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PollPolicy(**{field: value})
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: expected {allowed}")


@pytest.mark.parametrize("value", [0, -1, math.inf, "120", Decimal("120")])
def test_a_bad_reconcile_window_names_its_field_and_range(value: Any) -> None:
    with pytest.raises(ValidationError, match=r"^reconcile_window: expected a finite number > 0"):
        RetryPolicy(reconcile_window=value)
    assert RetryPolicy(reconcile_window=None).reconcile_window is None


def test_a_retry_never_waits_less_than_the_retry_after_asked() -> None:
    policy = RetryPolicy(wait_first=0.1, wait_max=1, wait_jitter=0)
    waits = _retry_waits(policy)
    assert waits.send(None) == 0.0  # the priming step backoff performs
    throttled = RateLimitError(
        "slow down", http_status=429, code="Throttling", request_id=None, retry_after=7
    )
    assert waits.send(throttled) == 7
    assert waits.send(ValueError()) == pytest.approx(0.2)


@pytest.mark.parametrize(("asked", "calls"), [(7.0, 1), (None, 3)])
async def test_a_retry_after_past_the_deadline_ends_the_retries_at_once(
    asked: float | None, calls: int
) -> None:
    policy = RetryPolicy(wait_first=0.01, wait_max=0.01, wait_jitter=0)
    made: list[int] = []

    @retrying(policy, retry_on=lambda exc: True, deadline=1.0)
    async def throttled() -> None:
        made.append(1)
        if asked is not None or len(made) < calls:
            raise RateLimitError(
                "slow down", http_status=429, code="Throttling", request_id=None, retry_after=asked
            )

    if asked is None:
        await throttled()  # without a wait asked for, it is retried within the deadline
    else:
        with pytest.raises(RateLimitError) as caught:
            await throttled()
        assert caught.value.retry_after == asked
    assert len(made) == calls


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("-4") == 0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now=1445412480) == 5
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_an_adaptive_lag_of_zero_is_refused_not_replaced_by_the_default() -> None:
    with pytest.raises(ValidationError, match="lag"):
        PollPolicy().adaptive(lag=0)
    assert PollPolicy().adaptive(lag=0.1).lag == 0.1
    assert PollPolicy().adaptive().lag == PollPolicy().lag

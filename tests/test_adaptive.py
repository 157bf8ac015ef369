"""Learned run times place polls: fewer requests at the same lag, and batches poll once."""

from __future__ import annotations

import asyncio
import random

import pytest

from emoji_async import EmojiJob, PollPolicy, PollSchedule, ValidationError
from emoji_async._adaptive import DurationModel, batch_concurrency, next_poll

from .conftest import LOADED_MACHINE, detect_and_submit, running, sim_config

PRIOR = (60.0, 300.0)


def test_an_empty_model_answers_with_the_documented_range() -> None:
    model = DurationModel()
    assert model.bounds("mengwa_kaixin", PRIOR) == PRIOR
    assert not model.learned


def test_five_runs_replace_the_documented_range_with_the_one_seen() -> None:
    model = DurationModel()
    for seconds in (100, 110, 120, 130, 140):
        model.observe("dagong_kaixin", seconds)
    lo, hi = model.bounds("jingdian_lei", PRIOR)
    assert model.learned
    assert 95 < lo < 100
    assert 140 < hi < 146


def test_a_templates_own_runs_and_the_spread_of_its_siblings_narrow_its_range() -> None:
    model = DurationModel()
    rng = random.Random(3)
    means = {"mengwa_kaixin": 80.0, "jingdian_lei": 250.0, "dagong_ganji": 150.0}
    own: list[float] = []
    for _ in range(6):
        for template, mean in means.items():
            seconds = mean * rng.uniform(0.9, 1.1)
            model.observe(template, seconds)
            if template == "mengwa_kaixin":
                own.append(seconds)
    overall_lo, overall_hi = model.bounds(None, PRIOR)
    assert overall_lo < 80 * 0.9
    assert overall_hi > 250
    # Every run seen of the template lies inside its range, which is far
    # narrower than the overall one, and than one run alone would leave.
    lo, hi = model.bounds("mengwa_kaixin", PRIOR)
    assert lo <= min(own)
    assert hi >= max(own)
    assert 1.1 / 0.9 < hi / lo < (1.1 / 0.9) ** 2 < overall_hi / overall_lo


def test_one_run_of_a_template_bounds_the_next_by_the_spread_either_way() -> None:
    model = DurationModel()
    pairs = {"a": (90.0, 100.0), "b": (180.0, 200.0), "c": (270.0, 330.0), "d": (45.0, 50.0)}
    for template, runs in pairs.items():
        for seconds in runs:
            model.observe(template, seconds)
    model.observe("e", 150.0)
    reach = 330.0 / 270.0 * 1.03  # the widest pair of one template, and the slack
    lo, hi = model.bounds("e", PRIOR)
    assert lo == pytest.approx(150.0 / reach)
    assert hi == pytest.approx(150.0 * reach)


def test_nonsense_run_times_are_not_learned() -> None:
    model = DurationModel()
    for seconds in (0.0, -5.0, float("inf")):
        model.observe("mengwa_kaixin", seconds)
    assert model.observed == 0


def test_adaptive_polls_wait_for_the_earliest_end_then_stay_within_the_lag() -> None:
    def plan(elapsed: float) -> float:
        return next_poll(elapsed, 60, 300, batch=False, learned=True, lag=0.05, cap=15)

    assert plan(0) == pytest.approx(63)  # an end from 60 to 63 s is seen within 5 %
    assert plan(59) == pytest.approx(4)
    assert plan(100) == pytest.approx(5)  # 5 % of the 100 s it has run
    assert plan(1000) == 15  # past every plausible end: the cap
    # Before any run is learned, the documented range is only a prior: polled at its start.
    assert next_poll(0, 60, 300, batch=False, learned=False, lag=0.05, cap=15) == 60


def test_a_learned_batch_polls_once_at_the_latest_end_and_a_cold_one_every_quarter() -> None:
    def plan(elapsed: float, learned: bool) -> float:
        return next_poll(elapsed, 60, 300, batch=True, learned=learned, lag=0.05, cap=60)

    assert plan(0, True) == 300
    assert plan(120, True) == 180
    assert plan(300, True) == 60
    assert plan(0, False) == 60  # the documented range is a prior: polled at its start
    assert plan(100, False) == pytest.approx(25)


def test_a_batch_keeps_enough_tasks_queued_to_cover_its_lag() -> None:
    # Seen up to 240 s late: four 60 s tasks queued, one running, one job preparing.
    assert batch_concurrency(1, 60, 300) == 6
    assert batch_concurrency(1, 100, 110) == 3
    assert batch_concurrency(2, 60, 300) == 7


def test_policies_name_their_schedule_and_scale_their_run_times() -> None:
    policy = PollPolicy().adaptive()
    assert policy.schedule is PollSchedule.ADAPTIVE
    assert PollPolicy().for_batches().schedule is PollSchedule.BATCH
    assert PollPolicy().scaled(0.01).run_time == pytest.approx((0.6, 3.0))
    with pytest.raises(ValidationError, match="run_time"):
        PollPolicy(run_time=(300.0, 60.0))


async def test_an_adaptive_wait_sees_each_result_within_five_percent_with_few_polls() -> None:
    durations = [60.0, 62.0, 65.0, 67.0, 70.0, 72.0, 61.0, 71.0]
    async with running(poll=PollPolicy().adaptive()) as (sim, client):
        lags: list[float] = []
        polls: list[int] = []
        for n, seconds in enumerate(durations):
            task = await detect_and_submit(
                client, f"https://example.com/{n}.png?sim_duration={seconds:g}"
            )
            await task.wait()
            held = asyncio.get_running_loop().time()
            truth = sim.task(task.task_id)
            assert truth is not None
            assert truth.ended_at is not None
            assert truth.scheduled_at is not None
            # The simulator's instants are time.monotonic(), as is the loop's clock here.
            lags.append((held - truth.ended_at) / (truth.ended_at - truth.scheduled_at))
            polls.append(
                sum(1 for r in sim.requests if r.endpoint == "query" and task.task_id in r.path)
            )
    learned = slice(5, None)  # once five runs are known, the range is theirs
    assert max(lags[learned]) <= 0.05 + 0.03  # 5 % by design; scheduling noise on top
    assert max(polls[learned]) <= 6
    assert sum(polls) < len(durations) * 10


async def test_a_warm_batch_polls_each_task_about_once() -> None:
    jobs = [
        EmojiJob(f"https://example.com/{n}.png?sim_duration={60 + n % 4 * 4}", "mengwa_kaixin")
        for n in range(11)
    ]
    async with running(sim_config(), limits=LOADED_MACHINE) as (sim, client):
        outcomes = await client.generate_many(jobs)
        assert sim.stats.throttled == 0
        queries = sim.stats.requests_by_endpoint.get("query", 0)
    assert all(o.ok for o in outcomes)
    # The first five are polled from the earliest plausible end on; every later one
    # once, when it is surely done (or twice, if it outran every run seen so far).
    assert queries <= 2 * len(jobs)

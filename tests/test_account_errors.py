"""Answers the provider means for the account, what a detection bills, boxes, budgets, bursts.

An answer that refuses the account (a wrong key, no access, an overdue bill)
is never retried and stops a batch at once; a detection is sent again only
when no answer came back; the boxes need not nest; a budget reserves 5 s of
video per template until it has seen what the template bills; a job
throttled past its retry deadline goes back in line instead of failing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer

import emoji_async as ea
from emoji_async import (
    AuthenticationError,
    Budget,
    EmojiClient,
    EmojiJob,
    PermissionDeniedError,
    RateLimitError,
    ResponseLostError,
    RetryPolicy,
    SubmissionUncertainError,
    UnexpectedResponseError,
    events,
)
from emoji_async._api_errors import api_error
from emoji_async._errors import proves_nothing_created
from emoji_async._journal import JobState, Journal
from emoji_async._validation import check_boxes
from emoji_async.testing import Fault, Simulator, fixed_duration

from .conftest import KEY, batch, client_for, running, serve_in_thread, sim_config

#: A retry policy whose deadline is long enough for a dozen tries (0.3 s here).
QUICK = RetryPolicy(wait_first=1, wait_max=2, deadline=30)

#: The 429s and the 400 that refuse the account, not the moment (docs/wire.md, "Errors").
BILLING = [
    (429, "PrepaidBillOverdue"),
    (429, "PostpaidBillOverdue"),
    (429, "CommodityNotPurchased"),
    (429, "Throttling.AllocationQuota"),
    (429, "AllocationQuota.FreeTierOnly"),
    (400, "Arrearage"),
]


def jobs_for(count: int, template: str = "mengwa_kaixin") -> list[EmojiJob]:
    return [
        EmojiJob(f"https://example.com/p/{n}.png", template, key=f"job-{n:03d}")
        for n in range(count)
    ]


def sent(sim: Simulator, endpoint: str) -> int:
    return sum(1 for r in sim.requests if r.endpoint == endpoint)


# --- 1. classified by the code first -------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), BILLING)
async def test_a_refusal_of_the_accounts_bill_is_sent_once_and_never_taken_for_throttling(
    status: int, code: str
) -> None:
    async with running(sim_config(), retry=QUICK) as (sim, client):
        sim.faults.add(Fault("detect", "status", status=status, code=code, times=1000))
        with pytest.raises(ea.EmojiError) as caught:
            await client.detect("https://example.com/p/ada.png")
        assert sent(sim, "detect") == 1
    assert isinstance(caught.value, ea.BillingError)
    assert isinstance(caught.value, ea.AccountError)
    assert not isinstance(caught.value, RateLimitError | ea.InvalidRequestError)
    assert (caught.value.http_status, caught.value.code) == (status, code)


async def test_a_submit_refused_for_the_accounts_bill_is_sent_once_and_certain() -> None:
    url = "https://example.com/p/ada.png"
    async with running(sim_config(), retry=QUICK) as (sim, client):
        face = await client.detect(url)
        sim.faults.add(Fault("submit", "status", status=429, code="PrepaidBillOverdue", times=99))
        with pytest.raises(ea.EmojiError) as caught:
            await client.submit(
                url, "mengwa_kaixin", face_bbox=face.face_bbox, ext_bbox=face.ext_bbox
            )
        assert sent(sim, "submit") == 1
        assert sim.stats.tasks_created == 0
    # Certain to have created nothing: no uncertainty to settle.
    assert not isinstance(caught.value, SubmissionUncertainError)
    assert isinstance(caught.value, ea.BillingError)


@pytest.mark.parametrize(
    ("status", "code", "also"),
    [
        (401, "InvalidApiKey", AuthenticationError),
        (401, None, AuthenticationError),
        (403, "AccessDenied", PermissionDeniedError),
        (403, "Model.AccessDenied", PermissionDeniedError),
        (403, "Workspace.AccessDenied", PermissionDeniedError),
        (403, "AccessDenied.Unpurchased", PermissionDeniedError),
        # A quota code on a 403 is still what `except PermissionDeniedError` caught.
        (403, "AllocationQuota.FreeTierOnly", PermissionDeniedError),
    ],
)
def test_a_refused_key_or_access_is_an_account_error_and_keeps_its_old_class(
    status: int, code: str | None, also: type[Exception]
) -> None:
    error = api_error(status, code, "refused", request_id="r1")
    assert isinstance(error, also)
    assert isinstance(error, ea.AccountError)
    assert proves_nothing_created(error)


#: The 404s that name the account's set-up (its model, its workspace), not one task.
SETUP_NOT_FOUND = ["ModelNotFound", "Model.NotExist", "WorkSpaceNotFound"]


@pytest.mark.parametrize("code", SETUP_NOT_FOUND)
def test_a_404_for_the_accounts_model_or_workspace_is_an_account_error_and_still_not_found(
    code: str,
) -> None:
    error = api_error(404, code, "not found", request_id="r1")
    assert isinstance(error, ea.ModelOrWorkspaceNotFoundError)
    assert isinstance(error, ea.AccountError)
    # ``except NotFoundError`` still catches it.
    assert isinstance(error, ea.NotFoundError)
    assert proves_nothing_created(error)


@pytest.mark.parametrize("code", ["NotFound", None])
def test_a_404_for_something_the_service_does_not_know_stays_a_plain_not_found_error(
    code: str | None,
) -> None:
    # A task id (or a path) the service does not know says nothing of the account.
    error = api_error(404, code, "no such task", request_id="r1")
    assert type(error) is ea.NotFoundError
    assert not isinstance(error, ea.AccountError)


@pytest.mark.parametrize("code", ["Throttling", "Throttling.RateQuota", "Throttling.BurstRate"])
def test_throttling_stays_a_rate_limit_error(code: str) -> None:
    error = api_error(429, code, "slow down", request_id="r1")
    assert type(error) is RateLimitError


def test_a_storage_hosts_403_is_the_files_refusal_not_the_accounts() -> None:
    # OSS answers 403 AccessDenied to an expired signature: nothing to do with the account.
    error = api_error(403, "AccessDenied", "Policy expired.", request_id=None, storage=True)
    assert isinstance(error, ea.InvalidRequestError)
    assert not isinstance(error, ea.AccountError)


def test_a_status_the_provider_never_answers_is_no_account_error_whatever_its_code() -> None:
    error = api_error(408, "Arrearage", "timeout", request_id=None)
    assert isinstance(error, UnexpectedResponseError)


def test_the_error_tree_on_the_errors_page_is_the_one_the_module_draws() -> None:
    import emoji_async._errors as errors_module

    drawn = (errors_module.__doc__ or "").split("::\n\n", 1)[1].split("\n\n", 1)[0]
    tree = "\n".join(line.removeprefix("    ") for line in drawn.splitlines())
    page = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text("utf-8")
    assert f"```text\n{tree}\n```" in page
    # Every class of the tree is public, and every public error is in the tree.
    named = {line.split("── ")[1].split()[0] for line in tree.splitlines() if "── " in line}
    public = {n for n in ea.__all__ if isinstance(getattr(ea, n), type) and n.endswith("Error")}
    assert named | {"EmojiError"} == public


# --- 2. a batch stops at the first refusal of the account ---------------------------------


async def test_a_batch_with_a_wrong_key_sends_one_request_not_one_per_job() -> None:
    async with running(sim_config(), api_key="sk-wrong", retry=QUICK) as (
        sim,
        client,
    ):
        outcomes = await client.generate_many(jobs_for(40), concurrency=3)
        asked = len(sim.requests)
    # One request answered 401; at most the jobs already in flight had theirs on the way.
    assert 1 <= asked <= 3
    assert not any(o.ok for o in outcomes)
    failed = [o for o in outcomes if not getattr(o, "not_started", False)]
    assert 1 <= len(failed) <= 3
    assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
    assert all(o.task_id is None for o in outcomes)
    not_started = [o for o in outcomes if o.not_started]
    assert len(not_started) == 40 - len(failed)
    assert not any(o.skipped for o in outcomes)  # not the budget's doing


async def test_a_billing_refusal_mid_batch_lets_the_tasks_in_flight_finish_and_resumes_later(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "run.db"
    jobs = jobs_for(8)
    config = sim_config(durations=fixed_duration(30))
    with serve_in_thread(config) as server:
        sim = server.simulator
        submitted: list[str] = []

        def on_event(event: events.JobEvent) -> None:
            if isinstance(event, events.Submitted):
                submitted.append(event.key)
                if len(submitted) == 2:
                    sim.faults.add(
                        Fault("detect", "status", status=429, code="PrepaidBillOverdue", times=999)
                    )

        async with client_for(server, retry=QUICK) as client:
            first = await client.generate_many(
                jobs, concurrency=3, journal=journal, on_event=on_event
            )
        refused = [r for r in sim.requests if r.endpoint == "detect" and r.status == 429]
        created_first = sim.stats.tasks_created
        async with await Journal.open(journal) as record:
            left = {o.key: record.get(o.key) for o in first if getattr(o, "not_started", 0)}
        sim.faults.clear()
        async with client_for(server) as client:
            second = await client.generate_many(jobs, concurrency=3, journal=journal)
        tasks = sim.tasks()
    # The overdue bill was asked once (a detection of another job in flight may have
    # been on its way already): none retried, nothing sent after the refusal came.
    assert 1 <= len(refused) <= 3
    # Jobs whose task existed were followed to the end; the refused ones failed with it.
    done = [o for o in first if o.ok]
    assert {o.key for o in done} >= set(submitted[:2])
    assert len(done) == created_first
    billing = [o for o in first if isinstance(o.error, ea.BillingError) and not o.not_started]
    assert len(billing) == len(refused)
    assert len(left) == len(jobs) - len(done) - len(billing)
    assert left  # some jobs never started
    # Not started: nothing on record, or only its detection: resumable.
    assert all(e is None or e.state is JobState.DETECTED for e in left.values())
    # The rerun finished every job, with one paid task each.
    assert all(o.ok for o in second)
    assert sim.stats.tasks_created == len(jobs)
    assert len({t.task_id for t in tasks}) == len(jobs)
    assert sorted(o.task_id or "" for o in second) == sorted(t.task_id for t in tasks)


async def test_a_refusal_met_at_submit_holds_back_the_submits_waiting_for_their_turn() -> None:
    config = sim_config()
    async with running(config, retry=QUICK) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=403, code="AccessDenied", times=99))
        outcomes = await client.generate_many(jobs_for(6), concurrency=6)
        submits = sent(sim, "submit")
    assert submits == 1
    assert sim.stats.tasks_created == 0
    assert sum(isinstance(o.error, PermissionDeniedError) for o in outcomes) == 6
    assert sum(o.not_started for o in outcomes) == 5


async def test_a_batch_whose_submits_answer_workspace_not_found_stops_after_the_first() -> None:
    async with running(sim_config(), retry=QUICK) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=404, code="WorkSpaceNotFound", times=99))
        outcomes = await client.generate_many(jobs_for(6), concurrency=6)
        submits = sent(sim, "submit")
    assert submits == 1
    assert sim.stats.tasks_created == 0
    assert all(isinstance(o.error, ea.ModelOrWorkspaceNotFoundError) for o in outcomes)
    assert {o.error.code for o in outcomes if isinstance(o.error, ea.APIError)} == {
        "WorkSpaceNotFound"
    }
    assert sum(o.not_started for o in outcomes) == 5


async def test_an_arrearage_at_submit_leaves_the_job_to_resume_once_the_bill_is_paid(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "run.db"
    async with running(sim_config(), retry=QUICK) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=400, code="Arrearage", times=99))
        [first] = await client.generate_many(jobs_for(1), journal=journal)
        sim.faults.clear()
        [second] = await client.generate_many(jobs_for(1), journal=journal)
        detects = sent(sim, "detect")
    # Not a refusal of the job's content: the paid bill lets the same job through.
    assert second.ok
    assert sim.stats.tasks_created == 1
    assert detects == 1  # the boxes came from the journal
    assert isinstance(first.error, ea.BillingError)


def test_the_command_line_says_the_account_was_refused_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-wrong-0123456789abcdef"
    monkeypatch.setenv("DASHSCOPE_API_KEY", wrong)
    rows = ["image,driven_id,key"] + [
        f"https://example.com/p/{n}.png,mengwa_kaixin,job{n}" for n in range(12)
    ]
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with serve_in_thread(sim_config()) as server:
        status = batch(server, tmp_path, jobs, "--concurrency", "2", "--progress", "never")
        asked = len(server.simulator.requests)
    captured = capsys.readouterr()
    assert asked <= 2
    assert status == 3
    assert captured.err.count("the account was refused") == 1  # said once, with its reason
    assert "InvalidApiKey" in captured.err
    assert "not started" in captured.out
    assert wrong not in captured.err + captured.out


def test_the_command_line_says_the_workspace_was_not_found_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    rows = ["image,driven_id,key"] + [
        f"https://example.com/p/{n}.png,mengwa_kaixin,job{n}" for n in range(8)
    ]
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with serve_in_thread(sim_config()) as server:
        server.simulator.faults.add(
            Fault("submit", "status", status=404, code="WorkSpaceNotFound", times=99)
        )
        status = batch(server, tmp_path, jobs, "--concurrency", "2", "--progress", "never")
        submits = sent(server.simulator, "submit")
    captured = capsys.readouterr()
    assert submits == 1
    assert status == 3
    assert captured.err.count("the account was refused") == 1
    assert "WorkSpaceNotFound" in captured.err
    assert "not started" in captured.out


# --- 3. a detection is billed once its answer arrives --------------------------------------


async def test_a_detection_whose_answers_are_lost_is_sent_twice_and_both_counted() -> None:
    async with running(sim_config(), retry=QUICK) as (sim, client):
        sim.faults.add(Fault("detect", "reset", after_processing=True, times=1000))
        outcomes = await client.generate_many(jobs_for(1))
        billed = sim.stats.detections_billed
    assert billed == 2  # processed (billed) twice, answered never
    [outcome] = outcomes
    assert isinstance(outcome.error, ResponseLostError)
    assert outcomes.spent.detections == billed


async def test_a_detection_resent_after_a_lost_answer_counts_both_bills() -> None:
    seen: list[events.JobEvent] = []
    async with running(sim_config(), retry=QUICK) as (sim, client):
        sim.faults.add(Fault("detect", "reset", after_processing=True))
        outcomes = await client.generate_many(jobs_for(1), on_event=seen.append)
        billed = sim.stats.detections_billed
    assert billed == 2
    assert outcomes[0].ok
    assert outcomes.spent.detections == billed
    bills = [e for e in seen if isinstance(e, events.Billed)]
    assert sum(e.detections for e in bills) == billed


async def test_a_detection_stopped_by_its_deadline_while_out_is_counted_as_billed() -> None:
    async with running(sim_config(), retry=QUICK) as (sim, client):
        sim.faults.add(Fault("detect", "drip", times=1000))  # processed, then a byte a 0.5 s
        outcomes = await client.generate_many(jobs_for(1))
        billed = sim.stats.detections_billed
    assert billed == 1
    assert isinstance(outcomes[0].error, ResponseLostError)
    assert outcomes.spent.detections == billed


async def test_an_unreadable_detection_answer_is_billed_and_never_sent_for_again() -> None:
    async with running(sim_config(), retry=QUICK) as (sim, client):
        sim.faults.add(Fault("detect", "truncate", times=1000))
        outcomes = await client.generate_many(jobs_for(1))
        billed = sim.stats.detections_billed
        asked = sent(sim, "detect")
    assert asked == 1
    assert billed == 1
    assert isinstance(outcomes[0].error, UnexpectedResponseError)
    assert outcomes.spent.detections == 1


async def test_a_detection_answered_5xx_or_429_is_sent_again_until_it_passes() -> None:
    roomy = RetryPolicy(wait_first=1, wait_max=2, deadline=300)  # 3 s here: never the limit
    async with running(sim_config(), retry=roomy) as (sim, client):
        sim.faults.add(Fault("detect", "status", status=500, times=2))
        sim.faults.add(Fault("detect", "status", status=429, code="Throttling", times=2))
        face = await client.detect("https://example.com/p/ada.png")
        asked = sent(sim, "detect")
    assert face.image_count == 1
    assert asked == 5


# --- 4. boxes that do not nest -------------------------------------------------------------

#: An extended box beside the face box, not around it.
FACE = [212, 194, 460, 441]
EXT = [300, 30, 609, 575]


@asynccontextmanager
async def odd_boxes() -> AsyncIterator[tuple[BaseTestServer, list[dict[str, Any]]]]:
    """A service whose detection answers boxes that do not nest; it records each submit."""
    submits: list[dict[str, Any]] = []

    async def detect(request: web.Request) -> web.Response:
        body = {
            "output": {"bbox_face": FACE, "ext_bbox_face": EXT},
            "usage": {"image_count": 1},
            "request_id": "d1",
        }
        return web.json_response(body)

    async def submit(request: web.Request) -> web.Response:
        submits.append(await request.json())
        body = {"output": {"task_status": "PENDING", "task_id": "t-1"}, "request_id": "s1"}
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/api/v1/services/aigc/image2video/face-detect", detect)
    app.router.add_post("/api/v1/services/aigc/image2video/video-synthesis", submit)
    async with TestServer(app, host="127.0.0.1") as server:
        yield server, submits


async def test_a_detection_whose_boxes_do_not_nest_is_passed_on_and_submitted() -> None:
    async with (
        odd_boxes() as (server, submits),
        EmojiClient(
            api_key=KEY,
            base_url=str(server.make_url("/api/v1")),
            limits=None,
            retry=RetryPolicy(wait_first=0.01, deadline=0.2),
        ) as client,
    ):
        face = await client.detect("https://example.com/p/ada.png")
        task = await client.submit(
            "https://example.com/p/ada.png",
            "mengwa_kaixin",
            face_bbox=face.face_bbox,
            ext_bbox=face.ext_bbox,
        )
    assert (face.face_bbox.as_list(), face.ext_bbox.as_list()) == (FACE, EXT)
    assert task.task_id == "t-1"
    [body] = submits
    assert (body["input"]["face_bbox"], body["input"]["ext_bbox"]) == (FACE, EXT)


def test_boxes_that_do_not_nest_pass_the_checks_the_others_still_hold() -> None:
    face, ext = check_boxes(FACE, EXT)
    assert (face.as_list(), ext.as_list()) == (FACE, EXT)
    with pytest.raises(ea.ValidationError, match="ext_bbox"):
        check_boxes(FACE, [609, 30, 300, 575])  # x1 > x2
    with pytest.raises(ea.ValidationError, match="face_bbox"):
        check_boxes([-1, 194, 460, 441], EXT)


# --- 5. a budget reserves 5 s until it has seen what a template bills ----------------------


async def test_a_cap_is_never_exceeded_when_every_template_bills_five_seconds() -> None:
    # The template table says 2 s for dagong_weixiao; the service bills 5 s for each.
    config = sim_config(durations=fixed_duration(20), video_seconds=5)
    cap = 12
    async with running(config) as (sim, client):
        outcomes = await client.generate_many(
            jobs_for(8, "dagong_weixiao"), concurrency=8, budget=Budget(video_seconds=cap)
        )
        billed = sim.stats.video_seconds_billed
    assert billed <= cap
    assert outcomes.spent.video_seconds == billed
    assert sum(o.ok for o in outcomes) == cap // 5
    assert all(o.ok or o.skipped for o in outcomes)


async def test_once_a_template_was_billed_it_reserves_what_it_billed() -> None:
    # Here a video bills 2 s: the first job reserves 5, and every later one 2.
    config = sim_config(durations=fixed_duration(20), video_seconds=2)
    async with running(config) as (sim, client):
        outcomes = await client.generate_many(
            jobs_for(5, "mengwa_kaixin"), concurrency=1, budget=Budget(video_seconds=6)
        )
        billed = sim.stats.video_seconds_billed
    assert billed == 6
    assert [o.ok for o in outcomes] == [True, True, True, False, False]


# --- 6. a job throttled past its deadline goes back in line ---------------------------------


async def test_a_job_throttled_past_its_retry_deadline_is_requeued_and_succeeds() -> None:
    seen: list[events.JobEvent] = []
    async with running(sim_config(), retry=QUICK) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=429, code="Throttling", times=100_000))

        def on_event(event: events.JobEvent) -> None:
            seen.append(event)
            if isinstance(event, events.Requeued):
                sim.faults.clear()  # the burst ends while the job waits in line

        outcomes = await client.generate_many(jobs_for(2), on_event=on_event)
        created = sim.stats.tasks_created
        detects = sent(sim, "detect")
    assert [o.error for o in outcomes] == [None, None]
    assert all(o.ok for o in outcomes)
    assert created == 2
    assert detects == 2  # the boxes were kept: no detection bought twice
    assert any(isinstance(e, events.Requeued) for e in seen)


async def test_a_throttle_that_never_ends_fails_the_job_after_a_bounded_number_of_rounds() -> None:
    seen: list[events.JobEvent] = []
    async with running(sim_config(), retry=QUICK) as (sim, client):
        sim.faults.add(Fault("submit", "status", status=429, code="Throttling", times=100_000))
        [outcome] = await asyncio.wait_for(
            client.generate_many(jobs_for(1), on_event=seen.append), timeout=60
        )
        created = sim.stats.tasks_created
    from emoji_async._batch import REQUEUES  # here: the rest of the file runs on older code

    assert isinstance(outcome.error, RateLimitError)
    assert created == 0
    rounds = [e for e in seen if isinstance(e, events.Requeued)]
    assert [e.round for e in rounds] == list(range(1, REQUEUES + 1))
    # One Started, one Failed: the rounds are one job, not several.
    assert sum(isinstance(e, events.Started) for e in seen) == 1
    assert sum(isinstance(e, events.Failed) for e in seen) == 1

"""The client against the simulator over real loopback HTTP: the protocol core end to end."""

from __future__ import annotations

import asyncio
import itertools
import logging
import statistics
from pathlib import Path

import aiohttp
import pytest

from emoji_async import (
    AuthenticationError,
    ClientStateError,
    EmojiClient,
    FaceRejectedError,
    InvalidRequestError,
    PollPolicy,
    RateLimits,
    TaskCanceledError,
    TaskFailedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    TaskStatus,
    ValidationError,
    VideoResult,
)
from emoji_async._values import Endpoint
from emoji_async.testing import Fault, Simulator, SimulatorServer

from .conftest import KEY, LOADED_MACHINE, SCALE, client_for, detect_and_submit, running, sim_config

PORTRAIT = "https://example.com/portraits/ada.png"


def queries(sim: Simulator) -> int:
    return sum(1 for r in sim.requests if r.endpoint == "query")


async def test_detect_returns_the_boxes_the_service_found(
    client: EmojiClient, sim: Simulator
) -> None:
    face = await client.detect(PORTRAIT)
    expected_face, expected_ext = sim.boxes_for(PORTRAIT)
    assert face.face_bbox.as_list() == expected_face
    assert face.ext_bbox.as_list() == expected_ext
    assert face.request_id
    assert face.image_count == 1


async def test_a_rejected_portrait_raises_face_rejected_and_is_still_billed(
    client: EmojiClient, sim: Simulator
) -> None:
    with pytest.raises(FaceRejectedError) as caught:
        await client.detect(PORTRAIT + "?sim_reject=InvalidFile.NoHuman")
    assert caught.value.code == "InvalidFile.NoHuman"
    assert caught.value.request_id
    assert sim.stats.detections_billed == 1


async def test_submit_returns_a_pending_handle_without_polling(
    client: EmojiClient, sim: Simulator
) -> None:
    task = await detect_and_submit(client, PORTRAIT, "mengwa_kaixin")
    assert task.last_snapshot is not None
    assert task.last_snapshot.status is TaskStatus.PENDING
    assert sim.task(task.task_id) is not None
    assert queries(sim) == 0


async def test_refresh_is_one_request_and_returns_a_snapshot(
    client: EmojiClient, sim: Simulator
) -> None:
    video = await client.generate(PORTRAIT, "dagong_weixiao")
    before = queries(sim)
    snap = await client.task(video.task_id).refresh()
    assert queries(sim) == before + 1
    assert snap.status is TaskStatus.SUCCEEDED
    assert snap.video_url == video.video_url
    assert snap.end_time is not None
    assert snap.end_time.tzinfo is not None


async def test_watch_yields_each_state_once_and_ends_at_the_terminal_one(
    client: EmojiClient,
) -> None:
    task = await detect_and_submit(client, PORTRAIT, "mengwa_kaixin")
    seen = [snap.status async for snap in task.watch()]
    assert seen == [TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUCCEEDED]


async def test_a_second_task_waits_pending_behind_the_running_one(
    client: EmojiClient,
) -> None:
    first = await detect_and_submit(client, PORTRAIT, "mengwa_kaixin")
    second = await detect_and_submit(client, PORTRAIT, "mengwa_gandong")
    assert (await first.refresh()).status is TaskStatus.RUNNING
    assert (await second.refresh()).status is TaskStatus.PENDING
    videos = await asyncio.gather(first.wait(), second.wait())
    assert [v.task_id for v in videos] == [first.task_id, second.task_id]


async def test_generate_at_provider_limits_returns_a_video_that_downloads(
    tmp_path: Path,
) -> None:
    # A real MP4, decoded below.
    async with running(sim_config(render_videos=True), limits=LOADED_MACHINE) as (sim, client):
        video = await client.generate(PORTRAIT, "dagong_weixiao")
        assert isinstance(video, VideoResult)
        assert video.video_duration == 2  # dagong_weixiao's length in the template table
        assert video.url_expires_at is not None
        path = await client.download(video, tmp_path)
    assert path == tmp_path / f"{video.task_id}.mp4"
    assert path.stat().st_size > 0
    assert sim.stats.throttled == 0
    # No temporary .part file is left beside the video.
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # noqa: ASYNC240
    av = pytest.importorskip("av")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (512, 512)
        assert stream.average_rate == 15


async def test_generate_given_a_detection_uses_its_boxes_and_bills_no_second_one() -> None:
    async with running() as (sim, client):
        face = await client.detect(PORTRAIT)  # to refuse a bad portrait before paying
        video = await client.generate(PORTRAIT, "mengwa_kaixin", face=face)
    assert sim.stats.detections_billed == 1
    (task,) = sim.tasks()
    assert task.task_id == video.task_id
    assert (list(task.face_bbox), list(task.ext_bbox)) == (
        face.face_bbox.as_list(),
        face.ext_bbox.as_list(),
    )


async def test_a_client_given_the_simulators_time_scale_paces_on_its_clock(
    server: SimulatorServer,
) -> None:
    sim = server.simulator
    async with EmojiClient(api_key=KEY, base_url=server.base_url, time_scale=SCALE) as client:
        assert client.limits == RateLimits()  # kept as given, in the service's seconds
        await asyncio.gather(*(client.detect(f"{PORTRAIT}?n={n}") for n in range(8)))
    starts = sorted(r.at for r in sim.requests if r.endpoint == "detect")
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    interval = RateLimits().interval(Endpoint.DETECT)  # on the service's clock: about 1.1 s
    # Still paced, on the compressed clock. The median, as arrivals are what is measured:
    # on a busy machine one request's connection can open late and bring two arrivals
    # close (1 ms apart, once in CI) although their starts were a whole turn apart.
    assert statistics.median(gaps) >= 0.9 * interval * SCALE
    assert max(gaps) < 0.1 * interval  # not on the service's own clock
    assert sim.stats.throttled == 0


async def test_on_a_compressed_clock_an_answer_slower_than_the_scaled_deadline_still_counts(
    server: SimulatorServer,
) -> None:
    # 120 s of retry deadline at 0.001 is 0.12 s; the network (here a detect answered
    # after 0.5 real seconds) does not run faster, so the call is not cut off by it.
    server.simulator.faults.add(Fault("detect", "delay", delay=0.5))
    async with EmojiClient(api_key=KEY, base_url=server.base_url, time_scale=0.001) as client:
        face = await client.detect(PORTRAIT)
    assert face.face_bbox is not None
    assert [r.status for r in server.simulator.requests if r.endpoint == "detect"] == [200]


@pytest.mark.parametrize("scale", [0, -0.01, float("nan"), float("inf"), "0.01", True])
def test_a_bad_time_scale_names_its_field(scale: object) -> None:
    with pytest.raises(ValidationError) as caught:
        EmojiClient(api_key=KEY, time_scale=scale)  # type: ignore[arg-type]
    assert caught.value.field == "time_scale"


async def test_a_failed_task_raises_task_failed_with_the_providers_code(
    client: EmojiClient,
) -> None:
    url = PORTRAIT + "?sim_fail=InternalError.Algo"
    task = await detect_and_submit(client, url, "mengwa_kaixin")
    with pytest.raises(TaskFailedError) as caught:
        await task.wait()
    assert caught.value.code == "InternalError.Algo"
    assert caught.value.message
    assert caught.value.task_id == task.task_id
    assert caught.value.request_id


async def test_a_canceled_pending_task_raises_task_canceled(client: EmojiClient) -> None:
    running_task = await detect_and_submit(client, PORTRAIT, "mengwa_kaixin")
    queued = await detect_and_submit(client, PORTRAIT, "mengwa_kun_1")
    await queued.cancel()
    await queued.cancel()  # already CANCELED: repeating the cancel is harmless
    with pytest.raises(TaskCanceledError) as caught:
        await queued.wait()
    assert caught.value.task_id == queued.task_id
    with pytest.raises(TaskNotCancelableError) as refused:
        await running_task.cancel()
    assert refused.value.code == "UnsupportedOperation"
    assert refused.value.task_id == running_task.task_id


async def test_an_id_the_service_does_not_know_raises_task_not_found(
    client: EmojiClient,
) -> None:
    with pytest.raises(TaskNotFoundError) as caught:
        await client.task("00000000-no-such-task").wait()
    assert caught.value.task_id == "00000000-no-such-task"
    assert caught.value.request_id


async def test_a_handle_rebuilt_from_a_stored_id_finds_the_same_video(
    client: EmojiClient,
) -> None:
    task = await detect_and_submit(client, PORTRAIT, "jingdian_lei")
    stored = task.task_id
    video = await client.task(stored).wait()
    assert video.task_id == stored
    assert video.video_duration == 4


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.detect("ftp://example.com/a.png"), "image_url"),
        (
            lambda c: c.submit(PORTRAIT, "no_such", face_bbox=[1, 1, 5, 5], ext_bbox=[0, 0, 9, 9]),
            "driven_id",
        ),
        (
            lambda c: c.submit(
                PORTRAIT, "mengwa_kaixin", face_bbox=[5, 1, 1, 5], ext_bbox=[0, 0, 9, 9]
            ),
            "face_bbox",
        ),
        (
            lambda c: c.submit(
                PORTRAIT, "mengwa_kaixin", face_bbox=[1, 1, 5, 5], ext_bbox=[9, 2, 2, 9]
            ),
            "ext_bbox",
        ),
        (lambda c: c.generate("not a url", "mengwa_kaixin"), "image_url"),
        (lambda c: c.generate(PORTRAIT, "Mengwa_Kaixin"), "driven_id"),
        (
            lambda c: c.generate(PORTRAIT, "mengwa_kaixin", face=([1, 1, 5, 5], [0, 0, 9, 9])),
            "face",
        ),
    ],
)
async def test_bad_input_names_the_field_and_sends_nothing(
    client: EmojiClient, sim: Simulator, call: object, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await call(client)  # type: ignore[operator]
    assert caught.value.field == field
    assert "expected" in str(caught.value)
    assert sim.requests == []


async def test_a_long_path_in_an_error_keeps_its_file_name(
    client: EmojiClient, sim: Simulator, tmp_path: Path
) -> None:
    missing = tmp_path.joinpath(*["deeper"] * 20, "ada-lovelace-portrait.png")
    with pytest.raises(ValidationError) as caught:
        await client.detect(missing)
    message = str(caught.value)
    assert "ada-lovelace-portrait.png" in message  # the middle is cut, not the end
    assert str(tmp_path)[:10] in message
    assert len(message) < len(str(missing)) + len(caught.value.allowed) + 40
    assert sim.requests == []


async def test_an_opted_in_template_reaches_the_service(server: SimulatorServer) -> None:
    async with client_for(server, extra_templates=["mengwa_new"]) as client:
        face = await client.detect(PORTRAIT)
        with pytest.raises(InvalidRequestError, match="Driven not exist"):
            await client.submit(
                PORTRAIT, "mengwa_new", face_bbox=face.face_bbox, ext_bbox=face.ext_bbox
            )


async def test_a_wrong_key_fails_at_once_and_never_shows_itself(
    server: SimulatorServer,
) -> None:
    wrong = "sk-wrong-0123456789"
    async with client_for(server, api_key=wrong) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.detect(PORTRAIT)
    assert caught.value.http_status == 401
    assert caught.value.code == "InvalidApiKey"
    assert wrong not in str(caught.value)
    assert len(server.simulator.requests) == 1


async def test_the_poll_count_stays_within_what_the_policy_allows() -> None:
    duration = 120.0  # provider seconds; 1.2 s here
    policy = PollPolicy().scaled(SCALE)
    bases = [min(policy.wait_max, policy.wait_first * policy.wait_factor**n) for n in range(1000)]

    def polls_until(total: float, stretch: float) -> int:
        sums = itertools.accumulate(base * stretch for base in bases)
        return next(i + 1 for i, t in enumerate(sums) if t >= total)

    most = polls_until(duration * SCALE, 1 - policy.wait_jitter)
    fewest = polls_until(duration * SCALE, 1 + policy.wait_jitter) - 1  # latency may save one
    async with running() as (sim, client):
        url = PORTRAIT + f"?sim_duration={duration:g}"
        task = await detect_and_submit(client, url, "mengwa_kaixin")
        await task.wait()
        assert fewest <= queries(sim) <= most


async def test_a_free_form_base_url_prefix_works() -> None:
    async with running(sim_config(api_prefix="/qwen/api/v1")) as (sim, client):
        assert client.base_url is not None
        assert client.base_url.endswith("/qwen/api/v1")
        video = await client.generate(PORTRAIT, "mengwa_kaixin")
    assert video.video_url
    assert all(r.path.startswith("/qwen/api/v1") for r in sim.requests if r.endpoint != "download")


async def test_a_borrowed_session_is_left_open(server: SimulatorServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with client_for(server, session=session) as client:
            await client.detect(PORTRAIT)
        assert not session.closed
        with pytest.raises(ClientStateError):
            await client.detect(PORTRAIT)


async def test_the_task_list_shows_this_accounts_tasks(client: EmojiClient) -> None:
    task = await detect_and_submit(client, PORTRAIT, "mengwa_kaixin")
    page = await client.list_tasks()
    assert [t.task_id for t in page.tasks] == [task.task_id]
    assert page.tasks[0].model_name == "emoji-v1"
    assert page.total == 1


@pytest.mark.parametrize(
    ("dropped", "named"),
    [("status", "(task {task_id})"), ("task_id", "(no task id readable)")],
)
async def test_a_task_list_row_that_cannot_be_read_is_left_out_and_the_rest_returned(
    client: EmojiClient, sim: Simulator, caplog: pytest.LogCaptureFixture, dropped: str, named: str
) -> None:
    first = await detect_and_submit(client, PORTRAIT, "mengwa_kaixin")
    await asyncio.sleep(0.05)  # past the account's submit rate (1/s, scaled)
    second = await detect_and_submit(client, PORTRAIT + "?n=2", "mengwa_kaixin")
    # The newest row, the second task's, comes without one of its required fields.
    sim.faults.add(Fault("list", "drop_field", field=f"data.0.{dropped}", times=10_000))
    before = len(sim.requests)
    with caplog.at_level(logging.WARNING, logger="emoji_async"):
        page = await client.list_tasks()
    assert [t.task_id for t in page.tasks] == [first.task_id]
    assert page.unreadable == 1
    assert page.total == 2
    assert [r.endpoint for r in sim.requests[before:]] == ["list"]  # not asked for again
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"row 0 {named.format(task_id=second.task_id)}" in warning
    assert "left out" in warning


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"status": "RUNNING"}, "status"),
        ({"page": 0}, "page"),
        ({"page_size": 500}, "page_size"),
        ({"model": ""}, "model"),
        ({"start": "2026-12-07T10:00:00+08:00"}, "start"),  # a string: once an AttributeError
    ],
)
async def test_bad_list_arguments_name_the_field_and_send_nothing(
    client: EmojiClient, sim: Simulator, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await client.list_tasks(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert sim.requests == []


async def test_cancelling_a_queued_task_wakes_its_waiter_at_once() -> None:
    async with running(sim_config()) as (_, client):
        first = await detect_and_submit(client, "https://example.com/a.png?sim_duration=600")
        queued = await detect_and_submit(client, "https://example.com/second.png")
        # Behind the client's own running task, the waiter sleeps on the queue, not polling.
        ahead = asyncio.create_task(first.wait())
        waiting = asyncio.create_task(queued.wait())
        await asyncio.sleep(0.05)
        await client.task(queued.task_id).cancel()
        async with asyncio.timeout(1):  # the task ahead runs 6 s more
            with pytest.raises(TaskCanceledError):
                await waiting
        ahead.cancel()
        with pytest.raises(asyncio.CancelledError):
            await ahead

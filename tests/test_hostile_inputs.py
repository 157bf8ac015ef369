"""Odd values from the caller, the file system or the service end as the project's errors.

A download destination the file system refuses fails its job with a
:class:`DownloadError` and no other; a number no call can use is a
:class:`ValidationError` naming its field, raised before anything is sent;
a task id the service could not have made (``..``, 10 kB) never becomes part
of a URL: from the caller it is refused, and in a submit's answer it makes the
answer a lost one, settled through the task list without sending the submit again.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from emoji_async import (
    BBox,
    DownloadError,
    EmojiClient,
    EmojiJob,
    PollPolicy,
    RetryPolicy,
    SubmissionUncertainError,
    ValidationError,
    events,
)
from emoji_async.testing import serve
from tests.conftest import client_for, detect_and_submit, running, sim_config

IMG = "https://example.com/portraits/ada.png"
HUGE = 10**5000  # past Python's int-to-str limit: its repr raises ValueError


# --- download destinations ------------------------------------------------------------------


async def test_a_download_folder_that_is_a_file_is_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    taken = tmp_path / "videos"
    taken.write_bytes(b"not a folder")
    async with serve(sim_config()) as server, client_for(server) as client:
        with pytest.raises(ValidationError) as caught:
            await client.generate_many(
                [EmojiJob(IMG, "mengwa_kaixin", key="ada")], download_to=taken
            )
        assert server.simulator.requests == []
    assert caught.value.field == "download_to"


async def test_a_symlink_loop_where_one_video_goes_fails_that_job_alone(tmp_path: Path) -> None:
    """The loop appears while the batch runs (after the check of existing files)."""
    folder = tmp_path / "videos"

    def on_event(event: events.JobEvent) -> None:
        if isinstance(event, events.Succeeded) and event.key == "looped":
            os.symlink("looped.mp4", folder / "looped.mp4")  # points at itself

    jobs = [
        EmojiJob(IMG, "mengwa_kaixin", key="looped"),
        EmojiJob(IMG + "?b", "mengwa_kaixin", key="fine"),
    ]
    async with running() as (_, client):
        outcomes = await client.generate_many(
            jobs, concurrency=1, download_to=folder, on_event=on_event
        )
    looped, fine = outcomes
    assert isinstance(looped.error, DownloadError)
    assert looped.task_id is not None  # its task is named, to fetch the video again
    assert fine.ok
    assert fine.path is not None
    assert fine.path.stat().st_size > 0


async def test_a_download_into_a_path_under_a_file_is_a_download_error(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"a file")
    async with running() as (_, client):
        video = await (await detect_and_submit(client, IMG)).wait()
        for dest in (tmp_path / "plain" / "v.mp4", f"{tmp_path / 'plain'}/"):
            with pytest.raises(DownloadError):
                await client.download(video, dest)


# --- numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "box",
    [[0, 0, HUGE, HUGE], [HUGE, 0, 1, 1], [0, 0, 2**31, 10], [0, 0, 10, 10.0]],
    ids=["huge-corner", "huge-reversed", "past-32-bits", "a-float"],
)
def test_a_box_of_unusable_numbers_is_a_validation_error_naming_the_field(box: list[Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        BBox.parse(box, field="face_bbox")
    assert caught.value.field == "face_bbox"
    assert str(caught.value).startswith("face_bbox: expected four ints")
    with pytest.raises(ValidationError) as in_a_job:
        EmojiJob(IMG, "mengwa_kaixin", face_bbox=box, ext_bbox=[0, 0, 50, 50])
    assert in_a_job.value.field == "bbox"


async def test_a_submit_with_a_huge_box_is_refused_before_it_is_sent() -> None:
    async with running() as (sim, client):
        with pytest.raises(ValidationError) as caught:
            await client.submit(
                IMG, "mengwa_kaixin", face_bbox=[1, 1, 2, 2], ext_bbox=[0, 0, HUGE, HUGE]
            )
        assert sim.requests == []
    assert caught.value.field == "ext_bbox"


BAD_TIMEOUTS = {
    "a-string": "5",
    "nan": math.nan,
    "inf": math.inf,
    "-inf": -math.inf,
    "zero": 0,
    "negative": -1,
    "a-bool": True,
    "10**5000": HUGE,
    "a-list": [5],
}


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS.values(), ids=BAD_TIMEOUTS.keys())
async def test_a_wait_with_a_timeout_no_clock_can_keep_is_refused_naming_it(
    timeout: object,
) -> None:
    async with running() as (sim, client):
        task = client.task("0385dc79-5ff8-4d82-bcb6-000000000000")
        with pytest.raises(ValidationError) as waiting:
            await task.wait(timeout=timeout)  # type: ignore[arg-type]
        with pytest.raises(ValidationError) as watching:
            async for _ in task.watch(timeout=timeout):  # type: ignore[arg-type]
                pass
        with pytest.raises(ValidationError) as generating:
            await client.generate(IMG, "mengwa_kaixin", timeout=timeout)  # type: ignore[arg-type]
        with pytest.raises(ValidationError) as batching:
            await client.generate_many([EmojiJob(IMG, "mengwa_kaixin")], timeout=timeout)  # type: ignore[arg-type]
        assert sim.requests == []  # refused before anything was sent
    for caught in (waiting, watching, generating, batching):
        assert caught.value.field == "timeout"


async def test_a_wait_given_something_else_than_a_poll_policy_is_refused_naming_it() -> None:
    async with running() as (sim, client):
        with pytest.raises(ValidationError) as caught:
            await client.task("t-1").wait(policy=5)  # type: ignore[arg-type]
        assert sim.requests == []
    assert caught.value.field == "policy"


@pytest.mark.parametrize(
    "max_bytes",
    ["5", 0, -1, True, 1.5, math.nan, 2**63, HUGE],
    ids=["str", "0", "-1", "bool", "float", "nan", "2**63", "huge"],
)
async def test_a_download_cap_that_is_not_a_positive_int_is_refused(
    max_bytes: Any, tmp_path: Path
) -> None:
    async with running() as (_, client):
        with pytest.raises(ValidationError) as caught:
            await client.download(
                "http://127.0.0.1:9/v.mp4", tmp_path / "v.mp4", max_bytes=max_bytes
            )
    assert caught.value.field == "max_bytes"


@pytest.mark.parametrize(
    "page", [0, 2**31, HUGE, "2", True], ids=["0", "2**31", "huge", "str", "bool"]
)
async def test_a_task_list_page_no_request_can_carry_is_refused_naming_it(page: Any) -> None:
    async with running() as (sim, client):
        with pytest.raises(ValidationError) as caught:
            await client.list_tasks(page=page)
        assert sim.requests == []
    assert caught.value.field == "page"


# --- task ids --------------------------------------------------------------------------

IMPOSSIBLE_IDS = ["..", ".", "x" * 10_000, "a/b", "", " t-1", "t-1\n", "é"]


@pytest.mark.parametrize("task_id", IMPOSSIBLE_IDS, ids=lambda t: repr(t)[:12])
async def test_a_task_id_from_the_caller_that_no_task_has_is_refused_naming_it(
    task_id: str,
) -> None:
    async with running() as (sim, client):
        with pytest.raises(ValidationError) as caught:
            client.task(task_id)
        assert sim.requests == []
    assert caught.value.field == "task_id"
    assert len(str(caught.value)) < 300


REAL_ID = "50e2ccea-5d4b-4cb3-b2c6-2f0b3c6b7e11"


@asynccontextmanager
async def mangling_gateway(
    answered_id: str, listed_id: str
) -> AsyncIterator[tuple[str, list[str]]]:
    """A service whose submit creates ``listed_id`` (so the task list shows it) but answers
    ``answered_id``; every request's path is recorded."""
    paths: list[str] = []
    made: list[float] = []

    @web.middleware
    async def record(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        paths.append(request.raw_path)
        response: web.StreamResponse = await handler(request)
        return response

    async def detect(request: web.Request) -> web.Response:
        output = {"bbox_face": [212, 194, 460, 441], "ext_bbox_face": [63, 30, 609, 575]}
        return web.json_response({"output": output, "usage": {"image_count": 1}})

    async def submit(request: web.Request) -> web.Response:
        made.append(time.time())
        return web.json_response({"output": {"task_status": "PENDING", "task_id": answered_id}})

    async def task_list(request: web.Request) -> web.Response:
        rows = [
            {
                "task_id": listed_id,
                "status": "SUCCEEDED",
                "model_name": "emoji-v1",
                "gmt_create": int(at * 1000),
            }
            for at in made
        ]
        return web.json_response({"data": rows, "total": len(rows), "total_page": 1})

    async def query(request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        if task_id != listed_id or not made:
            output = {"task_id": task_id, "task_status": "UNKNOWN"}
            return web.json_response({"output": output})
        output = {
            "task_id": task_id,
            "task_status": "SUCCEEDED",
            "video_url": "https://example.com/v.mp4",
        }
        return web.json_response({"output": output, "usage": {"video_duration": 2}})

    async def anything_else(request: web.Request) -> web.Response:
        return web.json_response({"code": "NotFound", "message": "no such path"}, status=404)

    app = web.Application(middlewares=[record])
    app.router.add_post("/api/v1/services/aigc/image2video/face-detect", detect)
    app.router.add_post("/api/v1/services/aigc/image2video/video-synthesis", submit)
    app.router.add_get("/api/v1/tasks", task_list)
    app.router.add_get("/api/v1/tasks/{task_id}", query)
    app.router.add_route("*", "/{tail:.*}", anything_else)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("/api/v1")), paths


def gateway_client(base_url: str) -> EmojiClient:
    return EmojiClient(
        api_key="sk-gateway",
        base_url=base_url,
        limits=None,
        retry=RetryPolicy(wait_first=0.02, wait_max=0.1, deadline=2, reconcile_window=1),
        poll=PollPolicy(wait_first=0.02, wait_max=0.05, deadline=5),
    )


@pytest.mark.parametrize("answered", ["..", ".", "x" * 10_000], ids=["dotdot", "dot", "10kB"])
async def test_a_submit_answered_with_an_impossible_task_id_is_settled_through_the_list(
    answered: str,
) -> None:
    """The task the submit made is adopted from the list; the submit is never sent again."""
    async with (
        mangling_gateway(answered, REAL_ID) as (base_url, paths),
        gateway_client(base_url) as client,
    ):
        video = await client.generate(IMG, "mengwa_kaixin")
    assert video.task_id == REAL_ID
    assert paths.count("/api/v1/services/aigc/image2video/video-synthesis") == 1
    polls = [p for p in paths if p.startswith("/api/v1/tasks/")]
    assert polls
    assert set(polls) == {f"/api/v1/tasks/{REAL_ID}"}
    assert all(p.startswith("/api/v1/") for p in paths)


async def test_a_submit_whose_task_lists_under_an_impossible_id_ends_uncertain_not_resent() -> None:
    async with (
        mangling_gateway("..", "..") as (base_url, paths),
        gateway_client(base_url) as client,
    ):
        with pytest.raises(SubmissionUncertainError):
            await client.generate(IMG, "mengwa_kaixin")
    assert paths.count("/api/v1/services/aigc/image2video/video-synthesis") == 1
    assert not [p for p in paths if p.startswith("/api/v1/tasks/")]

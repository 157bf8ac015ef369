"""The simulator speaks the provider's real wire: the official ``dashscope`` 2.x SDK works with it.

The SDK has no Emoji class, so the tests drive its generic async-task helper
(``AsyncJobs``) on the Emoji service path, exactly as an Emoji user of the SDK
would. Detection goes over plain aiohttp (the SDK has no face-detect call either).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import attrs
import pytest

from emoji_async.testing import (
    ServiceLimits,
    SimulatorConfig,
    SimulatorServer,
    fixed_duration,
    serve,
)

dashscope = pytest.importorskip("dashscope")
jobs_module = pytest.importorskip("dashscope.v2.resources._jobs")
sdk_errors = pytest.importorskip("dashscope.v2.errors")

KEY = "sk-simulator"
IMAGE = "https://example.com/portrait.png"
SERVICE = "aigc/image2video/video-synthesis"
#: The real limits, with one scaled second lasting a millisecond.
CONFIG = SimulatorConfig(time_scale=0.001, limits=ServiceLimits(), durations=fixed_duration(60.0))


@attrs.frozen
class Sdk:
    server: SimulatorServer
    client: Any
    jobs: Any
    http: aiohttp.ClientSession


@pytest.fixture
async def sdk() -> AsyncIterator[Sdk]:
    async with (
        serve(CONFIG) as server,
        aiohttp.ClientSession() as http,
        dashscope.AsyncClient(api_key=KEY, base_url=server.base_url, max_retries=0) as client,
    ):
        yield Sdk(server, client, jobs_module.AsyncJobs(client, SERVICE), http)


async def detected_input(sdk: Sdk, image_url: str, driven_id: str) -> dict[str, Any]:
    """The submit ``input`` for ``image_url``, with the boxes a real detection returned."""
    body = {
        "model": "emoji-detect-v1",
        "input": {"image_url": image_url},
        "parameters": {"ratio": "1:1"},
    }
    url = f"{sdk.server.base_url}/services/aigc/image2video/face-detect"
    headers = {"Authorization": f"Bearer {KEY}"}
    async with sdk.http.post(url, json=body, headers=headers) as response:
        assert response.status == 200
        output = (await response.json())["output"]
    return {
        "image_url": image_url,
        "driven_id": driven_id,
        "face_bbox": output["bbox_face"],
        "ext_bbox": output["ext_bbox_face"],
    }


async def test_sdk_async_jobs_submit_an_emoji_task_and_wait_for_its_video(sdk: Sdk) -> None:
    inputs = await detected_input(sdk, IMAGE, "mengwa_kun_1")
    job = await sdk.jobs.create(model="emoji-v1", input=inputs)
    assert job.status == "PENDING"
    assert job.task_id
    assert job.request_id

    done = await sdk.jobs.wait(job, poll_interval=0.01, max_interval=0.05, timeout=10)

    assert done.succeeded
    assert done.task_id == job.task_id
    assert done.submitted_at
    assert done.scheduled_at
    assert done.finished_at
    assert done.video_url.startswith(f"{sdk.server.origin}/results/{job.task_id}.mp4?")
    assert done.usage.video_duration == 5
    assert done.usage.video_ratio == "standard"
    async with sdk.http.get(done.video_url) as response:
        assert response.status == 200
        assert len(await response.read()) == int(response.headers["Content-Length"]) > 0
    sim = sdk.server.simulator
    assert sim.tasks_created == 1
    assert sim.stats.video_seconds_billed == 5
    submit = next(r for r in sim.requests if r.endpoint == "submit")
    assert (submit.method, submit.status) == ("POST", 200)
    assert {r.endpoint for r in sim.requests} == {"detect", "submit", "query", "download"}


async def test_sdk_reads_a_failed_task_as_an_error_with_the_provider_code(sdk: Sdk) -> None:
    inputs = await detected_input(sdk, f"{IMAGE}?sim_fail=InternalError.Algo", "dagong_kaixin")
    job = await sdk.jobs.create(model="emoji-v1", input=inputs)
    with pytest.raises(sdk_errors.DashScopeError) as caught:
        await sdk.jobs.wait(job, poll_interval=0.01, max_interval=0.05, timeout=10)
    assert caught.value.code == "InternalError.Algo"


async def test_sdk_cancels_a_pending_task_and_fetches_unknown_ids(sdk: Sdk) -> None:
    # The first task runs an hour of provider time (3.6 s here), so the second is
    # still PENDING behind it however slowly a loaded machine gets to the cancel.
    first = await sdk.jobs.create(
        model="emoji-v1",
        input=await detected_input(sdk, IMAGE + "?sim_duration=3600", "mengwa_kaixin"),
    )
    second = await sdk.jobs.create(
        model="emoji-v1", input=await detected_input(sdk, IMAGE + "?b", "mengwa_kaixin")
    )
    assert (await sdk.jobs.fetch(second.task_id)).status == "PENDING"
    await sdk.jobs.cancel(second.task_id)
    assert (await sdk.jobs.fetch(second.task_id)).status == "CANCELED"
    assert (await sdk.jobs.fetch("no-such-task")).status == "UNKNOWN"
    listed = await sdk.jobs.list()
    assert listed.total == 2
    with pytest.raises(sdk_errors.DashScopeError) as caught:
        await sdk.jobs.cancel(first.task_id)
    assert caught.value.code == "UnsupportedOperation"
    assert caught.value.status_code == 400


async def test_sdk_maps_the_simulators_errors_by_status_and_code(sdk: Sdk) -> None:
    inputs = await detected_input(sdk, IMAGE, "mengwa_kaixin")
    with pytest.raises(sdk_errors.DashScopeError) as caught:
        await sdk.jobs.create(model="emoji-v1", input={**inputs, "driven_id": "nope"})
    assert (caught.value.status_code, caught.value.code) == (400, "InvalidParameter")
    assert caught.value.message == "Driven not exist: driven_id."
    assert caught.value.request_id
    async with dashscope.AsyncClient(
        api_key="sk-wrong", base_url=sdk.server.base_url, max_retries=0
    ) as stranger:
        with pytest.raises(sdk_errors.DashScopeError) as denied:
            await jobs_module.AsyncJobs(stranger, SERVICE).fetch("any")
    assert (denied.value.status_code, denied.value.code) == (401, "InvalidApiKey")

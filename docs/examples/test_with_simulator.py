"""Testing your own code against the simulator: real HTTP on loopback, no account, no mocks.

Copy this file into your tests and run ``pytest``. It needs ``pytest`` and
``pytest-asyncio``; ``emoji-async[video]`` makes the result videos real MP4s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from emoji_async import EmojiClient, EmojiJob
from emoji_async.testing import (
    Fault,
    SimulatorConfig,
    SimulatorServer,
    client_for,
    fixed_duration,
    serve,
)

pytestmark = pytest.mark.asyncio

#: The simulator's clock runs 100 times faster than the provider's: a task of
#: 30 provider seconds takes 0.3 s. ``client_for`` puts the client on the same
#: clock, so it makes the decisions it would make against the real service.
SCALE = 0.01


# The code under test: yours. Here, a function that animates a set of portraits.
async def animate_all(
    client: EmojiClient, portraits: dict[str, str], template: str
) -> dict[str, str]:
    """``{name: video URL}``, or ``{name: "error: ..."}`` for a portrait that gave no video."""
    jobs = [EmojiJob(url, template, key=name) for name, url in portraits.items()]
    outcomes = await client.generate_many(jobs)
    return {
        outcome.key: outcome.video.video_url if outcome.video else f"error: {outcome.error}"
        for outcome in outcomes
    }


@pytest_asyncio.fixture
async def simulator() -> AsyncIterator[SimulatorServer]:
    """The service, on a free loopback port, with the provider's limits and a fast clock."""
    config = SimulatorConfig(time_scale=SCALE, durations=fixed_duration(30))
    async with serve(config) as server:
        yield server


@pytest_asyncio.fixture
async def client(simulator: SimulatorServer) -> AsyncIterator[EmojiClient]:
    """A client of the simulator, on the simulator's clock."""
    async with client_for(simulator) as client:
        yield client


async def test_every_portrait_gets_one_video(
    simulator: SimulatorServer, client: EmojiClient
) -> None:
    portraits = {name: simulator.sample_url(name) for name in ("ada", "alan", "grace")}

    videos = await animate_all(client, portraits, "mengwa_kaixin")

    assert set(videos) == set(portraits)
    assert all(url.startswith(simulator.origin) for url in videos.values())
    # The ground truth, whatever the client was told: one paid task per portrait.
    assert simulator.simulator.stats.tasks_created == 3


async def test_a_rejected_face_is_reported_and_costs_no_task(
    simulator: SimulatorServer, client: EmojiClient
) -> None:
    # A query parameter of the image URL tells the simulator what to play.
    portraits = {"profile": "https://example.com/p.png?sim_reject=InvalidFile.FacePose"}

    videos = await animate_all(client, portraits, "mengwa_kaixin")

    assert videos["profile"].startswith("error: InvalidFile.FacePose")
    assert simulator.simulator.stats.tasks_created == 0
    assert simulator.simulator.stats.detections_billed == 1  # a rejection is billed too


async def test_a_task_that_fails_is_reported(client: EmojiClient) -> None:
    portraits = {"unlucky": "https://example.com/p.png?sim_fail=InternalError.Algo"}

    videos = await animate_all(client, portraits, "dagong_weixiao")

    assert videos["unlucky"].startswith("error: ")
    assert "InternalError.Algo" in videos["unlucky"]


async def test_a_flaky_service_still_gives_every_video(
    simulator: SimulatorServer, client: EmojiClient
) -> None:
    # The next two task queries answer 503: the client retries them.
    simulator.simulator.faults.add(Fault("query", "status", status=503, times=2))
    portraits = {"ada": simulator.sample_url("ada")}

    videos = await animate_all(client, portraits, "jingdian_qidai")

    assert not videos["ada"].startswith("error")
    assert simulator.simulator.stats.faults_by_kind  # the faults were played

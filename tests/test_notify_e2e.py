"""The simulated EventBridge delivers to the package's receiver: every reading, signed and checked.

The simulator signs as the provider's prose or its sample may mean (each
``SignForm``), with or without a static token; the receiver, trusting the
simulator's loopback certificate explicitly, accepts each delivery once and
hands one event per task end to its sink. What the sink got is checked against
what the simulator recorded.
"""

from __future__ import annotations

import asyncio

import pytest

from emoji_async import EmojiClient
from emoji_async.notify import SIGN_FORMS, SignForm, TaskFinished, Verifier
from emoji_async.testing import SIMULATOR_CERTIFICATES, receiving

from .conftest import detect_and_submit, running, sim_config


class Collected:
    """A sink that keeps what it is handed."""

    def __init__(self) -> None:
        self.events: list[TaskFinished] = []
        self.arrived = asyncio.Event()

    async def deliver(self, event: TaskFinished) -> None:
        self.events.append(event)
        self.arrived.set()


async def _one_task(client: EmojiClient, n: int) -> str:
    task = await detect_and_submit(client, f"https://example.com/e2e/{n}.png?sim_duration=5")
    return task.task_id


@pytest.mark.parametrize("form", SIGN_FORMS, ids=str)
@pytest.mark.parametrize("token", [None, "target-token"])
async def test_each_reading_of_the_signature_reaches_the_sink_once(
    form: SignForm, token: str | None
) -> None:
    sink = Collected()
    async with receiving(sink, token=token) as (url, receiver):
        config = sim_config(
            notify_targets=(url,),
            notify_latency=(1.0, 2.0),
            notify_duplicates=1.0,  # every event at least twice
            notify_sign_form=form,
            notify_token=token,
        )
        async with running(config) as (sim, client):
            task_id = await _one_task(client, 0)
            async with asyncio.timeout(30):
                while sim.stats.delivered < 2:  # noqa: ASYNC110  (the simulator sets no event)
                    await asyncio.sleep(0.01)
    [event] = sink.events
    assert (event.task_id, event.raw_status) == (task_id, "SUCCEEDED")
    assert receiver.stats.accepted == 1
    assert receiver.stats.duplicates >= 1
    assert sum(receiver.stats.refused.values()) == 0


async def test_a_wrong_token_is_refused_and_the_simulator_retries_then_gives_up() -> None:
    sink = Collected()
    async with receiving(sink, token="the-right-one") as (url, receiver):
        config = sim_config(
            notify_targets=(url,), notify_latency=(1.0, 1.0), notify_token="a-wrong-one"
        )
        async with running(config) as (sim, client):
            await _one_task(client, 1)
            async with asyncio.timeout(30):
                while sim.stats.dead_lettered < 1:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
    assert sink.events == []
    assert receiver.stats.refused == {"token": sim.stats.deliveries}


def test_the_default_verifier_does_not_trust_a_simulators_certificate() -> None:
    assert Verifier().certificate_urls.pattern != SIMULATOR_CERTIFICATES
    assert (
        Verifier().certificate_urls.fullmatch("http://127.0.0.1:8080/eventbridge/cert.pem") is None
    )

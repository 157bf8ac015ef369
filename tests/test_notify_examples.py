"""The notifications page's two examples, run as users run them, against the simulator.

The simulator's EventBridge delivers each task's end, signed, to the example's
receiver (its verifier trusting the simulator's loopback certificate, the one
setting a test changes); every wait is woken by its event and confirmed with
one query. What the simulator recorded decides: one query per job, each
video made from its own portrait.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from benchmarks.redis_server import free_port
from emoji_async import NotifyPolicy
from emoji_async.notify import Verifier
from emoji_async.testing import SIMULATOR_CERTIFICATES, serve

from .conftest import client_for, each_job_paid_once, sim_config
from .test_examples import example

#: Events come 1-5 s after a task ends, long before the safety net's first poll.
FAST = {"notify_latency": (1.0, 5.0)}


def _verifier() -> Verifier:
    return Verifier(certificate_urls=SIMULATOR_CERTIFICATES)


async def test_the_aiohttp_example_answers_each_sticker_once_its_event_came() -> None:
    port = free_port()
    hook = f"http://127.0.0.1:{port}/hooks/eventbridge"
    async with serve(sim_config(notify_targets=(hook,), **FAST)) as server:
        sim = server.simulator
        app = example("notify_aiohttp").create_app(
            lambda: client_for(server, notifications=NotifyPolicy()), _verifier()
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            answers = []
            async with aiohttp.ClientSession() as http:
                for n in range(3):
                    form = {
                        "image_url": f"https://example.com/s/{n}.png",
                        "template": "mengwa_kaixin",
                    }
                    async with http.post(f"http://127.0.0.1:{port}/stickers", data=form) as resp:
                        assert resp.status == 200, await resp.text()
                        answers.append(await resp.json())
            receiver = app[example("notify_aiohttp").RECEIVER]
        finally:
            await runner.cleanup()
    for n, answer in enumerate(answers):
        made = sim.task(answer["task_id"])
        assert made is not None
        assert (made.image_url, made.status) == (f"https://example.com/s/{n}.png", "SUCCEEDED")
    assert sim.stats.requests_by_endpoint.get("query", 0) == 3  # one per job: its event's
    assert receiver.stats.accepted == 3


async def test_the_asgi_example_runs_a_batch_on_its_events_under_uvicorn() -> None:
    port = free_port()
    images = [f"https://example.com/b/{n}.png" for n in range(5)]
    hook = f"http://127.0.0.1:{port}/hooks/eventbridge"
    async with serve(sim_config(notify_targets=(hook,), **FAST)) as server:
        sim = server.simulator
        client = client_for(server, notifications=NotifyPolicy())
        outcomes = await example("notify_asgi").run(client, _verifier(), images, port=port)
    assert [o.job.image for o in outcomes] == images
    each_job_paid_once(sim, [o.job for o in outcomes], outcomes)
    assert sim.stats.requests_by_endpoint.get("query", 0) == len(images)
    counts = client.notices.counts
    assert counts.woke + counts.claimed_late == len(images)

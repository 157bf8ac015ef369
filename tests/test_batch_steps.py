"""A job's task steps, as a batch tells them: each one once, however often the task is watched."""

from __future__ import annotations

from emoji_async import EmojiJob
from emoji_async.events import JobEvent, Queued, Running, Succeeded
from emoji_async.testing import Fault

from .conftest import running, sim_config


async def test_a_task_watched_again_after_a_failed_poll_tells_its_steps_once() -> None:
    """A poll refused with a wait past the job's deadline watches the task again; its
    steps already told (Queued, Running) are not told again."""
    events: list[JobEvent] = []
    told: list[Queued] = []
    job = EmojiJob("https://example.com/p/ada.png", "mengwa_kaixin", key="ada")
    # Unpaced: the 429's Retry-After would otherwise hold every poll past the deadline.
    async with running(sim_config(), limits=None) as (sim, client):

        def take(event: JobEvent) -> None:
            events.append(event)
            if isinstance(event, Queued) and not told:
                told.append(event)
                # The next poll is told to wait far past what is left of the job's time.
                sim.faults.add(
                    Fault("query", "status", status=429, code="Throttling", retry_after=1e6)
                )

        (outcome,) = await client.generate_many([job], on_event=take, timeout=60)
    assert outcome.error is None
    assert not sim.faults.pending  # the 429 was met: the task was watched again
    steps = [type(e) for e in events if isinstance(e, Queued | Running | Succeeded)]
    assert steps.count(Queued) == 1
    assert steps.count(Running) <= 1
    assert steps[-1] is Succeeded

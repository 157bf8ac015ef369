"""``emoji_async``: ``generate_many`` with its defaults, policies on the simulator's clock.

Its poll, retry and rate-limit policies are the defaults, each ``.scaled`` by
the time scale, as ``benchmarks/simulator.py`` builds them; the video is held
when the batch reports ``events.Succeeded``.
"""

from __future__ import annotations

from emoji_async import EmojiClient, EmojiJob
from emoji_async import events as ev

from . import API_KEY, JobResult, JobSpec

__all__ = ["run"]


async def run(base_url: str, jobs: list[JobSpec], *, time_scale: float) -> list[JobResult]:
    """Every job through one ``generate_many`` call with its defaults."""
    held: dict[str, float] = {}

    def on_event(event: ev.JobEvent) -> None:
        if isinstance(event, ev.Succeeded):
            held[event.key] = event.at

    batch = [
        EmojiJob(
            spec.image_url,
            spec.driven_id,
            face_bbox=list(spec.face_bbox),
            ext_bbox=list(spec.ext_bbox),
            key=spec.key,
        )
        for spec in jobs
    ]
    async with EmojiClient(
        api_key=API_KEY,
        base_url=base_url,
        time_scale=time_scale,
    ) as client:
        outcomes = await client.generate_many(batch, on_event=on_event)
    return [
        JobResult(outcome.key, outcome.task_id, held[outcome.key])
        if outcome.ok and outcome.key in held
        else JobResult.lost(outcome.key, outcome.task_id, str(outcome.error))
        for outcome in outcomes
    ]

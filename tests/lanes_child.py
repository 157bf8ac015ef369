"""A bulk batch in a process of its own, pacing shared through Redis, for the lanes tests.

Usage: ``python lanes_child.py BASE_URL REDIS_URL JOURNAL SCALE COUNT``.
Runs jobs ``b0`` .. ``b{COUNT-1}`` (:func:`image`) with ``generate_many`` (the
bulk lane) on account ``test``. Prints ``preempted <task> <by>`` for each of
its tasks moved aside, and a JSON summary at the end.
"""

from __future__ import annotations

import asyncio
import json
import sys

from emoji_async import EmojiClient, EmojiJob, RedisPacing, events

ACCOUNT = "test"


def image(n: int) -> str:
    return f"https://example.com/batch/{n}.png?sim_duration=60"


def on_event(event: events.JobEvent) -> None:
    if isinstance(event, events.Preempted):
        print("preempted", event.task_id, event.by, flush=True)


async def main(base_url: str, redis_url: str, journal: str, scale: float, count: int) -> None:
    jobs = [EmojiJob(image(n), "mengwa_kaixin", key=f"b{n}") for n in range(count)]
    pacing = RedisPacing(redis_url, account=ACCOUNT, lock_ttl=1.0, lease_ttl=1.0)
    async with EmojiClient(base_url=base_url, time_scale=scale, pacing=pacing) as client:
        outcomes = await client.generate_many(jobs, journal=journal, on_event=on_event)
    summary = {
        "errors": [repr(o.error) for o in outcomes if o.error is not None],
        "videos": [None if o.video is None else o.video.task_id for o in outcomes],
        "preempted": outcomes.preempted,
        "preempt_cancels": outcomes.preempt_cancels,
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    base, redis_url, journal_path, scale_text, count_text = sys.argv[1:6]
    asyncio.run(main(base, redis_url, journal_path, float(scale_text), int(count_text)))

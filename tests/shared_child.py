"""A batch in a process of its own, pacing shared through Redis, for the shared pacing tests.

Usage: ``python shared_child.py BASE_URL REDIS_URL JOURNAL OUT_DIR SCALE INDEX COUNT TTL``.
Runs jobs ``s{INDEX}-0`` .. ``s{INDEX}-{COUNT-1}`` on account ``test``, the
submit lock and the leases expiring ``TTL`` seconds after a holder stops.
Prints ``submitted <key>`` after each submit, and a JSON summary at the end.
"""

from __future__ import annotations

import asyncio
import json
import sys

from emoji_async import (
    EmojiClient,
    EmojiJob,
    RedisPacing,
    events,
)

ACCOUNT = "test"


def image(index: int, n: int) -> str:
    return f"https://example.com/s/{index}/{n}.png?sim_duration=30"


def on_event(event: events.JobEvent) -> None:
    if isinstance(event, events.Submitted):
        print("submitted", event.key, flush=True)


async def main(
    base_url: str, redis_url: str, journal: str, out: str, scale: float, index: int, count: int,
    ttl: float,
) -> None:  # fmt: skip
    jobs = [EmojiJob(image(index, n), "mengwa_kaixin", key=f"s{index}-{n}") for n in range(count)]
    pacing = RedisPacing(redis_url, account=ACCOUNT, lock_ttl=ttl, lease_ttl=ttl)
    async with EmojiClient(
        base_url=base_url,
        time_scale=scale,
        pacing=pacing,
    ) as client:
        outcomes = await client.generate_many(
            jobs, journal=journal, download_to=out, on_event=on_event
        )
    summary = {
        "ok": [o.ok for o in outcomes],
        "errors": [repr(o.error) for o in outcomes if o.error is not None],
        "resumed": sum(o.resumed for o in outcomes),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    base, redis_url, journal_path, out_dir, scale_text, index_text, count_text, ttl_text = sys.argv[
        1:9
    ]
    asyncio.run(
        main(
            base,
            redis_url,
            journal_path,
            out_dir,
            float(scale_text),
            int(index_text),
            int(count_text),
            float(ttl_text),
        )
    )

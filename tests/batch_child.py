"""A batch in a process of its own, for the crash test.

Usage: ``python batch_child.py BASE_URL JOURNAL OUT_DIR SCALE COUNT``. Prints
``submitted <key>`` after each submit, and a JSON summary at the end.
"""

from __future__ import annotations

import asyncio
import json
import sys

from emoji_async import EmojiClient, EmojiJob, events


def on_event(event: events.JobEvent) -> None:
    if isinstance(event, events.Submitted):
        print("submitted", event.key, flush=True)


async def main(base_url: str, journal: str, out: str, scale: float, count: int) -> None:
    jobs = [
        EmojiJob(f"https://example.com/p/{n}.png?sim_duration=60", "mengwa_kaixin", key=f"job-{n}")
        for n in range(count)
    ]
    async with EmojiClient(
        base_url=base_url,
        time_scale=scale,
    ) as client:
        outcomes = await client.generate_many(
            jobs, journal=journal, download_to=out, on_event=on_event
        )
    summary = {"ok": [o.ok for o in outcomes], "resumed": sum(o.resumed for o in outcomes)}
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    base, journal_path, out_dir, scale_text, count_text = sys.argv[1:6]
    asyncio.run(main(base, journal_path, out_dir, float(scale_text), int(count_text)))

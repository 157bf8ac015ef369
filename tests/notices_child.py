"""A process that waits for a task another process submitted, on notifications relayed
through Redis, for the two-process notification tests.

Usage: ``python notices_child.py BASE_URL REDIS_URL SCALE ACCOUNT``. Prints ``listening``
once subscribed to the account's notifications, then reads task ids from stdin, one a
line, waits for each (notifications on, the safety net far away) and prints a JSON line
per task: its id, the status it ended in, how long the wait took (real seconds), and the
hub's counts.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from emoji_async import EmojiClient, NotifyPolicy, PollPolicy, RedisPacing
from emoji_async._shared import RedisBackend

#: The safety net's first poll comes 300 + 600 provider seconds after a task starts: any
#: earlier end of a wait is a notification's doing.
FAR = NotifyPolicy(grace=600.0)


async def main(base_url: str, redis_url: str, scale: float, account: str) -> None:
    async with EmojiClient(
        base_url=base_url,
        time_scale=scale,
        pacing=RedisPacing(redis_url, account=account),
        notifications=FAR,
        poll=PollPolicy(),
    ) as client:
        backend = client._life.service.pacing.backend
        assert isinstance(backend, RedisBackend)
        await asyncio.wait_for(backend.relayed.subscribed.wait(), 10)
        print("listening", flush=True)
        loop = asyncio.get_running_loop()
        while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            started = time.monotonic()
            snapshots = [snapshot async for snapshot in client.task(line).watch()]
            snapshot = snapshots[-1]
            counts = client.notices.counts
            print(
                json.dumps(
                    {
                        "task_id": line,
                        "status": snapshot.raw_status,
                        "took": time.monotonic() - started,
                        "relayed_in": counts.relayed_in,
                        "woke": counts.woke,
                        "claimed_late": counts.claimed_late,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    base, redis_url, scale_text, account_name = sys.argv[1:5]
    asyncio.run(main(base, redis_url, float(scale_text), account_name))

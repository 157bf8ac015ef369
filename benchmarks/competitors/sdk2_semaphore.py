"""The official SDK 2.x, create + wait under ``asyncio.gather`` and a semaphore of 4.

The semaphore is how its users keep a batch polite; 4 is the figure the
benchmark issue names. See :mod:`._sdk2` for what is scaled and how.
"""

from __future__ import annotations

from . import JobResult, JobSpec, _sdk2

__all__ = ["CONCURRENCY", "run"]

#: Jobs in flight at once.
CONCURRENCY = 4


async def run(base_url: str, jobs: list[JobSpec], *, time_scale: float) -> list[JobResult]:
    """``gather`` over every job, each holding the semaphore for its create and wait."""
    return await _sdk2.run(base_url, jobs, time_scale=time_scale, concurrency=CONCURRENCY)

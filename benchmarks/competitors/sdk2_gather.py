"""The official SDK 2.x, every job's create + wait at once under ``asyncio.gather``.

See :mod:`._sdk2` for what is scaled and how.
"""

from __future__ import annotations

from . import JobResult, JobSpec, _sdk2

__all__ = ["run"]


async def run(base_url: str, jobs: list[JobSpec], *, time_scale: float) -> list[JobResult]:
    """``asyncio.gather(*(create_and_wait(job) for job in jobs))``."""
    return await _sdk2.run(base_url, jobs, time_scale=time_scale)

"""A minimal raw-aiohttp loop: what users write today, since no SDK has an Emoji class.

Every job at once under ``asyncio.gather``: POST the submit, then
``GET /tasks/{id}`` every second until the task is terminal. Nothing paces the
requests; a 429 answer (to the submit or to a poll) just waits the poll
interval and tries again; any other error loses the job. The one interval,
1 s, is multiplied by the time scale.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from . import API_KEY, MODEL, SERVICE, JobResult, JobSpec, describe_error

__all__ = ["POLL_INTERVAL", "run"]

#: Seconds between polls, and after a 429, in provider seconds.
POLL_INTERVAL = 1.0
_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"})


async def run(base_url: str, jobs: list[JobSpec], *, time_scale: float) -> list[JobResult]:
    """Submit and poll every job at once, on one session."""
    interval = POLL_INTERVAL * time_scale
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one(spec: JobSpec) -> JobResult:
            try:
                return await _job(session, base_url, spec, interval)
            except (aiohttp.ClientError, ValueError, KeyError, TypeError) as exc:
                return JobResult.lost(spec.key, None, describe_error(exc))

        return list(await asyncio.gather(*(one(spec) for spec in jobs)))


async def _job(
    session: aiohttp.ClientSession, base_url: str, spec: JobSpec, interval: float
) -> JobResult:
    body = {"model": MODEL, "input": spec.submit_input()}
    while True:
        async with session.post(
            f"{base_url}/services/{SERVICE}", json=body, headers={"X-DashScope-Async": "enable"}
        ) as response:
            answer: dict[str, Any] = await response.json(content_type=None)
        if response.status == 200:
            task_id = str(answer["output"]["task_id"])
            break
        if response.status != 429:
            return JobResult.lost(spec.key, None, f"submit: HTTP {response.status} {answer}")
        await asyncio.sleep(interval)
    while True:
        await asyncio.sleep(interval)
        async with session.get(f"{base_url}/tasks/{task_id}") as response:
            answer = await response.json(content_type=None)
        if response.status == 429:
            continue
        if response.status != 200:
            return JobResult.lost(spec.key, task_id, f"poll: HTTP {response.status} {answer}")
        output = answer["output"]
        status = output["task_status"]
        if status == "SUCCEEDED" and output.get("video_url"):
            return JobResult.success(spec.key, task_id)
        if status in _TERMINAL:
            return JobResult.lost(spec.key, task_id, f"task ended {status}")

"""The official SDK 2.x (``dashscope>=2``): ``AsyncJobs`` create + wait, as its users write it.

The SDK has no Emoji class; its generic async-task helper ``AsyncJobs`` on the
Emoji service path is what an Emoji user of the SDK writes (as in
``tests/test_sdk_compat.py``). A job whose create or wait raises is lost.

What is scaled, and how:

* ``wait(poll_interval=1 * scale, max_interval=8 * scale, timeout=24 h * scale)``:
  its defaults (1 s doubling to 8 s, a 24 h deadline) on the compressed clock;
* the transport's retries (``AsyncTransport.request``: 408/409/429/5xx and
  transport errors, ``max_retries=2``, the submit POST included) sleep
  ``backoff_delay(attempt)`` = 0.5 s * 2^attempt (at most 8 s) + up to 25 %
  jitter. No constructor option changes it, so for the duration of a run
  ``dashscope.v2.transport.http.backoff_delay`` (the one name the transport
  calls it by) is replaced with one whose own delay is multiplied by the
  scale. A ``Retry-After`` the server sent is already on the compressed clock
  and stays as it is (capped at 8 s * scale, like the original's cap).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from . import API_KEY, MODEL, SERVICE, JobResult, JobSpec, describe_error

__all__ = ["MAX_INTERVAL", "POLL_INTERVAL", "WAIT_TIMEOUT", "run", "scaled_transport_retries"]

#: ``AsyncJobs.wait`` defaults, in provider seconds.
POLL_INTERVAL = 1.0
MAX_INTERVAL = 8.0
WAIT_TIMEOUT = 24 * 3600.0
#: The SDK's default, passed explicitly so that no environment or config file changes it.
MAX_RETRIES = 2


@contextlib.contextmanager
def scaled_transport_retries(time_scale: float) -> Iterator[None]:
    """While the block runs, the SDK 2.x transport sleeps ``time_scale`` times its retry waits."""
    http = importlib.import_module("dashscope.v2.transport.http")
    retry = importlib.import_module("dashscope.v2.transport._retry")
    original = getattr(http, "backoff_delay")  # noqa: B009
    if getattr(original, "emoji_bench_scaled", False):
        raise RuntimeError("the SDK 2.x retry sleeps are already scaled by another run")
    cap = float(retry.MAX_BACKOFF) * time_scale

    def scaled_backoff_delay(attempt: int, headers: Mapping[str, str] | None) -> float:
        if headers is not None:
            asked = retry.retry_after_seconds(headers)
            if asked is not None:
                return min(float(asked), cap)
        return float(original(attempt, None)) * time_scale

    scaled_backoff_delay.emoji_bench_scaled = True  # type: ignore[attr-defined]
    setattr(http, "backoff_delay", scaled_backoff_delay)  # noqa: B010
    try:
        yield
    finally:
        setattr(http, "backoff_delay", original)  # noqa: B010


async def run(
    base_url: str,
    jobs: list[JobSpec],
    *,
    time_scale: float,
    concurrency: int | None = None,
) -> list[JobResult]:
    """Create and wait for every job under ``asyncio.gather`` (at most ``concurrency`` at once)."""
    dashscope = importlib.import_module("dashscope")
    jobs_module = importlib.import_module("dashscope.v2.resources._jobs")
    gate: contextlib.AbstractAsyncContextManager[Any] = (
        asyncio.Semaphore(concurrency) if concurrency else contextlib.nullcontext()
    )
    with scaled_transport_retries(time_scale):
        async with dashscope.AsyncClient(
            api_key=API_KEY, base_url=base_url, max_retries=MAX_RETRIES
        ) as client:
            helper = jobs_module.AsyncJobs(client, SERVICE)

            async def one(spec: JobSpec) -> JobResult:
                async with gate:
                    return await _create_and_wait(helper, spec, time_scale)

            return list(await asyncio.gather(*(one(spec) for spec in jobs)))


async def _create_and_wait(helper: Any, spec: JobSpec, time_scale: float) -> JobResult:
    try:
        job = await helper.create(model=MODEL, input=spec.submit_input())
    except Exception as exc:  # any error the SDK raises loses the job, as it would its user's
        return JobResult.lost(spec.key, None, f"create: {describe_error(exc)}")
    task_id = str(job.task_id)
    try:
        done = await helper.wait(
            job,
            poll_interval=POLL_INTERVAL * time_scale,
            max_interval=MAX_INTERVAL * time_scale,
            timeout=WAIT_TIMEOUT * time_scale,
        )
    except Exception as exc:
        return JobResult.lost(spec.key, task_id, f"wait: {describe_error(exc)}")
    if done.succeeded and done.video_url:
        return JobResult.success(spec.key, task_id)
    return JobResult.lost(spec.key, task_id, f"wait: ended {done.status}")

"""Running one competitor in a child process of its own, and measuring an event loop's lag.

The scenario compresses time (one provider second lasts a few milliseconds),
so the CPU a request costs is not compressed with it. Running the client in
its own process gives it a core of its own and leaves the simulator the
parent's; the loop-lag meters on both sides say how far each fell behind its
own timers, which is the part of the figures that is not "as in real time".

The child (:mod:`._child`) gets the job list on stdin as JSON and answers one
JSON line on stdout: the results, its own ``time.monotonic()`` just before and
just after the run (the system-wide clock, so it compares with the
simulator's), and its loop lag. Process start-up is therefore not counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs

from . import JobResult, JobSpec

__all__ = [
    "REPO_ROOT",
    "ChildFailedError",
    "ChildRun",
    "LoopLag",
    "measure_loop_lag",
    "run_in_child",
]

#: The checkout holding the ``benchmarks`` package (not installed: it rides on PYTHONPATH).
REPO_ROOT = Path(__file__).resolve().parents[2]
#: How often a loop-lag meter wakes (real seconds).
TICK = 0.005


@attrs.frozen
class LoopLag:
    """How late an event loop ran a timer due every ``TICK`` s (real seconds)."""

    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, samples: list[float]) -> LoopLag:
        if not samples:
            return cls(0.0, 0.0, 0.0)
        ordered = sorted(samples)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        return cls(statistics.median(ordered), p95, ordered[-1])

    def to_json(self) -> dict[str, float]:
        return attrs.asdict(self)


@asynccontextmanager
async def measure_loop_lag() -> AsyncIterator[list[float]]:
    """Sample the running loop's lag while the block runs, into the list it yields."""
    samples: list[float] = []

    async def beat() -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(TICK)
            samples.append(max(0.0, time.monotonic() - before - TICK))

    task = asyncio.create_task(beat())
    try:
        yield samples
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if (current := asyncio.current_task()) is not None and current.cancelling():
                raise


@attrs.frozen
class ChildRun:
    """What one competitor did in its child process."""

    results: list[JobResult]
    started: float
    finished: float
    loop_lag: LoopLag


class ChildFailedError(RuntimeError):
    """The child process did not answer with results; the message holds its stderr's end."""


async def run_in_child(
    target: str,
    base_url: str,
    jobs: list[JobSpec],
    *,
    time_scale: float,
    first_on_path: Path | None = None,
) -> ChildRun:
    """Run ``target`` (``"module:function"``) in a fresh interpreter and return what it did.

    ``first_on_path`` goes before everything else on the child's ``sys.path``
    (the SDK 1.x install); the checkout comes next, then the interpreter's own
    site-packages. ``-P`` keeps the working directory off the path.
    """
    entries = [str(first_on_path)] if first_on_path is not None else []
    entries.append(str(REPO_ROOT))
    if inherited := os.environ.get("PYTHONPATH"):
        entries.append(inherited)
    # The simulator is on loopback: no proxy from the environment may stand in between.
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1,localhost"]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(entries), "NO_PROXY": no_proxy}
    request = {
        "target": target,
        "base_url": base_url,
        "time_scale": time_scale,
        "jobs": [spec.to_json() for spec in jobs],
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-P",
        "-m",
        "benchmarks.competitors._child",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await process.communicate(json.dumps(request).encode())
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    lines = out.decode(errors="replace").strip().splitlines()
    if process.returncode != 0 or not lines:
        tail = err.decode(errors="replace").strip()[-2000:]
        raise ChildFailedError(f"{target} exited with {process.returncode}:\n{tail}")
    answer: dict[str, Any] = json.loads(lines[-1])
    return ChildRun(
        results=[JobResult.from_json(item) for item in answer["results"]],
        started=float(answer["started"]),
        finished=float(answer["finished"]),
        loop_lag=LoopLag(**answer["loop_lag"]),
    )

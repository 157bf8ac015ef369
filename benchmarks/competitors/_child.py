"""``python -P -m benchmarks.competitors._child``: run one competitor, answer one JSON line.

Reads ``{"target", "base_url", "time_scale", "jobs"}`` on stdin; writes
``{"results", "started", "finished", "loop_lag"}`` as the last line of stdout.
Anything else the competitor prints goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import sys
import time
from typing import Any

from . import CompetitorRun, JobSpec
from ._isolation import LoopLag, measure_loop_lag


def _load(target: str) -> CompetitorRun:
    module_name, _, function = target.partition(":")
    found: CompetitorRun = getattr(importlib.import_module(module_name), function)
    return found


async def _main(request: dict[str, Any]) -> dict[str, Any]:
    run = _load(request["target"])
    jobs = [JobSpec.from_json(item) for item in request["jobs"]]
    async with measure_loop_lag() as lag:
        started = time.monotonic()
        results = await run(request["base_url"], jobs, time_scale=float(request["time_scale"]))
        finished = time.monotonic()
    return {
        "results": [result.to_json() for result in results],
        "started": started,
        "finished": finished,
        "loop_lag": LoopLag.of(lag).to_json(),
    }


def main() -> None:
    request = json.loads(sys.stdin.read())
    with contextlib.redirect_stdout(sys.stderr):
        answer = asyncio.run(_main(request))
    sys.stdout.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()

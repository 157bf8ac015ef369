"""Client overhead: CPU per job and jobs/s against a raw aiohttp loop and the official SDK.

Limits off, zero-length tasks, the simulator in a process of its own (so its
CPU is never counted against the client). Three competitors, one after the
other in this process, each through the same ``jobs`` jobs (boxes given: the
SDK cannot detect) under the same bound of ``concurrency`` jobs in flight,
each polling first ``first_poll`` seconds after its submit, which finds a
zero-length task done:

``raw``
    The floor: one ``aiohttp.ClientSession``, ``POST`` the submit, sleep,
    ``GET /tasks/{id}``, under a semaphore. Nothing a client could leave out.
``ours``
    ``EmojiClient(limits=None).generate_many(concurrency=...)`` with a poll
    policy whose first wait is ``first_poll`` (no jitter, no growth).
``sdk``
    dashscope 2.x ``AsyncJobs.create`` then ``wait(poll_interval=first_poll)``
    under the same semaphore, on the SDK's default ``AsyncClient``.

Measured per competitor: client CPU (``time.process_time()`` deltas), wall
time, and from the simulator's own counters the requests, tasks created and
TCP connections it accepted. Each repeat runs all three back to back, so the
ratios are taken within one repeat; the table shows the median and the range
over the repeats. Client and simulator share the machine's cores: on a small
machine the simulator can bound the jobs/s of all three alike (its CPU per
job is in the table to tell).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import attrs

from emoji_async import EmojiClient, EmojiJob, PollPolicy, Template

from ..figures import spread_text
from ..simproc import SimCounters, SimProcess, detected_boxes, simulator_process
from ..simulator import KEY

__all__ = ["COMPETITORS", "Measurement", "OverheadReport", "main", "run", "table"]

COMPETITORS = ("raw", "ours", "sdk")
LABELS = {"raw": "raw aiohttp", "ours": "emoji_async", "sdk": "dashscope 2.x"}
IMAGE = "https://example.com/bench/overhead.png"
SUBMIT_PATH = "/services/aigc/image2video/video-synthesis"
_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"})


@attrs.frozen
class Measurement:
    """One competitor's run through ``jobs`` jobs."""

    competitor: str
    jobs: int
    succeeded: int
    cpu_seconds: float
    wall_seconds: float
    requests: int
    tasks_created: int
    connections_opened: int
    connections_peak: int
    sim_cpu_seconds: float

    @property
    def cpu_per_job(self) -> float:
        return self.cpu_seconds / self.jobs

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.wall_seconds

    @property
    def requests_per_job(self) -> float:
        return self.requests / self.jobs

    @property
    def sim_cpu_per_job(self) -> float:
        return self.sim_cpu_seconds / self.jobs


@attrs.frozen
class OverheadReport:
    """Every repeat's measurements, one per competitor, in run order."""

    jobs: int
    concurrency: int
    first_poll: float
    repeats: tuple[tuple[Measurement, ...], ...]

    def of(self, competitor: str) -> list[Measurement]:
        """``competitor``'s measurement in each repeat."""
        return [m for repeat in self.repeats for m in repeat if m.competitor == competitor]

    def ratios(self, top: str, bottom: str, metric: Callable[[Measurement], float]) -> list[float]:
        """``metric(top) / metric(bottom)`` within each repeat that ran both."""
        found = []
        for repeat in self.repeats:
            by_name = {m.competitor: m for m in repeat}
            if top in by_name and bottom in by_name:
                found.append(metric(by_name[top]) / metric(by_name[bottom]))
        return found


# --- the competitors -----------------------------------------------------------------


def _bodies(jobs: int, face: list[int], ext: list[int]) -> list[dict[str, Any]]:
    templates = [t.value for t in Template]
    return [
        {
            "image_url": IMAGE,
            "driven_id": templates[n % len(templates)],
            "face_bbox": face,
            "ext_bbox": ext,
        }
        for n in range(jobs)
    ]


async def _raw(
    base_url: str, inputs: Sequence[dict[str, Any]], concurrency: int, first_poll: float
) -> int:
    """The floor: submit, sleep, poll, with nothing else."""
    auth = {"Authorization": f"Bearer {KEY}"}
    submit_headers = {**auth, "X-DashScope-Async": "enable"}
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def one(job_input: dict[str, Any]) -> bool:
            async with gate:
                body = {"model": "emoji-v1", "input": job_input}
                async with session.post(
                    base_url + SUBMIT_PATH, json=body, headers=submit_headers
                ) as response:
                    task_id = (await response.json())["output"]["task_id"]
                while True:
                    await asyncio.sleep(first_poll)
                    async with session.get(f"{base_url}/tasks/{task_id}", headers=auth) as response:
                        status = (await response.json())["output"]["task_status"]
                    if status in _TERMINAL:
                        return bool(status == "SUCCEEDED")

        done = await asyncio.gather(*(one(job_input) for job_input in inputs))
    return sum(done)


async def _ours(
    base_url: str, inputs: Sequence[dict[str, Any]], concurrency: int, first_poll: float
) -> int:
    """emoji_async's batch, limits off, polling as the floor does."""
    jobs = [
        EmojiJob(
            job_input["image_url"],
            job_input["driven_id"],
            face_bbox=job_input["face_bbox"],
            ext_bbox=job_input["ext_bbox"],
            key=str(n),
        )
        for n, job_input in enumerate(inputs)
    ]
    poll = PollPolicy(wait_first=first_poll, wait_factor=1.0, wait_max=first_poll, wait_jitter=0.0)
    async with EmojiClient(api_key=KEY, base_url=base_url, limits=None, poll=poll) as client:
        outcomes = await client.generate_many(jobs, concurrency=concurrency, poll=poll)
    return sum(outcome.ok for outcome in outcomes)


async def _sdk(
    base_url: str, inputs: Sequence[dict[str, Any]], concurrency: int, first_poll: float
) -> int:
    """dashscope 2.x as an Emoji user drives it: ``AsyncJobs`` create, then wait."""
    import dashscope
    from dashscope.v2.resources._jobs import AsyncJobs

    gate = asyncio.Semaphore(concurrency)
    async with dashscope.AsyncClient(api_key=KEY, base_url=base_url) as client:
        jobs_api = AsyncJobs(client, "aigc/image2video/video-synthesis")

        async def one(job_input: dict[str, Any]) -> bool:
            async with gate:
                job = await jobs_api.create(model="emoji-v1", input=job_input)
                done = await jobs_api.wait(
                    job, poll_interval=first_poll, max_interval=first_poll, timeout=600
                )
                return bool(done.succeeded)

        done = await asyncio.gather(*(one(job_input) for job_input in inputs))
    return sum(done)


_Runner = Callable[[str, Sequence[dict[str, Any]], int, float], Awaitable[int]]
RUNNERS: dict[str, _Runner] = {"raw": _raw, "ours": _ours, "sdk": _sdk}


async def _measure(
    sim: SimProcess,
    competitor: str,
    inputs: Sequence[dict[str, Any]],
    concurrency: int,
    first_poll: float,
) -> Measurement:
    gc.collect()
    before: SimCounters = await sim.counters()
    cpu, wall = time.process_time(), time.perf_counter()
    succeeded = await RUNNERS[competitor](sim.base_url, inputs, concurrency, first_poll)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    seen = (await sim.counters()).since(before)
    return Measurement(
        competitor=competitor,
        jobs=len(inputs),
        succeeded=succeeded,
        cpu_seconds=cpu,
        wall_seconds=wall,
        requests=seen.api_requests,
        tasks_created=seen.tasks_created,
        connections_opened=seen.connections_opened,
        connections_peak=seen.connections_peak,
        sim_cpu_seconds=seen.cpu_seconds,
    )


async def run(
    *,
    jobs: int = 5000,
    repeats: int = 3,
    concurrency: int = 64,
    first_poll: float = 0.01,
    competitors: Sequence[str] = COMPETITORS,
    warmup: int = 100,
    timeout: float = 1800.0,
) -> OverheadReport:
    """Each competitor through ``jobs`` jobs, ``repeats`` times, after an unmeasured warm-up.

    The warm-up (``warmup`` jobs each) pays the one-off costs (imports, the
    converter's generated hooks, first connections) outside the measurement.
    ``timeout`` bounds the whole run in seconds.
    """
    unknown = set(competitors) - set(COMPETITORS)
    if unknown:
        raise ValueError(f"unknown competitors {sorted(unknown)}; expected some of {COMPETITORS}")
    # Retention (24 h) scales with time: tasks from earlier repeats are forgotten.
    async with asyncio.timeout(timeout), simulator_process(time_scale=0.001) as sim:
        face, ext = await detected_boxes(sim.base_url, IMAGE)
        inputs = _bodies(jobs, face, ext)
        for competitor in competitors:
            if warmup:
                await RUNNERS[competitor](sim.base_url, inputs[:warmup], concurrency, first_poll)
        results = []
        for _ in range(repeats):
            results.append(
                tuple(
                    [
                        await _measure(sim, competitor, inputs, concurrency, first_poll)
                        for competitor in competitors
                    ]
                )
            )
    return OverheadReport(
        jobs=jobs, concurrency=concurrency, first_poll=first_poll, repeats=tuple(results)
    )


# --- the table -----------------------------------------------------------------------


def table(report: OverheadReport) -> str:
    """The report as printed: medians over the repeats, [min-max] beside them."""
    first = report.repeats[0] if report.repeats else ()
    names = [m.competitor for m in first]
    lines = [
        f"client overhead: {report.jobs} jobs x {len(report.repeats)} repeats, zero-length"
        f" tasks, limits off, concurrency {report.concurrency},"
        f" first poll {report.first_poll * 1000:g} ms",
        "simulator in its own process; it shares the machine's cores with the client",
        "median [min-max] over the repeats",
        "",
        f"{'':15} {'client CPU ms/job':22} {'jobs/s':20} {'req/job':>8} {'done':>6}"
        f" {'conns opened':>13} {'sim CPU ms/job':>18}",
    ]
    for name in names:
        runs = report.of(name)
        lines.append(
            f"{LABELS[name]:15} {spread_text([m.cpu_per_job * 1000 for m in runs], '.3f'):22}"
            f" {spread_text([m.jobs_per_second for m in runs], '.0f'):20}"
            f" {statistics.median(m.requests_per_job for m in runs):8.2f}"
            f" {min(m.succeeded for m in runs):6d}"
            f" {statistics.median(m.connections_opened for m in runs):13.0f}"
            f" {spread_text([m.sim_cpu_per_job * 1000 for m in runs], '.3f'):>18}"
        )
    ratios = [
        ("emoji_async / raw aiohttp, CPU per job", "ours", "raw", "cpu", "target <= 1.2"),
        ("emoji_async / dashscope, jobs/s", "ours", "sdk", "jps", "target >= 3"),
        ("dashscope / raw aiohttp, CPU per job", "sdk", "raw", "cpu", ""),
        ("emoji_async / raw aiohttp, jobs/s", "ours", "raw", "jps", ""),
    ]
    metrics: dict[str, Callable[[Measurement], float]] = {
        "cpu": lambda m: m.cpu_per_job,
        "jps": lambda m: m.jobs_per_second,
    }
    shown = [
        (label, report.ratios(top, bottom, metrics[metric]), target)
        for label, top, bottom, metric, target in ratios
    ]
    if any(values for _, values, _ in shown):
        lines += ["", "ratios within each repeat, median [min-max]"]
    for label, values, target in shown:
        if values:
            lines.append(f"  {label:40} {spread_text(values, '.2f'):20} {target}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="client overhead against raw aiohttp and the SDK")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--first-poll", type=float, default=0.01, help="seconds (default 0.01)")
    parser.add_argument(
        "--competitors",
        default=",".join(COMPETITORS),
        help="comma-separated, in run order (default: %(default)s); one alone suits a profiler",
    )
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args(argv)
    report = asyncio.run(
        run(
            jobs=args.jobs,
            repeats=args.repeats,
            concurrency=args.concurrency,
            first_poll=args.first_poll,
            competitors=[name for name in args.competitors.split(",") if name],
            warmup=args.warmup,
        )
    )
    print(table(report))


if __name__ == "__main__":
    main()

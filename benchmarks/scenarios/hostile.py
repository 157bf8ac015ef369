"""A hostile service: what each misbehaviour costs the client, measured.

``python -m benchmarks hostile`` plays each of the simulator's hostile faults
(docs/testing.md) against a default client and prints, per scenario, how the
call ended (the error's class, or ``ok``), how long it took (in real seconds
and as a multiple of the call's own deadline), the requests the service
recorded for it, and the growth of the process's peak RSS. Each scenario runs
in a process of its own (``python -m benchmarks.scenarios.hostile --one NAME``), so
each peak is its own, and each is stopped after ``--bound`` seconds (90): a
call still running then is reported as such, not waited for.

The service runs at ``--time-scale`` (0.1) and the client on the same clock
(``client_for``): a call made on its own has the retry policy's deadline, 12 s
at 0.1. The faults' own timing is in real seconds: a drip sends a byte every
0.5 s for 60 s, so a call that only times out between two bytes runs for the
whole minute.

Some scenarios check more than time and memory: whether the API key shows in
the error (its text, its repr, its causes), how many detections were billed,
how many tasks the service created, and whether the job was followed to its
video.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from emoji_async import Budget, EmojiClient, EmojiError, EmojiJob, Template
from emoji_async.testing import (
    Fault,
    SimulatorConfig,
    SimulatorServer,
    client_for,
    fixed_duration,
    serve,
)

from .. import ROOT
from ..meters import peak_rss_mb
from ..probe import Measured, Probe, key_shows
from ..simulator import KEY

__all__ = ["SCENARIOS", "Measured", "main", "run_all"]

#: An image the simulator makes up (boxes from a digest of the URL), never fetched.
IMAGE = "https://example.com/portraits/ada.png"


@attrs.frozen
class Scenario:
    """One misbehaviour: what the service does, and the call that meets it."""

    name: str
    behaviour: str
    run: Callable[[SimulatorServer, EmojiClient, Probe], Awaitable[None]]
    #: Settings of the simulator beyond the scenarios' common ones.
    settings: dict[str, Any] = attrs.field(factory=dict)


async def _task(client: EmojiClient) -> Any:
    """A task submitted normally (detect, then submit), for the scenarios that poll it."""
    face = await client.detect(IMAGE)
    return await client.submit(
        IMAGE, Template.MENGWA_KAIXIN, face_bbox=face.face_bbox, ext_bbox=face.ext_bbox
    )


# -- the scenarios -----------------------------------------------------------------------


def _poll_meets(fault: Fault) -> Callable[[SimulatorServer, EmojiClient, Probe], Awaitable[None]]:
    """A task submitted normally, then one ``refresh()`` that meets ``fault``."""

    async def run(server: SimulatorServer, client: EmojiClient, probe: Probe) -> None:
        task = await _task(client)
        server.simulator.faults.add(fault)
        probe.start()
        await task.refresh()

    return run


async def _drip_submit(server: SimulatorServer, client: EmojiClient, probe: Probe) -> None:
    server.simulator.faults.add(Fault("submit", "drip", times=100))
    await client.generate(IMAGE, Template.MENGWA_KAIXIN, timeout=3)


async def _drip_download(server: SimulatorServer, client: EmojiClient, probe: Probe) -> None:
    video = await client.generate(IMAGE, Template.MENGWA_KAIXIN)
    server.simulator.faults.add(Fault("download", "drip", times=100))
    probe.start()
    with tempfile.TemporaryDirectory() as folder:
        await client.download(video, folder + os.sep)


async def _huge_retry_after(server: SimulatorServer, client: EmojiClient, probe: Probe) -> None:
    server.simulator.faults.add(
        Fault("detect", "status", status=429, code="Throttling.RateQuota", retry_after=1e12)
    )
    try:
        await client.detect(IMAGE)
    finally:
        probe.stop()
        # The next detect of the same client: is it held by the first one's wait?
        began = time.monotonic()
        try:
            async with asyncio.timeout(30):
                await client.detect(IMAGE + "?next")
            probe.facts["next detect"] = f"ok in {time.monotonic() - began:.1f} s"
        except TimeoutError:
            probe.facts["next detect"] = "still held after 30 s"
        except EmojiError as exc:
            probe.facts["next detect"] = f"{type(exc).__name__} in {time.monotonic() - began:.1f} s"


async def _wrong_key_batch(server: SimulatorServer, client: EmojiClient, probe: Probe) -> None:
    jobs = [EmojiJob(f"{IMAGE}?n={n}", Template.MENGWA_KAIXIN) for n in range(40)]
    async with client_for(server, api_key="sk-wrong") as wrong:
        outcomes = await wrong.generate_many(jobs)
    probe.facts["jobs"] = len(jobs)
    probe.facts["failed"] = sum(1 for o in outcomes if o.error is not None)
    kinds = {type(o.error).__name__ for o in outcomes if o.error is not None}
    probe.facts["errors"] = ", ".join(sorted(kinds))


def _detect_meets(fault: Fault) -> Callable[[SimulatorServer, EmojiClient, Probe], Awaitable[None]]:
    """One ``detect()`` that meets ``fault``."""

    async def run(server: SimulatorServer, client: EmojiClient, probe: Probe) -> None:
        server.simulator.faults.add(fault)
        await client.detect(IMAGE)

    return run


def _submit_names(task_id: str) -> Callable[[SimulatorServer, EmojiClient, Probe], Awaitable[None]]:
    """One ``generate()`` whose submit answer names ``task_id`` (``{task_id}``: the real id).

    Whether the video is of a task made from the job's own image is read from the
    simulator's record, not from what the client says.
    """

    async def run(server: SimulatorServer, client: EmojiClient, probe: Probe) -> None:
        server.simulator.faults.add(Fault("submit", "odd_task_id", task_id=task_id))
        video = await client.generate(IMAGE, Template.MENGWA_KAIXIN)
        made = server.simulator.task(video.task_id)
        probe.facts["video's task made from its image"] = (
            made is not None and made.image_url == IMAGE
        )

    return run


async def _gzip_video(server: SimulatorServer, client: EmojiClient, probe: Probe) -> None:
    video = await client.generate(IMAGE, Template.MENGWA_KAIXIN)
    server.simulator.faults.add(Fault("download", "gzip", times=100))
    probe.start()
    with tempfile.TemporaryDirectory() as folder:
        path = await client.download(video, folder + os.sep)
        probe.facts["saved bytes"] = path.stat().st_size


async def _every_video_five_seconds(
    server: SimulatorServer, client: EmojiClient, probe: Probe
) -> None:
    templates = (Template.MENGWA_KAIXIN, Template.DAGONG_WEIXIAO, Template.JINGDIAN_DEYI_1)
    jobs = [EmojiJob(f"{IMAGE}?n={n}", templates[n % 3]) for n in range(6)]
    outcomes = await client.generate_many(jobs, budget=Budget(video_seconds=12))
    tasks = [t for t in server.simulator.tasks() if t.status == "SUCCEEDED"]
    probe.facts["cap"] = "12 s"
    probe.facts["billed"] = f"{sum(t.video_seconds for t in tasks)} s"
    probe.facts["skipped"] = sum(1 for o in outcomes if o.skipped)


async def _throttle_burst(server: SimulatorServer, client: EmojiClient, probe: Probe) -> None:
    # 429s for longer than a job's retry deadline (12 s at 0.1: about 11 submits).
    server.simulator.faults.add(
        Fault("submit", "status", status=429, code="Throttling.RateQuota", times=20)
    )
    jobs = [EmojiJob(f"{IMAGE}?n={n}", Template.MENGWA_KAIXIN) for n in range(3)]
    outcomes = await client.generate_many(jobs)
    probe.facts["succeeded"] = f"{sum(1 for o in outcomes if o.ok)} of {len(jobs)}"


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "huge-poll",
            "a task query answered with 100 MiB of JSON",
            _poll_meets(Fault("query", "huge", size=100 * 2**20)),
        ),
        Scenario(
            "bomb-poll",
            "a task query answered with gzip inflating to 1 GiB",
            _poll_meets(Fault("query", "gzip_bomb", size=2**30)),
        ),
        Scenario(
            "drip-poll",
            "a task query's answer, one byte every 0.5 s",
            _poll_meets(Fault("query", "drip", times=100)),
        ),
        Scenario(
            "drip-detect",
            "a detect's answer, one byte every 0.5 s",
            _detect_meets(Fault("detect", "drip", times=100)),
        ),
        Scenario(
            "drip-submit",
            "generate(timeout=3), its submit's answer a byte every 0.5 s",
            _drip_submit,
        ),
        Scenario("drip-download", "a video, one byte every 0.5 s", _drip_download),
        Scenario(
            "huge-retry-after", "a detect answered 429 with Retry-After: 10^12", _huge_retry_after
        ),
        Scenario(
            "billing",
            "every detect answered 429 PrepaidBillOverdue",
            _detect_meets(
                Fault("detect", "status", status=429, code="PrepaidBillOverdue", times=10_000)
            ),
        ),
        Scenario("wrong-key", "40 jobs with a key the service refuses", _wrong_key_batch),
        Scenario(
            "unreadable-detect",
            "every detect answer cut short (billed)",
            _detect_meets(Fault("detect", "truncate", times=10_000)),
        ),
        Scenario(
            "echo-502",
            "a gateway's 502 quoting the request's headers",
            _detect_meets(Fault("detect", "echo_key", status=502, times=10_000)),
        ),
        Scenario(
            "echo-401",
            "a 401 quoting the Authorization header",
            _detect_meets(Fault("detect", "echo_key", status=401)),
        ),
        Scenario("dotdot-id", "a submit answer whose task id is '..'", _submit_names("..")),
        Scenario(
            "long-id",
            "a submit answer whose task id is 10 kB long",
            _submit_names("{task_id}" + "0" * 10_000),
        ),
        Scenario("gzip-video", "a video sent gzip-encoded, Content-Length compressed", _gzip_video),
        Scenario(
            "budget-5s",
            "every video billed 5 s; a batch capped at 12 s",
            _every_video_five_seconds,
            {"video_seconds": 5},
        ),
        Scenario(
            "throttle-burst",
            "3 jobs; 20 submits in a row answered 429 Throttling.RateQuota",
            _throttle_burst,
        ),
    )
}


# -- one scenario, in this process --------------------------------------------------------


async def measure(name: str, *, time_scale: float, bound: float) -> Measured:
    """Run scenario ``name`` once in this process (whose peak RSS it then owns)."""
    scenario = SCENARIOS[name]
    config = SimulatorConfig(
        time_scale=time_scale,
        durations=fixed_duration(10.0),
        render_videos=False,
        **scenario.settings,
    )
    async with serve(config) as server, client_for(server) as client:
        probe = Probe(server)
        finished = True
        try:
            async with asyncio.timeout(bound):
                await scenario.run(server, client, probe)
            outcome = "ok"
        except TimeoutError:
            finished, outcome = False, f"still running after {bound:g} s"
        except EmojiError as exc:
            outcome = type(exc).__name__
            probe.facts["key in error"] = key_shows(KEY, exc)
        except Exception as exc:  # what escapes is the finding
            outcome = f"{type(exc).__name__} (not the project's)"
        probe.stop()
        assert probe.ended is not None
        seconds = probe.ended - probe.began
        rss_growth = max(0.0, peak_rss_mb() - probe.rss_before)
        records = server.simulator.requests[probe.requests_before :]
        stats = server.simulator.stats
        probe.facts["detections billed"] = stats.detections_billed - probe.billed_before
        probe.facts["tasks created"] = stats.tasks_created - probe.created_before
        deadline = client.retry.deadline * time_scale
    requests: dict[str, int] = {}
    for record in records:
        requests[record.endpoint] = requests.get(record.endpoint, 0) + 1
    return Measured(
        name=name,
        outcome=outcome,
        seconds=seconds,
        deadline=deadline,
        requests=requests,
        rss_growth_mb=rss_growth,
        finished=finished,
        facts=probe.facts,
    )


# -- every scenario, each in a process of its own -----------------------------------------


def run_all(names: list[str], *, time_scale: float, bound: float) -> list[Measured]:
    """Each scenario in a child process; what each measured."""
    results: list[Measured] = []
    for name in names:
        argv = [sys.executable, "-m", "benchmarks.scenarios.hostile", "--one", name]
        argv += ["--time-scale", str(time_scale), "--bound", str(bound)]
        done = subprocess.run(  # noqa: S603 - this interpreter, this module
            argv, cwd=ROOT, capture_output=True, text=True, timeout=bound + 120, check=False
        )
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"scenario {name} failed to run:\n{done.stderr[-2000:]}")
        results.append(Measured(**json.loads(lines[-1])))
    return results


def table(results: list[Measured]) -> str:
    """The measurements as a Markdown table."""
    rows = [
        "| scenario | what the service does | how the call ended | time (s) | x deadline"
        " | requests | peak RSS growth (MiB) | more |",
        "| --- | --- | --- | ---: | ---: | --- | ---: | --- |",
    ]
    for m in results:
        sent = ", ".join(f"{n} {k}" for k, n in sorted(m.requests.items())) or "none"
        more = "; ".join(f"{k}: {v}" for k, v in m.facts.items())
        rows.append(
            f"| {m.name} | {SCENARIOS[m.name].behaviour} | {m.outcome} | {m.seconds:.1f}"
            f" | {m.of_deadline:.2f} | {sent} | {m.rss_growth_mb:.0f} | {more} |"
        )
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks hostile", description=__doc__)
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), default=[])
    parser.add_argument("--one", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--bound", type=float, default=90.0, help="seconds a scenario may run")
    args = parser.parse_args(argv)
    if args.one:
        measured = asyncio.run(measure(args.one, time_scale=args.time_scale, bound=args.bound))
        print(json.dumps(attrs.asdict(measured)))
        return
    names = args.only or list(SCENARIOS)
    print(f"hostile service: {len(names)} scenarios, time_scale {args.time_scale:g}")
    print(table(run_all(names, time_scale=args.time_scale, bound=args.bound)))


if __name__ == "__main__":
    main(sys.argv[1:])

"""``emoji-async demo``: a dozen portraits animated end to end against the built-in simulator.

The simulator runs in this process with the provider's limits and a
compressed clock; the client is the real one, over real HTTP, on the same
clock. The portraits are the simulator's own
sample images, which it fetches, checks and animates into real MP4 files.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

from .. import EmojiJob, JobOutcome, RetryPolicy, Template, file_name_for
from ..testing import SAMPLE_PORTRAITS, Simulator, SimulatorConfig, client_for, serve
from ._batch_command import print_summary, progress_console
from ._common import CommandError, counted
from ._progress import BatchProgress

__all__ = ["run_demo"]

#: Several series and lengths (2 to 5 s), cycled over the portraits.
_TEMPLATES = (
    Template.MENGWA_KAIXIN,
    Template.DAGONG_WEIXIAO,
    Template.JINGDIAN_DEYI_1,
    Template.MENGWA_JIDONG,
    Template.DAGONG_KUNHUO,
    Template.JINGDIAN_LANDUO_1,
)


def _describe(path: Path) -> str:
    """What the file holds, read back with PyAV as ``ffprobe`` would."""
    import av  # the demo extra; checked before the run starts

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        seconds = float(stream.duration * base) if stream.duration and base else 0.0
        # As a number: PyAV 19's AVRational prints "15/1" where a Fraction printed "15".
        fps = f"{float(stream.average_rate):g}" if stream.average_rate else "?"
        return (
            f"{stream.codec_context.name} {stream.codec_context.width}x"
            f"{stream.codec_context.height} @ {fps} fps, "
            f"{stream.frames} frames, {seconds:.1f} s"
        )


#: Real seconds each call of the demo may take (rendering a video included).
DEMO_CALL_SECONDS = 60.0


async def run_demo(*, out_dir: Path, time_scale: float, progress: str = "auto") -> int:
    """Animate the sample portraits; 0 when every video was made and saved."""
    config = SimulatorConfig(time_scale=time_scale)
    if not Simulator(config).renders_videos:
        raise CommandError(
            "the demo renders real videos, which needs PyAV and numpy: "
            "pip install 'emoji-async[video]'"
        )
    console = progress_console(progress)
    # The simulator renders each video as it is downloaded, in real seconds that the
    # compressed clock does not shorten (many at once on a busy machine): each call
    # gets a minute of real time, not the 10 s floor of a compressed clock.
    retry = RetryPolicy(deadline=DEMO_CALL_SECONDS / time_scale)
    async with serve(config) as server, client_for(server, retry=retry) as client:
        print(
            f"simulator at {server.base_url}: provider limits on, clock x{1 / time_scale:g} "
            f"(a 3 minute task takes {180 * time_scale:.1f} s)",
            flush=True,
        )
        jobs = [
            EmojiJob(server.sample_url(name), template, key=f"{name}-{template.value}")
            for name, template in zip(SAMPLE_PORTRAITS, itertools.cycle(_TEMPLATES), strict=False)
        ]
        earlier = await asyncio.to_thread(_clear_earlier_demo, out_dir, jobs)
        if earlier:
            print(f"replacing the {counted(earlier, 'video')} of an earlier demo in {out_dir}/")
        bar = BatchProgress(len(jobs), console=console, show=console is not None)
        started = time.monotonic()
        with bar:
            outcomes = await client.generate_many(jobs, download_to=out_dir, on_event=bar)
        makespan = time.monotonic() - started
        sim = server.simulator
        stats = sim.stats
        floor = sum(task.duration for task in sim.tasks()) * time_scale
    requests = sum(n for name, n in stats.requests_by_endpoint.items() if name in _API)
    footer = (
        f"{counted(stats.tasks_created, 'task')} for {counted(len(jobs), 'job')};"
        f" {requests / len(jobs):.1f} requests "
        f"per job; {stats.throttled} answered 429; makespan {makespan:.1f} s against "
        f"{floor:.1f} s of task run time on the account's single slot"
    )
    # Reading the files back is blocking work: off the event loop.
    await asyncio.to_thread(_report, outcomes, bar, out_dir, footer)
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def _clear_earlier_demo(out_dir: Path, jobs: list[EmojiJob]) -> int:
    """Remove the videos an earlier demo saved under this demo's names; how many there were.

    A batch never writes over a file, and the demo is meant to be run again;
    nothing but its own file names is touched.
    """
    removed = 0
    for job in jobs:
        path = out_dir / file_name_for(job.resolved_key)
        if path.is_file():
            path.unlink()
            removed += 1
    return removed


def _report(outcomes: list[JobOutcome], bar: BatchProgress, out_dir: Path, footer: str) -> None:
    print_summary(outcomes, bar.tally, out_dir)
    print()
    for outcome in outcomes:
        if outcome.path is not None:
            print(f"  {outcome.path}: {_describe(outcome.path)}")
    print()
    print(footer)
    print(f"the videos are in {out_dir.absolute()}/")


#: The service's own endpoints (not sample images or video downloads).
_API = frozenset({"detect", "submit", "query", "list", "cancel"})

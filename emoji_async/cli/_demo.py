"""``emoji-async demo``: the whole flow against the built-in simulator, printed as it happens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from .. import (
    EmojiClient,
    FaceRejectedError,
    PollPolicy,
    RateLimits,
    RetryPolicy,
    Task,
    Template,
    Timeouts,
    VideoResult,
)
from ..testing import SimulatorConfig, serve

__all__ = ["run_demo"]

_KEY = "sk-simulator"

#: (name, template, image query): one portrait the detector turns down, to show that path too.
_PORTRAITS: tuple[tuple[str, Template, str], ...] = (
    ("ada", Template.MENGWA_KAIXIN, ""),
    ("grace", Template.DAGONG_WEIXIAO, ""),
    ("alan", Template.JINGDIAN_DEYI_1, ""),
    ("edsger", Template.MENGWA_JIDONG, "?sim_reject=InvalidFile.FacePose"),
    ("barbara", Template.DAGONG_KAIXIN, ""),
    ("donald", Template.JINGDIAN_QIDAI, ""),
)

#: One task runs at a time per account; one more waits queued behind it, so
#: the provider's slot never idles while we poll (issue: bulk pacing).
_IN_FLIGHT = 2


async def run_demo(*, out_dir: Path, time_scale: float) -> int:
    """Animate the sample portraits; 0 when every expected video was saved."""
    config = SimulatorConfig(time_scale=time_scale)
    started = time.monotonic()

    def say(name: str, text: str) -> None:
        print(f"[{time.monotonic() - started:6.2f} s] {name:<8} {text}", flush=True)

    async with (
        serve(config) as server,
        EmojiClient(
            api_key=_KEY,
            base_url=server.base_url,
            poll=PollPolicy().scaled(time_scale),
            retry=RetryPolicy().scaled(time_scale),
            limits=RateLimits().scaled(time_scale),
            timeouts=Timeouts(),
        ) as client,
    ):
        print(f"simulator at {server.base_url} (time scale {time_scale:g}, provider limits on)")
        gate = asyncio.Semaphore(_IN_FLIGHT)

        async def one(name: str, template: Template, query: str) -> Path | None:
            url = f"https://example.com/portraits/{name}.png{query}"
            async with gate:
                try:
                    face = await client.detect(url)
                except FaceRejectedError as exc:
                    say(name, f"rejected by the detector: {exc.code} (billed, nothing submitted)")
                    return None
                say(name, f"face at {face.face_bbox.as_list()}, submitting {template.value}")
                task = await client.submit(
                    url, template, face_bbox=face.face_bbox, ext_bbox=face.ext_bbox
                )
                video = await _follow(task, name, say)
            path = await client.download(video, out_dir / f"{name}.mp4")
            say(name, f"saved {path} ({path.stat().st_size:,} bytes, {video.video_duration} s)")
            return path

        saved = await asyncio.gather(*(one(*portrait) for portrait in _PORTRAITS))
        stats = server.simulator.stats
        print()
        print(f"videos saved: {sum(p is not None for p in saved)} in {out_dir}/")
        print(
            f"simulator: {stats.tasks_created} tasks created, "
            f"{sum(stats.requests_by_endpoint.values())} requests, {stats.throttled} answered 429"
        )
    expected = sum(1 for _, _, query in _PORTRAITS if not query)
    return 0 if sum(p is not None for p in saved) == expected else 1


async def _follow(task: Task, name: str, say: Callable[[str, str], None]) -> VideoResult:
    # Prints each state change; the final wait() costs no request: the end is already known.
    async for snapshot in task.watch():
        say(name, f"task {task.task_id[:8]} {snapshot.status.value}")
    return await task.wait()

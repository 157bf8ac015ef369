"""Only type-checked (mypy --strict), never run: the public API reads as documented."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from emoji_async import (
    BBox,
    EmojiClient,
    FaceDetection,
    NoticeCounts,
    NotifyPolicy,
    PollPolicy,
    Task,
    TaskSnapshot,
    TaskStatus,
    Template,
    TemplateInfo,
    VideoResult,
    WaitTimeoutError,
    templates,
)
from emoji_async.notify import NoticeSink, TaskFinished


async def the_documented_flow() -> None:
    async with EmojiClient(api_key=None, base_url=None) as client:
        face: FaceDetection = await client.detect("https://example.com/p.png")
        box: BBox = face.face_bbox
        task: Task = await client.submit(
            "https://example.com/p.png",
            Template.MENGWA_KAIXIN,
            face_bbox=box,
            ext_bbox=face.ext_bbox,
        )
        snap: TaskSnapshot = await task.refresh()
        status: TaskStatus = snap.status
        when: dt.datetime | None = snap.end_time
        async for snap in task.watch(policy=PollPolicy(wait_first=1.0, deadline=60.0)):
            terminal: bool = snap.is_terminal
        try:
            video: VideoResult = await task.wait(timeout=600)
        except WaitTimeoutError as exc:
            last: TaskSnapshot | None = exc.snapshot
        await task.cancel()
        again: Task = client.task(task.task_id)
        video = await client.generate("https://example.com/p.png", "dagong_weixiao")
        saved: Path = await client.download(video, "videos/")
        listed: tuple[TemplateInfo, ...] = templates()
        del status, when, terminal, last, again, saved, listed


async def waiting_on_notifications(event: TaskFinished) -> None:
    policy = NotifyPolicy(grace=10.0, growth=2.0, cap=120.0)
    async with EmojiClient(notifications=policy) as client:
        sink: NoticeSink = client.notices
        await sink.deliver(event)
        counts: NoticeCounts = client.notices.counts
        unclaimed: tuple[TaskFinished, ...] = client.notices.unclaimed
        del counts, unclaimed

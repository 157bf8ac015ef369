"""The commands of one thing at a time: ``templates``, ``detect``, ``generate``, ``status``,
``cancel``, ``list``.

Results go to stdout (``--json`` where a script may read them); what happens
along the way goes to stderr, so ``> file`` keeps only the result.

``detect`` and ``generate`` take a URL or a local file as IMAGE_URL. A local
file is checked before the client opens: a missing or unusable one is a usage
error (exit status 2) that sends nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from .. import (
    EmojiJob,
    Lane,
    TaskNotCancelableError,
    TaskPage,
    TaskSnapshot,
    TaskStatus,
    ValidationError,
    check_image,
    events,
    templates,
)
from ._common import CommandError, counted, local_time, not_a_video, open_client

__all__ = ["cmd_cancel", "cmd_detect", "cmd_generate", "cmd_list", "cmd_status", "cmd_templates"]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _print_fields(fields: dict[str, Any]) -> None:
    width = max(len(name) for name in fields)
    for name, value in fields.items():
        if value is not None:
            print(f"{name + ':':<{width + 1}} {value}")


def _checked_image(text: str) -> str:
    """IMAGE_URL as given; a local file is read and checked first (the client uploads it)."""
    try:
        check_image(text, field="IMAGE_URL")
    except ValidationError as exc:
        raise CommandError(str(exc), status=2) from None
    return text


# --- templates, detect ---------------------------------------------------------------


def cmd_templates(args: argparse.Namespace) -> int:
    for info in templates():
        print(f"{info.driven_id:<20} {info.video_seconds} s  {info.description}")
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    image = _checked_image(args.image_url)

    async def run() -> dict[str, Any]:
        async with open_client(args) as client:
            face = await client.detect(image)
        return {
            "face_bbox": face.face_bbox.as_list(),
            "ext_bbox": face.ext_bbox.as_list(),
            "request_id": face.request_id,
        }

    found = asyncio.run(run())
    if args.json:
        print(json.dumps(found))
    else:
        _print_fields(
            {
                "face_bbox": " ".join(map(str, found["face_bbox"])),
                "ext_bbox": " ".join(map(str, found["ext_bbox"])),
                "request_id": found["request_id"],
            }
        )
    return 0


# --- generate -----------------------------------------------------------------------


class _Narrator:
    """Tells a single job's events on stderr, one line each, and remembers its task id."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.task_id: str | None = None

    def __call__(self, event: events.JobEvent) -> None:
        text: str | None
        match event:
            case events.Detected(face_bbox=face, ext_bbox=ext):
                text = f"face found at {face.as_list()}, extended box {ext.as_list()}"
            case events.Submitted(task_id=task_id):
                self.task_id = task_id
                text = f"submitted: task {task_id}"
            case events.Queued(ahead=ahead):
                text = "queued (PENDING)" + (f", {ahead} of ours ahead" if ahead else "")
            case events.Running():
                text = "running"
            case events.Succeeded(video=video):
                text = f"succeeded: a {video.video_duration} s video"
            case events.Downloaded(path=path, size=size):
                text = f"saved {path} ({size:,} bytes)"
            case events.Retrying(endpoint=endpoint, attempt=attempt, wait=wait, reason=reason):
                text = f"retrying {endpoint} (attempt {attempt}) in {wait:.2f} s: {reason}"
            case events.Throttled(endpoint=endpoint, wait=wait):
                text = f"throttled on {endpoint}: waiting {wait:.2f} s"
            case _:
                text = None  # Failed: the error is the command's own last line
        if text is not None:
            _say(f"[{event.at - self.started:7.2f} s] {text}")


def cmd_generate(args: argparse.Namespace) -> int:
    narrator = _Narrator()
    job = EmojiJob(_checked_image(args.image_url), args.template)

    async def run() -> int:
        async with open_client(args) as client:
            # Someone waits at the terminal: interactive, ahead of the account's batches.
            (outcome,) = await client.generate_many(
                [job],
                download_to=args.out,
                on_event=narrator,
                timeout=args.timeout,
                lane=Lane.INTERACTIVE,
            )
        if outcome.error is not None:
            raise outcome.error
        video = outcome.video
        assert video is not None
        _print_fields(
            {
                "task_id": video.task_id,
                "video_url": video.video_url,
                "video_duration": f"{video.video_duration} s",
                "url_expires_at": local_time(video.url_expires_at),
                "file": outcome.path,
                "warning": None if outcome.path is None else not_a_video(outcome.path),
            }
        )
        return 0

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        if narrator.task_id is not None:
            _say(
                f"interrupted; task {narrator.task_id} goes on without us: "
                f"'emoji-async status --wait {narrator.task_id}' follows it"
            )
        raise


# --- status, cancel, list -----------------------------------------------------------


def _snapshot_fields(snap: TaskSnapshot) -> dict[str, Any]:
    return {
        "task_id": snap.task_id,
        "status": snap.raw_status,
        "submit_time": local_time(snap.submit_time),
        "scheduled_time": local_time(snap.scheduled_time),
        "end_time": local_time(snap.end_time),
        "video_url": snap.video_url,
        "video_duration": None if snap.usage is None else snap.usage.video_duration,
        "code": snap.code,
        "message": snap.message,
        "request_id": snap.request_id,
    }


def cmd_status(args: argparse.Namespace) -> int:
    async def run() -> TaskSnapshot:
        async with open_client(args) as client:
            task = client.task(args.task_id)
            if not args.wait:
                return await task.refresh()
            started = time.monotonic()
            async for snap in task.watch(timeout=args.timeout):
                _say(f"[{time.monotonic() - started:7.2f} s] {snap.raw_status}")
            assert task.last_snapshot is not None
            return task.last_snapshot

    snap = asyncio.run(run())
    fields = _snapshot_fields(snap)
    if args.json:
        print(json.dumps(fields))
    else:
        if fields["video_duration"] is not None:
            fields["video_duration"] = f"{fields['video_duration']} s"
        _print_fields(fields)
    if args.wait and snap.status is not TaskStatus.SUCCEEDED:
        what = f": {snap.code}: {snap.message}" if snap.code else ""
        raise CommandError(f"task {snap.task_id} ended {snap.raw_status}{what}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    async def run() -> None:
        async with open_client(args) as client:
            task = client.task(args.task_id)
            try:
                await task.cancel()
            except TaskNotCancelableError as exc:
                # The cancel looked the task up before raising: say what it found.
                raise _not_canceled(exc, task.last_snapshot) from None

    asyncio.run(run())
    print(f"canceled task {args.task_id}")
    return 0


def _not_canceled(exc: TaskNotCancelableError, snap: TaskSnapshot | None) -> Exception:
    """Why a task could not be cancelled: it does not exist, or it is no longer PENDING."""
    if snap is None or snap.status is TaskStatus.PENDING:
        return exc  # PENDING again by now: the service's own words are all there is
    answer = " ".join(filter(None, [f"HTTP {exc.http_status}", exc.code])) + (
        f", request_id={exc.request_id}" if exc.request_id else ""
    )
    if snap.status is TaskStatus.UNKNOWN:
        return CommandError(
            f"task {exc.task_id} does not exist: the service knows no task of that id"
            f" (it forgets a task 24 h after its submit) ({answer})"
        )
    return CommandError(
        f"cannot cancel task {exc.task_id}: it is {snap.raw_status}, and only a PENDING task"
        f" can be cancelled ({answer})"
    )


def cmd_list(args: argparse.Namespace) -> int:
    status = None if args.status is None else TaskStatus(args.status.upper())

    async def run() -> TaskPage:
        async with open_client(args) as client:
            return await client.list_tasks(status=status, page=args.page, page_size=args.page_size)

    page = asyncio.run(run())
    rows = [
        {
            "task_id": t.task_id,
            "status": t.raw_status,
            "model": t.model_name,
            "created": local_time(t.created_at),
            "started": local_time(t.started_at),
            "ended": local_time(t.ended_at),
        }
        for t in page.tasks
    ]
    if args.json:
        print(
            json.dumps(
                {
                    "total": page.total,
                    "page": page.page_no,
                    "pages": page.total_pages,
                    "page_size": page.page_size,
                    "unreadable": page.unreadable,
                    "tasks": rows,
                }
            )
        )
        return 0
    in_all = counted(page.total, "task")
    # Rows the service sent that could not be read are said, never passed over in silence.
    unreadable = counted(page.unreadable, "unreadable row")
    left_out = f" ({unreadable} left out)" if page.unreadable else ""
    if page.total == 0:
        which = "tasks" if status is None else f"{status.value} tasks"
        print(f"no {which} in the last 24 h")
    elif not rows and page.unreadable:
        print(f"page {page.page_no} of {page.total_pages}: {in_all} in all{left_out}")
    elif not rows:
        pages = counted(page.total_pages, "page")
        print(f"no page {page.page_no}: {in_all} in all, on {pages} of {page.page_size}")
    else:
        print(f"{'TASK ID':<36}  {'STATUS':<9}  {'CREATED':<29}  ENDED")
        for row in rows:
            print(
                f"{row['task_id']:<36}  {row['status']:<9}  {row['created'] or '-':<29}  "
                f"{row['ended'] or '-'}"
            )
        print(f"page {page.page_no} of {page.total_pages}: {in_all} in all{left_out}")
    return 0

"""Animate every portrait listed in a CSV file, resumably.

The file has a header and one job a line (``jobs.csv`` beside this script is
one)::

    image,driven_id,key,face_bbox,ext_bbox
    https://example.com/portraits/ada.png,mengwa_kaixin,ada,248 177 472 417,120 66 648 594
    ./portraits/grace.jpg,dagong_weixiao,grace,,

``image`` is a URL or a local file, ``driven_id`` the template, ``key`` names
the video (``<out>/<key>.mp4``); the boxes are optional (``x1 y1 x2 y2``, from
an earlier detection: they save one billed detection each).

Run it, interrupt it (Ctrl-C, a crash, a reboot), run it again::

    export DASHSCOPE_API_KEY=sk-...
    python bulk_csv.py jobs.csv --out videos/

The journal (``videos/journal.db``) records every step before it is taken, so
the second run downloads what had finished, follows the tasks already
submitted by their ids, and submits only the jobs that never were: no job is
paid for twice. ``emoji-async batch`` does the same from the command line;
this is the library version, to build on.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

from emoji_async import EmojiClient, EmojiJob, JobOutcome, events


def read_jobs(path: Path) -> list[EmojiJob]:
    """The jobs of a CSV file, one per line after the header."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            EmojiJob(
                row["image"],
                row["driven_id"],
                key=row.get("key") or None,
                face_bbox=boxes(row.get("face_bbox")),
                ext_bbox=boxes(row.get("ext_bbox")),
            )
            for row in csv.DictReader(handle)
        ]


def boxes(cell: str | None) -> list[int] | None:
    """``"x1 y1 x2 y2"`` as four ints; an empty cell as ``None``."""
    return [int(part) for part in cell.split()] if cell and cell.strip() else None


def show(event: events.JobEvent) -> None:
    """Print what each job does, as it happens."""
    match event:
        case events.Resumed(state=state):
            print(f"{event.key}: known from an earlier run ({state})")
        case events.Submitted(task_id=task_id):
            print(f"{event.key}: submitted as task {task_id}")
        case events.Downloaded(path=path):
            print(f"{event.key}: saved {path}")


async def run(
    client: EmojiClient,
    jobs_file: Path,
    out: Path,
    *,
    journal: Path | None = None,
    on_event: events.EventHandler | None = show,
) -> list[JobOutcome]:
    """Run every job of ``jobs_file``; the videos go to ``out``, the journal beside them."""
    jobs = read_jobs(jobs_file)  # a small file: read at once, before anything is sent
    return await client.generate_many(
        jobs,
        journal=journal or out / "journal.db",
        download_to=out,
        on_event=on_event,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Animate every portrait of a CSV file.")
    parser.add_argument("jobs", type=Path, help="the CSV file")
    parser.add_argument("--out", type=Path, default=Path("videos"), help="where videos go")
    args = parser.parse_args(argv)

    async def batch() -> list[JobOutcome]:
        async with EmojiClient() as client:
            return await run(client, args.jobs, args.out)

    outcomes = asyncio.run(batch())
    failed = [outcome for outcome in outcomes if not outcome.ok]
    for outcome in failed:
        print(f"{outcome.key}: {outcome.error}", file=sys.stderr)
    print(f"{len(outcomes) - len(failed)} of {len(outcomes)} videos in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

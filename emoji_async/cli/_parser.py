"""The ``emoji-async`` argument parser: every command, its options, its help and example.

The commands that talk to the service are set up here; the local ones
(``simulator``, ``demo``) in :mod:`._local`. Each option's value is checked by
its type (:mod:`._argtypes`) as it is parsed.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from .. import ENV_API_KEY, Lane, TaskStatus
from . import _argtypes as argtypes
from ._batch_command import cmd_batch
from ._common import add_service_options
from ._local import SubParsers, add_demo, add_simulator
from ._tasks import cmd_cancel, cmd_detect, cmd_generate, cmd_list, cmd_status, cmd_templates

__all__ = ["build_parser"]


def _add(
    sub: SubParsers,
    name: str,
    *,
    summary: str,
    description: str,
    example: str,
    service: bool = True,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=summary,
        # Raw, so the example keeps its lines; the prose is wrapped here instead.
        description=textwrap.fill(description, 79),
        epilog="example:\n" + "\n".join(f"  {line}" for line in example.splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if service:
        add_service_options(parser)
    return parser


def _add_portrait(parser: argparse.ArgumentParser) -> None:
    """``IMAGE_URL``, the portrait a command detects or animates."""
    parser.add_argument(
        "image_url",
        metavar="IMAGE_URL",
        type=argtypes.image_url,
        help="the portrait: a URL, or a local image file (uploaded for you)",
    )


def _add_task_id(parser: argparse.ArgumentParser) -> None:
    """``TASK_ID``, the task a command looks at or cancels."""
    parser.add_argument("task_id", metavar="TASK_ID", type=argtypes.task_id, help="the task's id")


def _add_json(parser: argparse.ArgumentParser) -> None:
    """``--json``: the result as one JSON object instead of lines for a person."""
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def build_parser() -> argparse.ArgumentParser:
    """The ``emoji-async`` parser: each command's parser sets ``run``, the function it runs."""
    parser = argparse.ArgumentParser(
        prog="emoji-async",
        description=(
            "Animate portraits with the DashScope Emoji service. The commands that talk to "
            f"the service read the API key from {ENV_API_KEY}."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _add(
        sub,
        "templates",
        summary="list the expression templates (driven_id values)",
        description=(
            "Print the templates a job may animate a portrait with, one a line: its id (the "
            "driven_id a jobs file and 'generate' take), the length of the video it makes "
            "(what is billed), and the expression. Sends nothing."
        ),
        example="emoji-async templates",
        service=False,
    )
    p.set_defaults(run=cmd_templates)

    p = _add(
        sub,
        "detect",
        summary="find the face in a portrait (billed): the boxes a submit needs",
        description=(
            "Run the face detection on IMAGE_URL and print the face box and the extended "
            "box (x1 y1 x2 y2, in pixels). A portrait the detector turns down is an error "
            "(and still billed)."
        ),
        example="emoji-async detect https://example.com/portraits/ada.png --json",
    )
    _add_portrait(p)
    _add_json(p)
    p.set_defaults(run=cmd_detect)

    p = _add(
        sub,
        "generate",
        summary="animate one portrait: detect, submit, wait, and save the video",
        description=(
            "Detect the face in IMAGE_URL, submit a task animating it with TEMPLATE (paid), "
            "wait for it, and print the video's URL and length; with --out, save the MP4 "
            "there. Each step is told on stderr; the result goes to stdout."
        ),
        example=(
            "emoji-async generate https://example.com/portraits/ada.png mengwa_kaixin --out videos/"
        ),
    )
    _add_portrait(p)
    p.add_argument(
        "template",
        metavar="TEMPLATE",
        type=argtypes.template,
        help="a driven_id, e.g. mengwa_kaixin",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="save the video in this directory")
    p.add_argument(
        "--timeout",
        type=argtypes.positive,
        metavar="S",
        help="give up waiting after S seconds (the task goes on; default: the poll deadline)",
    )
    p.set_defaults(run=cmd_generate)

    p = _add(
        sub,
        "batch",
        summary="animate every job of a .csv or .jsonl file; resumable",
        description=(
            "Read JOBS_FILE (.csv with a header row, or .jsonl; see docs/cli.md), check every "
            "line before sending anything, then run the jobs at the provider's pace with a "
            "progress bar on stderr, saving each video as DIR/<key>.mp4, and print a summary "
            "table on stdout. The journal records every paid step: run the same command "
            "again after a crash or Ctrl-C and it resumes without paying twice. Exit status: "
            "0 all succeeded, 1 some failed, 2 a bad jobs file or option, 3 the service refused "
            "the account (the batch stopped; the same command resumes), 130 interrupted."
        ),
        example=(
            "emoji-async batch docs/examples/jobs.csv --out videos/ --journal videos/batch.db"
        ),
    )
    p.add_argument("jobs_file", metavar="JOBS_FILE", type=Path, help="the jobs (.csv or .jsonl)")
    p.add_argument(
        "--out", type=Path, metavar="DIR", required=True, help="where to save the videos"
    )
    p.add_argument(
        "--journal",
        type=Path,
        metavar="FILE",
        required=True,
        help="the batch's journal (SQLite); the same journal resumes the batch",
    )
    p.add_argument(
        "--concurrency",
        type=argtypes.count,
        metavar="N",
        help="jobs in flight at once (default: enough to keep the provider's slot busy)",
    )
    p.add_argument(
        "--timeout",
        type=argtypes.positive,
        metavar="S",
        help="per job: give up waiting for its task after S seconds",
    )
    p.add_argument(
        "--lane",
        choices=[lane.value for lane in Lane],
        default=Lane.BULK.value,
        help="bulk (default): interactive submits of the account go first and may move this"
        " batch's queued tasks aside; interactive: this batch goes first",
    )
    p.add_argument(
        "--cancel-pending-on-interrupt",
        action="store_true",
        help="on Ctrl-C, also cancel the batch's tasks still PENDING (not billed)",
    )
    money = p.add_argument_group(
        "budget",
        "cap what the batch is billed (earlier runs of its journal count too): a job starts "
        "only if the most it can cost still fits; the rest are skipped, not failed",
    )
    money.add_argument(
        "--budget-seconds",
        type=argtypes.whole,
        metavar="N",
        help="at most N billed seconds of video",
    )
    money.add_argument(
        "--budget-detections", type=argtypes.whole, metavar="N", help="at most N billed detections"
    )
    money.add_argument(
        "--price-video",
        type=argtypes.price,
        metavar="X",
        help="your price per billed second of video, for the cost estimate in the summary",
    )
    money.add_argument(
        "--price-detection",
        type=argtypes.price,
        metavar="Y",
        help="your price per billed detection, for the cost estimate in the summary",
    )
    p.add_argument(
        "--progress",
        choices=argtypes.PROGRESS_MODES,
        default="auto",
        help="draw the progress bar on stderr: auto (on a terminal), always, never",
    )
    p.set_defaults(run=cmd_batch)

    p = _add(
        sub,
        "status",
        summary="show a task's state (--wait: follow it to the end)",
        description=(
            "Query TASK_ID once and print what the service knows of it. With --wait, poll "
            "until it ends (each state change on stderr); the exit status is then 0 only if "
            "it SUCCEEDED."
        ),
        example="emoji-async status 0385dc79-5ff8-4bb2-9e3a-5b7b2d4c1e0a --wait",
    )
    _add_task_id(p)
    p.add_argument("--wait", action="store_true", help="wait for the task to end")
    p.add_argument(
        "--timeout",
        type=argtypes.positive,
        metavar="S",
        help="with --wait: give up after S seconds",
    )
    _add_json(p)
    p.set_defaults(run=cmd_status)

    p = _add(
        sub,
        "cancel",
        summary="cancel a task that is still PENDING",
        description=(
            "Cancel TASK_ID. Only a PENDING task can be cancelled; one that runs or has "
            "ended is an error."
        ),
        example="emoji-async cancel 0385dc79-5ff8-4bb2-9e3a-5b7b2d4c1e0a",
    )
    _add_task_id(p)
    p.set_defaults(run=cmd_cancel)

    p = _add(
        sub,
        "list",
        summary="list the account's emoji-v1 tasks of the last 24 h",
        description="Print one page of the account's emoji-v1 tasks of the last 24 h.",
        example="emoji-async list --status RUNNING --page-size 20",
    )
    p.add_argument(
        "--status",
        type=str.upper,
        choices=[s.value for s in TaskStatus if s is not TaskStatus.OTHER],
        help="only tasks in this state",
    )
    p.add_argument(
        "--page", type=argtypes.count, default=1, metavar="N", help="page number (from 1)"
    )
    p.add_argument(
        "--page-size",
        type=argtypes.page_size,
        default=10,
        metavar="N",
        help="tasks per page (1 to 100)",
    )
    _add_json(p)
    p.set_defaults(run=cmd_list)

    add_simulator(sub)
    add_demo(sub)
    return parser

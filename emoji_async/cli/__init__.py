"""The ``emoji-async`` command line: argument parsing and printing, no business logic.

Commands: ``templates``, ``detect``, ``generate``, ``batch``, ``status``,
``cancel``, ``list`` (those that talk to the service read the key from
``DASHSCOPE_API_KEY`` only), and ``simulator`` and ``demo`` for local runs.
Exit status: 0 success, 1 a failed command, 2 a usage error, 3 (``batch``) the
service refused the account, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._config import ENV_API_KEY
from .._errors import EmojiError, ValidationError
from .._models import TaskStatus
from .._templates import template_info, templates
from .._validation import check_image_url
from ._batch_command import INTERRUPTED, cmd_batch
from ._common import CommandError, add_service_options, positive
from ._jobsfile import JobsFileError
from ._tasks import cmd_cancel, cmd_detect, cmd_generate, cmd_list, cmd_status

__all__ = ["main"]


def _cmd_templates(args: argparse.Namespace) -> int:
    for info in templates():
        print(f"{info.driven_id:<20} {info.video_seconds} s  {info.description}")
    return 0


#: The kinds of ``--chaos-kind``: ``emoji_async.testing.CHAOS_KINDS``, spelt out
#: here so that ``--help`` does not import the simulator (a test keeps them equal).
_CHAOS_KINDS = (
    "server_error",
    "server_error_retry_after",
    "server_error_after",
    "reset_before",
    "reset_after",
    "slow_before",
    "slow_after",
    "truncated",
    "missing_field",
    "throttle_burst",
    "cut_download",
    "late",
    "odd_status_after",
    "huge_answer",
    "gzip_bomb",
    "drip",
    "huge_retry_after",
    "billing",
    "echoed_key",
    "odd_task_id",
    "gzip_download",
)
#: The choices of the simulator's open points (``SimulatorConfig.list_zone``,
#: ``list_order``, ``empty_page``), spelt out for the same reason.
_LIST_ZONES = ("UTC+8", "UTC")
_LIST_ORDERS = ("newest_first", "oldest_first")
_EMPTY_PAGES = ("data", "bare")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a probability from 0 to 1, got {text!r}")
    return value


def _chaos_kind(text: str) -> tuple[str, float]:
    kind, sign, rate = text.partition("=")
    kind = kind.strip()
    if not sign or kind not in _CHAOS_KINDS:
        raise argparse.ArgumentTypeError(
            f"expected KIND=P with KIND one of {', '.join(_CHAOS_KINDS)}, got {text!r}"
        )
    return kind, _probability(rate.strip())


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}")
    return value


def _late_after(text: str) -> tuple[float, float]:
    low_text, sign, high_text = text.partition(":")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        low = high = math.nan
    if not sign or not (math.isfinite(low) and math.isfinite(high)) or not 0 <= low <= high:
        raise argparse.ArgumentTypeError(
            f"expected LOW:HIGH provider seconds with 0 <= LOW <= HIGH, got {text!r}"
        )
    return low, high


def _mount_point(text: str) -> str:
    from ..testing import SimulatorConfig

    try:
        return SimulatorConfig(api_prefix=text).api_prefix
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a URL path such as /api/v1 or /qwen/api/v1, got {text!r}"
        ) from None


def _cmd_simulator(args: argparse.Namespace) -> int:
    from ..testing import Chaos, ServiceLimits, Simulator, SimulatorConfig, run_forever

    # The simulator logs what it cannot do here (no PyAV: no real videos) as it starts.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)

    chaos = None
    if args.chaos is not None or args.chaos_kind:
        settings: dict[str, Any] = dict(args.chaos_kind or [])
        if args.chaos_slow is not None:
            settings["slow_seconds"] = args.chaos_slow
        if args.late_after is not None:
            settings["late_after"] = args.late_after
        chaos = Chaos.uniform(args.chaos or 0.0, seed=args.chaos_seed, **settings)
        rates = ", ".join(f"{kind} {p:g}" for kind, p in chaos.probabilities.items() if p)
        print(f"chaos (seed {chaos.seed}): {rates or 'nothing'}", file=sys.stderr, flush=True)
    simulator = Simulator(
        SimulatorConfig(
            api_keys=frozenset(args.api_key or ["sk-simulator"]),
            time_scale=args.time_scale,
            limits=None if args.no_limits else ServiceLimits(),
            seed=args.seed,
            api_prefix=args.prefix,
            chaos=chaos,
            list_zone=args.list_zone,
            clock_skew=args.clock_skew,
            list_order=args.list_order,
            empty_page=args.empty_page,
            pending_times=not args.no_pending_times,
        )
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it is meant to stop
        asyncio.run(run_forever(simulator, args.host, args.port))
    if chaos is not None:
        played = simulator.stats.faults_by_kind
        counts = ", ".join(f"{kind} {played[kind]}" for kind in sorted(played))
        print(f"faults played: {counts or 'none'}", file=sys.stderr, flush=True)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return asyncio.run(
        run_demo(out_dir=args.out, time_scale=args.time_scale, progress=args.progress)
    )


def _image_url(text: str) -> str:
    try:
        return check_image_url(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"expected {exc.allowed}, got {text!r}") from None


def _template(text: str) -> str:
    if template_info(text) is None:
        raise argparse.ArgumentTypeError(
            f"unknown template {text!r} ('emoji-async templates' lists the 20 ids)"
        )
    return text


def _whole_from(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if value < least:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, got {text!r}")
        return value

    return parse


_count = _whole_from(1)
_whole = _whole_from(0)


def _price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a price >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a price >= 0, got {text!r}")
    return value


def _page_size(text: str) -> int:
    value = _count(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 100, got {text!r}")
    return value


def _task_id(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a task id, got an empty string")
    return text


def _add(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
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


def _parser() -> argparse.ArgumentParser:
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
    p.set_defaults(run=_cmd_templates)

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
    p.add_argument(
        "image_url",
        metavar="IMAGE_URL",
        type=_image_url,
        help="the portrait: a URL, or a local image file (uploaded for you)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
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
    p.add_argument(
        "image_url",
        metavar="IMAGE_URL",
        type=_image_url,
        help="the portrait: a URL, or a local image file (uploaded for you)",
    )
    p.add_argument(
        "template", metavar="TEMPLATE", type=_template, help="a driven_id, e.g. mengwa_kaixin"
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="save the video in this directory")
    p.add_argument(
        "--timeout",
        type=positive,
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
        type=_count,
        metavar="N",
        help="jobs in flight at once (default: enough to keep the provider's slot busy)",
    )
    p.add_argument(
        "--timeout",
        type=positive,
        metavar="S",
        help="per job: give up waiting for its task after S seconds",
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
        "--budget-seconds", type=_whole, metavar="N", help="at most N billed seconds of video"
    )
    money.add_argument(
        "--budget-detections", type=_whole, metavar="N", help="at most N billed detections"
    )
    money.add_argument(
        "--price-video",
        type=_price,
        metavar="X",
        help="your price per billed second of video, for the cost estimate in the summary",
    )
    money.add_argument(
        "--price-detection",
        type=_price,
        metavar="Y",
        help="your price per billed detection, for the cost estimate in the summary",
    )
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
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
    p.add_argument("task_id", metavar="TASK_ID", type=_task_id, help="the task's id")
    p.add_argument("--wait", action="store_true", help="wait for the task to end")
    p.add_argument(
        "--timeout", type=positive, metavar="S", help="with --wait: give up after S seconds"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
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
    p.add_argument("task_id", metavar="TASK_ID", type=_task_id, help="the task's id")
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
    p.add_argument("--page", type=_count, default=1, metavar="N", help="page number (from 1)")
    p.add_argument(
        "--page-size", type=_page_size, default=10, metavar="N", help="tasks per page (1 to 100)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_list)

    p = sub.add_parser(
        "simulator",
        help="run the built-in simulator of the service on a local port",
        description=textwrap.fill(
            "Serve a simulator of the Emoji service until interrupted: the provider's "
            "endpoints, limits and answers, as the docs page 'The wire protocol' "
            "(docs/wire.md) describes them. Without PyAV it says so as it starts, and "
            "serves text placeholders instead of videos.",
            79,
        ),
        epilog=(
            "example:\n  emoji-async simulator --port 8000 --time-scale 0.01\n"
            "  # then, in another shell:\n"
            "  DASHSCOPE_API_KEY=sk-simulator emoji-async batch jobs.csv --out videos "
            "--journal batch.db \\\n"
            "      --base-url http://127.0.0.1:8000/api/v1 --time-scale 0.01\n"
            "\n"
            "chaos (random faults, after authentication; the tasks themselves stay true):\n"
            "  emoji-async simulator --time-scale 0.01 --chaos 0.01 --chaos-seed 7 \\\n"
            "      --chaos-kind reset_after=0.1 --chaos-kind cut_download=0\n"
            "  Each request rolls one die per kind with its probability (at most one fault\n"
            "  a request); the n-th request to an endpoint gets the same fault for the same\n"
            "  seed. On Ctrl-C the faults played are counted by kind on stderr. Kinds:\n"
            "    server_error              500/502/503, no Retry-After, before processing\n"
            "    server_error_retry_after  the same with Retry-After\n"
            "    server_error_after        500/502/503 after the request took effect\n"
            "    reset_before, reset_after the connection drops, before/after processing\n"
            "    slow_before, slow_after   the answer comes --chaos-slow seconds late;\n"
            "                              _before processes only after the wait\n"
            "    truncated                 the answer's body cut mid-way (not JSON)\n"
            "    missing_field             a JSON answer without output, task_status...\n"
            "    throttle_burst            429 Throttling.RateQuota for 5 requests in a row\n"
            "                              of the endpoint group\n"
            "    cut_download              a video with fewer bytes than its Content-Length\n"
            "    late                      a submit answered 5xx (or dropped) at once and\n"
            "                              processed --late-after provider seconds later\n"
            "    odd_status_after          302/307 (Location: the same path) or 408, plain\n"
            "                              text, after the request took effect\n"
            "  A hostile service, never set by --chaos, only by --chaos-kind:\n"
            "    huge_answer               the answer after 8 MiB of whitespace, streamed\n"
            "    gzip_bomb                 a gzip body of ~8 KiB inflating to 8 MiB\n"
            "    drip                      the body one byte every 0.5 s, for up to 60 s\n"
            "    huge_retry_after          429 with Retry-After: 1000000000000\n"
            "    billing                   429 PrepaidBillOverdue, PostpaidBillOverdue,\n"
            "                              CommodityNotPurchased, Throttling.AllocationQuota\n"
            "                              or 400 Arrearage\n"
            "    echoed_key                a gateway's 502 repeating the Authorization header\n"
            "    odd_task_id               a submit answered with task id .., ., ../ID,\n"
            "                              ID/cancel or 10 kB long (the task really exists)\n"
            "    gzip_download             a video sent gzip-encoded"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument(
        "--time-scale",
        type=positive,
        default=1.0,
        help="multiply every service time constant by this (0.01: a 60 s task takes 0.6 s)",
    )
    p.add_argument("--no-limits", action="store_true", help="turn the provider's rate limits off")
    p.add_argument(
        "--api-key", action="append", help="an accepted key (repeatable; default sk-simulator)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for task durations")
    p.add_argument(
        "--prefix",
        type=_mount_point,
        default="/api/v1",
        metavar="PATH",
        help="where the API is mounted, e.g. a gateway's /qwen/api/v1; the base URL printed "
        "at start ends with it (default: %(default)s)",
    )
    chaos = p.add_argument_group("chaos", "random faults, reproducible from a seed (see below)")
    chaos.add_argument(
        "--chaos",
        type=_probability,
        metavar="RATE",
        help="give every kind of fault this probability per request (0 to 1, e.g. 0.01)",
    )
    chaos.add_argument(
        "--chaos-kind",
        action="append",
        type=_chaos_kind,
        metavar="KIND=P",
        help="one kind's probability, over --chaos (repeatable)",
    )
    chaos.add_argument(
        "--chaos-seed", type=int, default=0, metavar="N", help="seed of the dice (default: 0)"
    )
    chaos.add_argument(
        "--chaos-slow",
        type=positive,
        metavar="S",
        help="how late a slow answer comes, in real seconds (default: 2; above the "
        "client's read timeout to make it give up)",
    )
    chaos.add_argument(
        "--late-after",
        type=_late_after,
        metavar="LOW:HIGH",
        help="the range a late submit's delay is drawn from, in provider seconds (scaled "
        "by --time-scale; default: 150:250, past the client's 120 s reconcile window); "
        "with --chaos or --chaos-kind late=P",
    )
    open_points = p.add_argument_group(
        "open points",
        textwrap.fill(
            "one reading of each point the provider's documentation leaves open (see the "
            "docs page 'The wire protocol' (docs/wire.md)); the defaults are the "
            "simulator's historical ones",
            77,
        ),
    )
    open_points.add_argument(
        "--list-zone",
        choices=_LIST_ZONES,
        default="UTC+8",
        help="the zone in which the task list reads start_time/end_time (default: %(default)s)",
    )
    open_points.add_argument(
        "--clock-skew",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="how far the service's clock runs ahead of the real one, in real seconds, "
        "never scaled (negative: behind; default: 0)",
    )
    open_points.add_argument(
        "--list-order",
        choices=_LIST_ORDERS,
        default="newest_first",
        help="the order of the task list's rows (default: %(default)s)",
    )
    open_points.add_argument(
        "--empty-page",
        choices=_EMPTY_PAGES,
        default="data",
        help="a list page without rows: data carries an empty data array, bare neither data "
        "nor total_page (default: %(default)s)",
    )
    open_points.add_argument(
        "--no-pending-times",
        action="store_true",
        help="PENDING and RUNNING task queries carry neither submit_time nor scheduled_time",
    )
    p.set_defaults(run=_cmd_simulator)

    p = sub.add_parser(
        "demo",
        help="animate a dozen sample portraits end to end against the built-in simulator",
        description=(
            "Start the simulator in this process with the provider's limits and a compressed "
            "clock, animate a dozen sample portraits across several templates with a progress "
            "bar, and save the MP4 files. No API key needed."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="where to save videos")
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="draw the progress bar: on a terminal (auto), always, or never",
    )
    p.add_argument(
        "--time-scale",
        type=positive,
        default=0.01,
        help="compress the service's clock (default %(default)s: a 3 minute task takes 1.8 s)",
    )
    p.set_defaults(run=_cmd_demo)
    return parser


def _fail(message: str, status: int) -> int:
    print(f"emoji-async: error: {' '.join(message.split())}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status is the return value.

    0 success, 1 a failed command (an error of the service or the client, a
    missing key), 2 a usage error (a bad option, a bad jobs file), 130 Ctrl-C.
    """
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except JobsFileError as exc:
        return _fail(str(exc), 2)
    except CommandError as exc:
        return _fail(str(exc), exc.status)
    except EmojiError as exc:
        return _fail(str(exc), 1)
    except OSError as exc:  # a directory or journal that cannot be written
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        print("emoji-async: interrupted", file=sys.stderr)
        return INTERRUPTED
    return status

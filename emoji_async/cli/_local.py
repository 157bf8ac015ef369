"""The commands for local runs, ``simulator`` and ``demo``: their options and their runs.

Neither talks to the service. The simulator (``emoji_async.testing``) is
imported only when one of them runs, so that ``--help`` stays quick.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from . import _argtypes as argtypes

if TYPE_CHECKING:
    from ..testing import SimulatorConfig

__all__ = [
    "SubParsers",
    "add_demo",
    "add_simulator",
    "cmd_demo",
    "cmd_simulator",
    "simulator_config",
]

#: What ``add_subparsers`` gives, for the functions that add a command to it.
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_simulator(sub: SubParsers) -> None:
    """The ``simulator`` command's parser: where to listen, the service's clock, chaos."""
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
            "    gzip_download             a video sent gzip-encoded\n"
            "\n"
            "notifications (EventBridge's task-finished events, signed, to your receiver):\n"
            "  emoji-async simulator --time-scale 0.01 --notify http://127.0.0.1:9000/events \\\n"
            "      --notify-latency 1,90 --notify-drop 0.1 --notify-token s3cret\n"
            "  Every task's end is POSTed to each --notify URL after the latency (provider\n"
            "  seconds, scaled), signed (signature V2) with a key whose certificate is served\n"
            "  at http://HOST:PORT/eventbridge/cert.pem; failed deliveries are retried per\n"
            "  --notify-retry. On Ctrl-C what was delivered is counted on stderr."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument(
        "--time-scale",
        type=argtypes.positive,
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
        type=argtypes.mount_point,
        default="/api/v1",
        metavar="PATH",
        help="where the API is mounted, e.g. a gateway's /qwen/api/v1; the base URL printed "
        "at start ends with it (default: %(default)s)",
    )
    chaos = p.add_argument_group("chaos", "random faults, reproducible from a seed (see below)")
    chaos.add_argument(
        "--chaos",
        type=argtypes.probability,
        metavar="RATE",
        help="give every kind of fault this probability per request (0 to 1, e.g. 0.01)",
    )
    chaos.add_argument(
        "--chaos-kind",
        action="append",
        type=argtypes.chaos_kind,
        metavar="KIND=P",
        help="one kind's probability, over --chaos (repeatable)",
    )
    chaos.add_argument(
        "--chaos-seed", type=int, default=0, metavar="N", help="seed of the dice (default: 0)"
    )
    chaos.add_argument(
        "--chaos-slow",
        type=argtypes.positive,
        metavar="S",
        help="how late a slow answer comes, in real seconds (default: 2; above the "
        "client's read timeout to make it give up)",
    )
    chaos.add_argument(
        "--late-after",
        type=argtypes.late_after,
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
        choices=argtypes.LIST_ZONES,
        default="UTC+8",
        help="the zone in which the task list reads start_time/end_time (default: %(default)s)",
    )
    open_points.add_argument(
        "--clock-skew",
        type=argtypes.seconds,
        default=0.0,
        metavar="SECONDS",
        help="how far the service's clock runs ahead of the real one, in real seconds, "
        "never scaled (negative: behind; default: 0)",
    )
    open_points.add_argument(
        "--list-order",
        choices=argtypes.LIST_ORDERS,
        default="newest_first",
        help="the order of the task list's rows (default: %(default)s)",
    )
    open_points.add_argument(
        "--empty-page",
        choices=argtypes.EMPTY_PAGES,
        default="data",
        help="a list page without rows: data carries an empty data array, bare neither data "
        "nor total_page (default: %(default)s)",
    )
    open_points.add_argument(
        "--no-pending-times",
        action="store_true",
        help="PENDING and RUNNING task queries carry neither submit_time nor scheduled_time",
    )
    notify = p.add_argument_group(
        "notifications", "task-finished events delivered as EventBridge does (see below)"
    )
    notify.add_argument(
        "--notify",
        action="append",
        type=argtypes.notify_target,
        metavar="URL",
        help="deliver every task's end to this http(s) URL (repeatable; default: none, off)",
    )
    notify.add_argument(
        "--notify-latency",
        type=argtypes.notify_latency,
        default=(1.0, 90.0),
        metavar="MIN,MAX",
        help="each event's delay after its task's end, in provider seconds, scaled by "
        "--time-scale (default: 1,90, the provider's 'usually about 1-90 s')",
    )
    notify.add_argument(
        "--notify-drop",
        type=argtypes.probability,
        default=0.0,
        metavar="P",
        help="the probability that an event is lost, never delivered (default: 0)",
    )
    notify.add_argument(
        "--notify-duplicates",
        type=argtypes.probability,
        default=0.0,
        metavar="P",
        help="the probability that an event is delivered once more (default: 0)",
    )
    notify.add_argument(
        "--notify-retry",
        choices=("BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY"),
        default="BACKOFF_RETRY",
        help="how a delivery answered other than 2xx is retried: 3 times 10-20 s apart, or "
        "up to 176 times 1 s to 512 s apart within a day (default: %(default)s)",
    )
    notify.add_argument(
        "--notify-token",
        metavar="TOKEN",
        help="a static token sent in x-eventbridge-signature-token (default: none)",
    )
    notify.add_argument(
        "--notify-seed", type=int, default=0, metavar="N", help="seed of the draws (default: 0)"
    )
    p.set_defaults(run=cmd_simulator)


def add_demo(sub: SubParsers) -> None:
    """The ``demo`` command's parser."""
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
        choices=argtypes.PROGRESS_MODES,
        default="auto",
        help="draw the progress bar: on a terminal (auto), always, or never",
    )
    p.add_argument(
        "--time-scale",
        type=argtypes.positive,
        default=0.01,
        help="compress the service's clock (default %(default)s: a 3 minute task takes 1.8 s)",
    )
    p.set_defaults(run=cmd_demo)


def cmd_simulator(args: argparse.Namespace) -> int:
    from ..testing import Simulator, run_forever

    # The simulator logs what it cannot do here (no PyAV: no real videos) as it starts.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)

    try:
        config = simulator_config(args)
    except ValueError as exc:  # a setting the options' own checks cannot see, such as a token
        print(f"emoji-async simulator: {exc}", file=sys.stderr)
        return 2
    if config.notify_targets:
        low, high = config.notify_latency
        print(
            f"notifications (seed {config.notify_seed}) to {', '.join(config.notify_targets)}: "
            f"{low:g}-{high:g} s late, drop {config.notify_drop:g}, duplicates "
            f"{config.notify_duplicates:g}, {config.notify_retry}",
            file=sys.stderr,
            flush=True,
        )
    try:
        simulator = Simulator(config)
    except ImportError as exc:  # signing needs the notify extra
        print(f"emoji-async: {exc}", file=sys.stderr)
        return 1
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it is meant to stop
        asyncio.run(run_forever(simulator, args.host, args.port))
    if config.chaos is not None:
        played = simulator.stats.faults_by_kind
        counts = ", ".join(f"{kind} {played[kind]}" for kind in sorted(played))
        print(f"faults played: {counts or 'none'}", file=sys.stderr, flush=True)
    if config.notify_targets:
        stats = simulator.stats
        print(
            f"notifications: {stats.events_published} events, {stats.deliveries} deliveries, "
            f"{stats.delivered} delivered, {stats.dropped} dropped, {stats.duplicated} "
            f"duplicated, {stats.dead_lettered} dead-lettered",
            file=sys.stderr,
            flush=True,
        )
    return 0


def simulator_config(args: argparse.Namespace) -> SimulatorConfig:
    """The simulator the ``simulator`` command's options describe (its chaos said on stderr)."""
    from ..testing import Chaos, ServiceLimits, SimulatorConfig

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
    return SimulatorConfig(
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
        notify_targets=tuple(args.notify or ()),
        notify_latency=args.notify_latency,
        notify_drop=args.notify_drop,
        notify_duplicates=args.notify_duplicates,
        notify_retry=args.notify_retry,
        notify_token=args.notify_token,
        notify_seed=args.notify_seed,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return asyncio.run(
        run_demo(out_dir=args.out, time_scale=args.time_scale, progress=args.progress)
    )

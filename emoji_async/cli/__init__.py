"""The ``emoji-async`` command line: argument parsing and printing, no business logic."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from .._errors import EmojiError
from .._templates import templates

__all__ = ["main"]


def _cmd_templates(args: argparse.Namespace) -> int:
    for info in templates():
        print(f"{info.driven_id:<20} {info.video_seconds} s  {info.description}")
    return 0


def _cmd_simulator(args: argparse.Namespace) -> int:
    from ..testing import ServiceLimits, SimulatorConfig, run_forever

    config = SimulatorConfig(
        api_keys=frozenset(args.api_key or ["sk-simulator"]),
        time_scale=args.time_scale,
        limits=None if args.no_limits else ServiceLimits(),
        seed=args.seed,
        api_prefix=args.prefix,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it is meant to stop
        asyncio.run(run_forever(config, args.host, args.port))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return asyncio.run(run_demo(out_dir=args.out, time_scale=args.time_scale))


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emoji-async",
        description="Animate portraits with the DashScope Emoji service.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("templates", help="list the expression templates (driven_id values)")
    p.set_defaults(run=_cmd_templates)

    p = sub.add_parser(
        "simulator",
        help="run the built-in simulator of the service on a local port",
        description="Serve a simulator of the Emoji service (PROTOCOL.md) until interrupted.",
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument(
        "--time-scale",
        type=_positive,
        default=1.0,
        help="multiply every service time constant by this (0.01: a 60 s task takes 0.6 s)",
    )
    p.add_argument("--no-limits", action="store_true", help="turn the provider's rate limits off")
    p.add_argument(
        "--api-key", action="append", help="an accepted key (repeatable; default sk-simulator)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for task durations")
    p.add_argument("--prefix", default="/api/v1", help="API mount point (default: %(default)s)")
    p.set_defaults(run=_cmd_simulator)

    p = sub.add_parser(
        "demo",
        help="generate a few videos end to end against the built-in simulator",
        description=(
            "Start the simulator in this process with the provider's limits and a compressed "
            "clock, animate a few portraits, and save the videos. No API key needed."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="where to save videos")
    p.add_argument(
        "--time-scale",
        type=_positive,
        default=0.02,
        help="compress the service's clock (default %(default)s: a 3 minute task takes 3.6 s)",
    )
    p.set_defaults(run=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status is the return value."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except EmojiError as exc:
        print(f"emoji-async: error: {exc}", file=sys.stderr)
        return 1
    return status

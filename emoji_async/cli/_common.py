"""What the commands share: exit statuses, the service's options, its client, errors, and
how things are shown.

Every command words counts, times and saved videos through the helpers here
(and quotes a value as the library's errors do, with ``emoji_async.shown``), so
that the whole command line says them one way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import textwrap
from pathlib import Path

from .. import ENV_API_KEY, ENV_BASE_URL, EmojiClient, resolve_base_url
from ._argtypes import positive

__all__ = [
    "ACCOUNT_REFUSED",
    "INTERRUPTED",
    "CommandError",
    "add_service_options",
    "counted",
    "local_time",
    "not_a_video",
    "open_client",
]


#: The exit status after Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130
#: The exit status when the service refused the account (a wrong key, no access, an
#: overdue bill) and the batch stopped: the jobs not started resume once it is fixed.
ACCOUNT_REFUSED = 3


class CommandError(Exception):
    """A command cannot go on: one line for stderr, and the exit status."""

    def __init__(self, message: str, *, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """``--base-url`` and ``--time-scale``; the key comes only from the environment."""
    group = parser.add_argument_group(
        "service",
        textwrap.fill(
            f"The API key is read from {ENV_API_KEY} only: a command line is visible to "
            "other users of the machine.",
            77,
        ),
    )
    group.add_argument(
        "--base-url",
        metavar="URL",
        help=f"the API base URL (default: ${ENV_BASE_URL}, then the provider's Beijing host)",
    )
    group.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help=(
            "accept a plain http:// base URL on a host other than this machine (the key then "
            "travels unencrypted; loopback, such as a local simulator, needs no such option)"
        ),
    )
    group.add_argument(
        "--time-scale",
        type=positive,
        default=1.0,
        metavar="S",
        help=(
            "multiply the client's poll, retry and pacing times by S, to drive a simulator "
            "started with the same --time-scale (default: 1)"
        ),
    )


def open_client(args: argparse.Namespace) -> EmojiClient:
    """A client for the service the options name, its policies on the options' clock."""
    key = os.environ.get(ENV_API_KEY, "")
    if not key.strip():
        raise CommandError(f"no API key: set {ENV_API_KEY} in the environment")
    insecure: bool = args.allow_insecure_http
    # Checked here, before anything is drawn or opened, so that a refusal names the option.
    base_url = resolve_base_url(
        args.base_url, allow_insecure_http=insecure, opt_in="add --allow-insecure-http"
    )
    scale: float = args.time_scale
    # The client reads the key from the environment itself: it never passes through here.
    return EmojiClient(
        base_url=base_url,
        allow_insecure_http=insecure,
        time_scale=scale,
    )


# --- how things are shown ---------------------------------------------------------


def counted(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 job``, ``2 jobs``, ``0 jobs``: ``nouns`` when the plural is not ``noun + "s"``."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def local_time(moment: dt.datetime | None) -> str | None:
    """A time as every command shows it: ISO 8601 in this machine's zone, with its offset.

    The service speaks in two zones (a task's own times in Beijing time, the
    task list's in epoch milliseconds); shown in one, the same instant reads
    the same wherever it came from.
    """
    return None if moment is None else moment.astimezone().isoformat(timespec="milliseconds")


#: How a saved video starts: an ISO BMFF ``ftyp`` box at byte 4 (every MP4 does).
_MP4_BRAND_AT = slice(4, 8)
#: How the simulator's placeholder starts (it serves one without PyAV).
_SIMULATOR_PLACEHOLDER = b"emoji-async simulator placeholder"


def not_a_video(path: Path) -> str | None:
    """Why the file saved at ``path`` is not an MP4 video, or ``None`` when it starts like one.

    Reads its first bytes only.
    """
    try:
        with path.open("rb") as file:
            head = file.read(len(_SIMULATOR_PLACEHOLDER))
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if head[_MP4_BRAND_AT] == b"ftyp":
        return None
    if head.startswith(_SIMULATOR_PLACEHOLDER):
        return "placeholder, not a video: install emoji-async[video] for real videos"
    return "not an MP4 video (it has no ftyp box at byte 4)"

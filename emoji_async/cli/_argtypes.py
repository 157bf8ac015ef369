"""The command line's argparse types: each turns one option's text into its value.

A text that does not fit is an ``argparse.ArgumentTypeError`` saying what was
expected, so argparse reports it as a usage error (exit status 2) naming the
option, before anything is sent.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from urllib.parse import urlsplit

from .. import ValidationError, check_image_url, templates

__all__ = [
    "CHAOS_KINDS",
    "EMPTY_PAGES",
    "LIST_ORDERS",
    "LIST_ZONES",
    "PROGRESS_MODES",
    "chaos_kind",
    "count",
    "image_url",
    "late_after",
    "mount_point",
    "notify_latency",
    "notify_target",
    "page_size",
    "positive",
    "price",
    "probability",
    "seconds",
    "task_id",
    "template",
    "whole",
]

#: The kinds of ``--chaos-kind``: ``emoji_async.testing.CHAOS_KINDS``, spelt out
#: here so that ``--help`` does not import the simulator (a test keeps them equal).
CHAOS_KINDS = (
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
LIST_ZONES = ("UTC+8", "UTC")
LIST_ORDERS = ("newest_first", "oldest_first")
EMPTY_PAGES = ("data", "bare")
#: The choices of ``--progress`` (``batch``, ``demo``): both are drawn by the same
#: progress console, which reads these words.
PROGRESS_MODES = ("auto", "always", "never")


def _number_where(holds: Callable[[float], bool], expected: str) -> Callable[[str], float]:
    """An argparse type: a number for which ``holds`` is true, else "expected ``expected``".

    A text that is no number is read as NaN, which every check here refuses, so
    it is reported in the same words as a number out of range.
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not holds(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


#: A number > 0.
positive = _number_where(lambda value: value > 0, "a number > 0")
#: A number from 0 to 1.
probability = _number_where(lambda value: 0 <= value <= 1, "a probability from 0 to 1")
#: A finite number of seconds, of either sign.
seconds = _number_where(math.isfinite, "a number of seconds")
#: A price: a finite number >= 0.
price = _number_where(lambda value: math.isfinite(value) and value >= 0, "a price >= 0")


def chaos_kind(text: str) -> tuple[str, float]:
    """``KIND=P``: one of :data:`CHAOS_KINDS` and its probability."""
    kind, sign, rate = text.partition("=")
    kind = kind.strip()
    if not sign or kind not in CHAOS_KINDS:
        raise argparse.ArgumentTypeError(
            f"expected KIND=P with KIND one of {', '.join(CHAOS_KINDS)}, got {text!r}"
        )
    return kind, probability(rate.strip())


def _seconds_range(text: str, separator: str, names: tuple[str, str]) -> tuple[float, float]:
    """``LOW<separator>HIGH`` provider seconds, with ``0 <= LOW <= HIGH``."""
    low_text, sign, high_text = text.partition(separator)
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        low = high = math.nan
    if not sign or not (math.isfinite(low) and math.isfinite(high)) or not 0 <= low <= high:
        low_name, high_name = names
        raise argparse.ArgumentTypeError(
            f"expected {low_name}{separator}{high_name} provider seconds with"
            f" 0 <= {low_name} <= {high_name}, got {text!r}"
        )
    return low, high


def late_after(text: str) -> tuple[float, float]:
    """``LOW:HIGH`` provider seconds, with ``0 <= LOW <= HIGH``."""
    return _seconds_range(text, ":", ("LOW", "HIGH"))


def notify_latency(text: str) -> tuple[float, float]:
    """``MIN,MAX`` provider seconds, with ``0 <= MIN <= MAX``."""
    return _seconds_range(text, ",", ("MIN", "MAX"))


def notify_target(text: str) -> str:
    """An http(s) URL the simulator can deliver notifications to."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"expected an http(s) URL such as http://127.0.0.1:8080/events, got {text!r}"
        )
    return text


def mount_point(text: str) -> str:
    """A URL path the simulator can mount its API under, normalised as it would be."""
    from ..testing import SimulatorConfig

    try:
        return SimulatorConfig(api_prefix=text).api_prefix
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a URL path such as /api/v1 or /qwen/api/v1, got {text!r}"
        ) from None


def image_url(text: str) -> str:
    """An image URL or a local file's path, in the form the client accepts."""
    try:
        return check_image_url(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"expected {exc.allowed}, got {text!r}") from None


def template(text: str) -> str:
    """One of the 20 templates' ids."""
    if text not in {info.driven_id for info in templates()}:
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


#: A whole number >= 1.
count = _whole_from(1)
#: A whole number >= 0.
whole = _whole_from(0)


def page_size(text: str) -> int:
    """A page size of the task list: 1 to 100."""
    value = count(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 100, got {text!r}")
    return value


def task_id(text: str) -> str:
    """A task id: any text that is not blank."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a task id, got an empty string")
    return text

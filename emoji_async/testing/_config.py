"""How a simulator is set up: accepted keys, time scale, provider limits, run times.

Every provider time constant lives here, in *provider seconds*. The simulator
multiplies each one by ``SimulatorConfig.time_scale`` at the moment it uses it,
so a single knob turns a 3 h timeout into 1 s of test time and keeps every
ratio between the provider's clocks intact.
"""

from __future__ import annotations

import math
import random
import re
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal

import attrs

from .._notice_signing import SIGN_FORMS, SignForm
from ._chaos import Chaos
from ._eventbridge_knobs import (
    NOTIFY_LATENCY,
    RetryStrategy,
    check_latency,
    check_probability,
    check_sign_form,
    check_targets,
    check_timeout,
    check_token,
    latency,
    one_of_strategies,
    targets,
)

__all__ = [
    "EMPTY_PAGES",
    "LIST_ORDERS",
    "LIST_ZONES",
    "POLICY_LIFETIME",
    "RATE_WINDOW",
    "TASK_RETENTION",
    "TASK_TIMEOUT",
    "UPLOAD_LIFETIME",
    "VIDEO_URL_LIFETIME",
    "DurationSampler",
    "EmptyPage",
    "ListOrder",
    "ListZone",
    "ServiceLimits",
    "SimulatorConfig",
    "fixed_duration",
    "uniform_durations",
]

#: A task that has not finished after this long fails with ``InternalError.Timeout``.
TASK_TIMEOUT = 3 * 3600.0
#: A task older than this (counted from its submission) answers ``UNKNOWN``.
TASK_RETENTION = 24 * 3600.0
#: A result ``video_url`` stops working this long after its task ended.
VIDEO_URL_LIFETIME = 24 * 3600.0
#: A temporary upload (``oss://``) can be used for this long.
UPLOAD_LIFETIME = 48 * 3600.0
#: Rate limits count accepted requests in a sliding window this wide.
RATE_WINDOW = 1.0
#: How long an upload policy stays usable. Deliberately NOT scaled: it bounds the
#: gap between two back-to-back client calls, which is network time, and scaling
#: it would make small time scales fail on loopback latency alone.
POLICY_LIFETIME = 300

#: The zone in which the task list reads its ``start_time`` / ``end_time`` strings.
ListZone = Literal["UTC+8", "UTC"]
LIST_ZONES: tuple[ListZone, ...] = typing.get_args(ListZone)
#: The order of the task list's rows.
ListOrder = Literal["newest_first", "oldest_first"]
LIST_ORDERS: tuple[ListOrder, ...] = typing.get_args(ListOrder)
#: What a task-list page without rows carries.
EmptyPage = Literal["data", "bare"]
EMPTY_PAGES: tuple[EmptyPage, ...] = typing.get_args(EmptyPage)

#: Draws a task's run time: ``(rng, driven_id) -> provider seconds`` (unscaled).
DurationSampler = Callable[[random.Random, str], float]


@attrs.frozen
class _Uniform:
    low: float
    high: float

    def __call__(self, rng: random.Random, driven_id: str) -> float:
        return rng.uniform(self.low, self.high)


@attrs.frozen
class _Fixed:
    seconds: float

    def __call__(self, rng: random.Random, driven_id: str) -> float:
        return self.seconds


def uniform_durations(low: float, high: float) -> DurationSampler:
    """Run times drawn uniformly from ``[low, high]`` provider seconds.

    The provider documents "usually 1 to 5 minutes", hence the default 60 to 300.
    """
    if not 0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high, got {low!r}, {high!r}")
    return _Uniform(float(low), float(high))


def fixed_duration(seconds: float) -> DurationSampler:
    """Every task runs exactly ``seconds`` provider seconds: for exact timing tests."""
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds!r}")
    return _Fixed(float(seconds))


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be positive or None, got {value!r}")


_DEFAULT_DURATIONS = uniform_durations(60.0, 300.0)


@attrs.frozen(kw_only=True)
class ServiceLimits:
    """The provider's per-account limits (docs/wire.md, "Rate limits"); ``None`` lifts one.

    A rate of ``r`` requests per second admits ``floor(r)`` requests in any
    sliding window of one (scaled) second; a rate below 1 admits one request per
    ``1 / r`` seconds. ``running_tasks`` is how many tasks run at once; the
    others wait, PENDING, in one FIFO queue.
    """

    detect_per_second: float | None = attrs.field(default=1.0, validator=_positive_or_none)
    submit_per_second: float | None = attrs.field(default=1.0, validator=_positive_or_none)
    query_per_second: float | None = attrs.field(default=20.0, validator=_positive_or_none)
    list_per_second: float | None = attrs.field(default=20.0, validator=_positive_or_none)
    cancel_per_second: float | None = attrs.field(default=20.0, validator=_positive_or_none)
    upload_policy_per_second: float | None = attrs.field(default=100.0, validator=_positive_or_none)
    running_tasks: int | None = attrs.field(default=1, validator=_positive_or_none)

    def rate_for(self, endpoint: str) -> float | None:
        """The limit of one endpoint name (as in ``RequestRecord.endpoint``), if any."""
        rates: dict[str, float | None] = {
            "detect": self.detect_per_second,
            "submit": self.submit_per_second,
            "query": self.query_per_second,
            "list": self.list_per_second,
            "cancel": self.cancel_per_second,
            "upload_policy": self.upload_policy_per_second,
        }
        return rates.get(endpoint)


#: A mount point's segments: what a URL path carries without escaping (RFC 3986's unreserved).
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")


def _prefix(value: str) -> str:
    """Normalise a mount point: one leading slash, no trailing slash, ``""`` for the root.

    ``"qwen/api/v1/"`` becomes ``"/qwen/api/v1"``. Refused (``ValueError``): a
    segment that is empty (``"/api//v1"``), ``.`` or ``..``, or holds anything
    but letters, digits and ``-._~`` (a query, a space, a route placeholder).
    """
    if not isinstance(value, str):
        raise TypeError(f"api_prefix must be a string such as '/api/v1', got {value!r}")
    stripped = value.strip().strip("/")
    if not stripped:
        return ""
    for segment in stripped.split("/"):
        if not _SEGMENT.fullmatch(segment) or segment in (".", ".."):
            raise ValueError(
                "api_prefix must be a URL path such as '/api/v1' or '/qwen/api/v1' (segments "
                f"of letters, digits and -._~), got {value!r}"
            )
    return f"/{stripped}"


def _keys(value: Iterable[str]) -> frozenset[str]:
    """The accepted keys as a set (a typed converter: ``frozenset`` itself leaves mypy guessing)."""
    return frozenset(value)


def _check_scale(_: object, __: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"time_scale must be positive, got {value!r}")


def _check_keep_requests(_: object, __: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"keep_requests must be a whole number >= 1 or None, got {value!r}")


def _check_chaos(_: object, __: attrs.Attribute[Chaos | None], value: Chaos | None) -> None:
    if value is not None and not isinstance(value, Chaos):
        raise TypeError(f"chaos must be a Chaos (e.g. Chaos.uniform(0.01)) or None, got {value!r}")


def _one_of(choices: tuple[str, ...]) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            allowed = ", ".join(repr(choice) for choice in choices)
            raise ValueError(f"{attribute.name} must be one of {allowed}, got {value!r}")

    return check


def _check_skew(_: object, __: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"clock_skew must be a finite number of seconds, got {value!r}")


def _check_pending_times(_: object, __: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"pending_times must be True or False, got {value!r}")


def _check_video_seconds(_: object, __: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"video_seconds must be a whole number >= 1 or None, got {value!r}")


def _check_fetch_timeout(_: object, __: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"fetch_timeout must be positive, got {value!r}")


@attrs.frozen(kw_only=True)
class SimulatorConfig:
    """Everything that makes one simulated service differ from another.

    ``time_scale`` multiplies every provider time constant at once (run times,
    rate windows, the 3 h timeout, the 24 h task retention and URL lifetime, the
    48 h upload lifetime). ``limits=None`` turns every limit off: no 429s, and
    every task starts RUNNING the moment it is submitted. ``retry_after`` adds a
    ``Retry-After`` header to rate-limit answers, which the provider does not
    document: whole seconds, rounded up, at ``time_scale=1``; the scaled wait
    in decimal seconds on a compressed clock. ``api_prefix`` is where the API is
    mounted: ``"/api/v1"`` as on the provider's hosts, or a gateway's
    ``"/qwen/api/v1"``; it is normalised to one leading slash and no trailing
    one (``"qwen/api/v1/"`` is ``"/qwen/api/v1"``), and
    ``SimulatorServer.base_url`` ends with it. ``render_videos`` serves real
    MP4s when PyAV is importable, a labelled placeholder otherwise.
    ``fetch_timeout`` bounds each download of a loopback ``image_url`` in real
    seconds (not scaled: it is network time); past it the request answers
    400 ``InvalidURL.Timeout``.
    ``video_seconds`` makes every video that long, and billed so
    (``usage.video_duration``), whatever its template; ``None``, the default,
    takes each template's length from the template table.
    ``chaos`` turns on random faults (``Chaos``: a seed and one probability per
    kind of fault); ``None``, the default, leaves only scripted ones.
    ``keep_requests`` bounds ``Simulator.requests``: past that many records the
    oldest quarter is forgotten at once (``None`` keeps them all). The counters
    of ``SimulatorStats`` always cover every request.

    The points the provider's documentation leaves open (docs/wire.md, "The open points")
    are knobs too, so a client can be tested under every reading of them; each
    default is the simulator's historical behaviour:

    ``list_zone``
        The zone in which the task list reads its ``start_time`` / ``end_time``
        query strings (``YYYYMMDDhhmmss``, no zone given): ``"UTC+8"``, Beijing
        time like the query answers' strings, or ``"UTC"``, which puts the same
        string eight hours later.
    ``clock_skew``
        How far the service's clock runs ahead of the real one, in real seconds
        (negative: behind; never scaled, a clock offset is not a duration of the
        provider). Every time the service shows or reads is on that clock: the
        list's ``gmt_create`` / ``start_time`` / ``end_time`` and its time filters
        and default "last 24 h" window, the query answers' ``submit_time`` /
        ``scheduled_time`` / ``end_time``, the ``Date`` header of API answers,
        the expiry of signed URLs. ``SimulatedTask`` and ``RequestRecord`` keep
        ``time.monotonic()`` readings, unshifted.
    ``list_order``
        ``"newest_first"`` or ``"oldest_first"``: the order of the list's rows,
        which no provider page states.
    ``empty_page``
        What a list page without rows carries: ``"data"``, an empty ``data``
        array (and ``total_page`` 0 when nothing matched), or ``"bare"``, neither
        ``data`` nor ``total_page``, only ``total`` and the other fields.
    ``pending_times``
        Whether PENDING and RUNNING task queries carry ``submit_time`` and
        ``scheduled_time``: the provider shows no example of those states, so a
        client must cope with ``False`` (neither field).

    Task-finished notifications (EventBridge, docs/wire.md), off unless
    ``notify_targets`` names a target; off, nothing else of them runs:

    ``notify_targets``
        The http(s) URLs every task's end (SUCCEEDED, FAILED, CANCELED) is
        POSTed to, as EventBridge's HTTP targets with the body set to
        "complete event": a CloudEvent like the provider's sample, signed
        (signature V2) with a key whose certificate the simulator serves at
        ``SimulatorServer.certificate_url``. Each target gets its own copy.
    ``notify_latency``
        ``(min, max)`` provider seconds (scaled) from a task's end to each
        copy's first try, drawn uniformly; ``(1, 90)`` by default, the
        provider's "usually about 1-90 s".
    ``notify_duplicates``
        The probability that a copy is sent once more (again and again: up to
        three extra copies), each with the same event id and its own latency.
    ``notify_drop``
        The probability that a copy is lost: never sent, never retried.
    ``notify_retry``
        How a copy that failed (an answer other than 2xx, a connection error,
        no answer within ``notify_timeout``) is retried, in EventBridge's words:
        ``"BACKOFF_RETRY"`` (the default), 3 retries 10 to 20 provider seconds
        apart; ``"EXPONENTIAL_DECAY_RETRY"``, up to 176 retries 1, 2, 4...
        seconds apart, then every 512 s, within one (provider) day. After the
        last one the copy is dead-lettered (``DeliveryRecord.outcome``).
    ``notify_timeout``
        How long a target may take to answer, in real seconds (not scaled: it
        is network time); 5, as the provider asks of a receiver.
    ``notify_token``
        A static token sent in ``x-eventbridge-signature-token``, as an HTTP
        target may be set up to (``None``: no such header).
    ``notify_sign_form``
        Which string-to-sign the signature covers (``SignForm``, one of
        ``SIGN_FORMS``; the first by default): an open point, since the
        provider's prose and its sample disagree, so a receiver can be tested
        under each reading.
    ``notify_seed``
        Seeds the draws (latencies, losses, duplicates, retry spacing, the
        forms of the events' time stamps): the n-th event is treated the same
        for the same seed.

    The event's ``time`` and ``aliyunpublishtime`` take the forms the
    provider's pages show, mixed at random: ``...Z``, ``+08:00``, ``... PRC``
    and the malformed short month of its sample (``2023-1-25T...``); times
    follow ``clock_skew``, and so does the signature's timestamp.
    """

    api_keys: frozenset[str] = attrs.field(default=frozenset({"sk-simulator"}), converter=_keys)
    time_scale: float = attrs.field(default=1.0, validator=_check_scale)
    limits: ServiceLimits | None = attrs.field(factory=ServiceLimits)
    durations: DurationSampler = _DEFAULT_DURATIONS
    seed: int = 0
    retry_after: bool = False
    api_prefix: str = attrs.field(default="/api/v1", converter=_prefix)
    render_videos: bool = True
    fetch_timeout: float = attrs.field(default=5.0, validator=_check_fetch_timeout)
    chaos: Chaos | None = attrs.field(default=None, validator=_check_chaos)
    keep_requests: int | None = attrs.field(default=100_000, validator=_check_keep_requests)
    list_zone: ListZone = attrs.field(default="UTC+8", validator=_one_of(LIST_ZONES))
    clock_skew: float = attrs.field(default=0.0, validator=_check_skew)
    list_order: ListOrder = attrs.field(default="newest_first", validator=_one_of(LIST_ORDERS))
    empty_page: EmptyPage = attrs.field(default="data", validator=_one_of(EMPTY_PAGES))
    pending_times: bool = attrs.field(default=True, validator=_check_pending_times)
    video_seconds: int | None = attrs.field(default=None, validator=_check_video_seconds)
    notify_targets: tuple[str, ...] = attrs.field(
        default=(), converter=targets, validator=check_targets
    )
    notify_latency: tuple[float, float] = attrs.field(
        default=NOTIFY_LATENCY, converter=latency, validator=check_latency
    )
    notify_duplicates: float = attrs.field(default=0.0, validator=check_probability)
    notify_drop: float = attrs.field(default=0.0, validator=check_probability)
    notify_retry: RetryStrategy = attrs.field(default="BACKOFF_RETRY", validator=one_of_strategies)
    notify_timeout: float = attrs.field(default=5.0, validator=check_timeout)
    notify_token: str | None = attrs.field(default=None, validator=check_token)
    notify_sign_form: SignForm = attrs.field(default=SIGN_FORMS[0], validator=check_sign_form)
    notify_seed: int = 0

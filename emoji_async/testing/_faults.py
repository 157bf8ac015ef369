"""Faults: answers the service gives when something goes wrong in transit.

A ``Fault`` names an endpoint and what goes wrong there; a ``FaultBook`` holds
the scripted ones and hands each out for its next ``times`` matching requests.
The simulator only ever asks a fault source ``take(endpoint)``, so the chaos
mode (``_chaos_source``: random faults with probabilities) is another ``FaultSource``
producing the same ``Fault`` values, and every handler keeps working unchanged.

``fault_label`` names what a fault does in the words of ``Chaos``'s fields
(``reset_after``, ``truncated``...): ``SimulatorStats.faults_by_kind`` counts
played faults, scripted or random, under those names.

The kinds after ``late`` play a service that misbehaves on purpose (huge,
compressed or dripping answers, echoed keys, impossible task ids): what a client
must bound, time out or refuse rather than trust. ``_hostile`` builds their
bodies.
"""

from __future__ import annotations

import math
import typing
from typing import Literal, Protocol

import attrs

from ._records import ENDPOINTS
from ._wire import BILLING_CODES

__all__ = [
    "ANSWER_KINDS",
    "DEFAULT_DRIP_SECONDS",
    "DEFAULT_HUGE_BYTES",
    "FAULT_KINDS",
    "HUGE_WAIT",
    "LATE_ENDPOINTS",
    "Fault",
    "FaultBook",
    "FaultKind",
    "FaultSource",
    "fault_label",
]

FaultKind = Literal[
    "status",
    "reset",
    "delay",
    "truncate",
    "cut",
    "drop_field",
    "late",
    "huge",
    "gzip_bomb",
    "drip",
    "echo_key",
    "odd_task_id",
    "gzip",
]
FAULT_KINDS: frozenset[str] = frozenset(typing.get_args(FaultKind))
#: Kinds that rewrite the real answer, so the request is always processed first.
ANSWER_KINDS: frozenset[str] = frozenset(
    {"truncate", "cut", "drop_field", "huge", "gzip_bomb", "drip", "odd_task_id", "gzip"}
)
#: The default ``size`` of a ``huge`` or ``gzip_bomb`` answer: 8 MiB.
DEFAULT_HUGE_BYTES = 8 * 1024 * 1024
#: The default ``delay`` of a ``drip``: the most it lasts, in real seconds.
DEFAULT_DRIP_SECONDS = 60.0
#: A ``Retry-After`` longer than this (an hour) is counted as ``huge_retry_after``.
HUGE_WAIT = 3600.0
#: Where a ``late`` fault can play: the API endpoints, whose request is whole in hand
#: before anything happens, so it can be processed after it was answered.
LATE_ENDPOINTS: frozenset[str] = frozenset(
    {"detect", "submit", "query", "list", "cancel", "upload_policy"}
)


def _check_endpoint(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value != "*" and value not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {value!r}; expected '*' or one of {sorted(ENDPOINTS)}")


def _check_kind(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {value!r}; expected one of {sorted(FAULT_KINDS)}")


def _check_times(_: object, __: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"times must be at least 1, got {value!r}")


def _check_delay(_: object, __: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"delay must be at least 0 seconds, got {value!r}")


def _check_keep(_: object, __: attrs.Attribute[float], value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"keep must be between 0 and 1 (both excluded), got {value!r}")


def _check_field(_: object, __: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and (not value or any(not part for part in value.split("."))):
        raise ValueError(f"field must be a dotted path such as 'output.task_status', got {value!r}")


def _check_size(_: object, __: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"size must be a whole number of bytes >= 1, got {value!r}")


def _check_interval(_: object, __: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"interval must be a positive number of seconds, got {value!r}")


def _check_task_id(_: object, __: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"task_id must be a string or None, got {value!r}")


def _answer_kinds_process(fault: Fault) -> bool:
    return fault.kind in ANSWER_KINDS


def _default_delay(fault: Fault) -> float:
    return DEFAULT_DRIP_SECONDS if fault.kind == "drip" else 0.0


@attrs.frozen
class Fault:
    """What goes wrong for the next ``times`` requests to ``endpoint`` (``"*"``: any).

    ``status``: answer HTTP ``status`` with an error body carrying ``code`` (the
    provider's JSON envelope; OSS's XML on the upload and result hosts), and a
    ``Retry-After`` header when ``retry_after`` is given. ``reset``: drop the TCP
    connection without any HTTP answer. ``delay``: wait ``delay`` real seconds,
    then go on normally.

    With ``after_processing`` the request is processed first (a submit creates
    its task) and the fault replaces or delays the answer: the client cannot
    tell whether its request took effect. "Processed" means the simulator has
    decided its answer, a 429 of the rate limits included: a submit refused for
    its rate and then reset created nothing, though the client cannot know.
    The three kinds that rewrite the real answer always come after processing
    (it is their default, and ``False`` is refused):

    ``truncate``: the answer with its body cut after ``keep`` of its bytes (at
    least one byte kept, at least one lost), sent as a complete HTTP message
    whose ``Content-Length`` matches: status 200 with a body that is not JSON.
    ``cut``: the headers promise the whole body (``Content-Length``) but only
    ``keep`` of it is sent before the connection closes: a download cut short.
    ``drop_field``: a JSON answer without ``field``, a dotted path
    (``"output"``, ``"output.task_status"``; a number picks a list's item, so
    ``"data.0.status"`` leaves the task list's first row unreadable); ``None``
    drops ``output`` if the answer has one, else its first field other than
    ``request_id``. An answer that lacks the field, or is not a JSON object,
    goes out unchanged (and the fault is not counted as played).

    A ``status`` of 3xx or 408 is not an answer the provider's API gives
    (docs/wire.md, "Errors", lists none): it comes from something in between, so
    it carries a short plain-text body, not the JSON envelope (``code`` is not
    used), and a 3xx a ``Location`` header naming the request's own path. After
    processing, it is the ambiguous answer a client must not read as "nothing
    was created".

    ``late``: the request is answered at once as if it had failed (``status``
    with ``code``'s error body, or, with ``status=0``, a dropped connection),
    and processed only ``delay`` real seconds later, in the background: a
    submit creates its task then, with that instant as its creation time
    (docs/wire.md, "Rate limits": a request the client gave up on may still take
    effect, much later and out of order). Its rate-limit admission happens on
    arrival, as for any request; a request refused for its rate is answered
    429 and never processed (the fault is not counted as played then). Only
    on the API endpoints (``LATE_ENDPOINTS``), and never ``after_processing``.

    The hostile kinds, a service (or something in front of it) misbehaving on
    purpose; all but ``echo_key`` rewrite the real answer, after processing:

    ``huge``: the real JSON answer preceded by whitespace up to ``size`` bytes in
    all (default ``DEFAULT_HUGE_BYTES``, 8 MiB): still valid JSON, and the same
    answer once read whole, only too big to read whole. Streamed in chunks,
    never built in memory; with ``Content-Length: size``, or, with
    ``chunked=True``, in chunked transfer encoding, so the client cannot know the
    size up front.
    ``gzip_bomb``: the same ``size`` bytes sent ``Content-Encoding: gzip``: a body
    of about ``size / 1000`` bytes (``Content-Length`` its compressed size, or
    chunked) that inflates to ``size`` (1 GiB from about 1 MiB). Built from one
    compressed block of spaces repeated, so neither side of the simulator ever
    holds the inflated bytes.
    ``drip``: the headers at once (with the whole body's ``Content-Length``),
    then the body one byte every ``interval`` real seconds (default 0.5); after
    ``delay`` real seconds (default ``DEFAULT_DRIP_SECONDS``, 60) the rest comes
    at once, and a client that hangs up ends it sooner. Plays on any endpoint,
    the result host included.
    ``odd_task_id``: a JSON answer whose ``output.task_id`` is ``task_id``
    instead of the real id (``None``: ``".."``); ``{task_id}`` in it stands for
    the real id (``"{task_id}/cancel"``, ``"{task_id}" + "0" * 10_000``). The task
    itself exists under its real id, so the task list shows it.
    ``gzip``: the real answer compressed, ``Content-Encoding: gzip`` and
    ``Content-Length`` the compressed size, as a storage host may send a
    video.
    Each of these needs a body to work on (``huge`` and ``gzip_bomb`` a JSON
    object, ``odd_task_id`` one with an ``output.task_id``, ``drip`` and ``gzip``
    at least one byte): any other answer goes out unchanged, and the fault is
    not counted as played.

    ``echo_key``: an error answer that repeats the request's ``Authorization``
    header (before processing unless ``after_processing``): a ``status`` of 500 or
    more is a gateway's plain-text page quoting the request's line and headers;
    a 4xx is the provider's JSON envelope whose message quotes the header (a 401
    ``InvalidApiKey``, any other 4xx with ``code``).

    Two hostile answers are ``status`` faults: a 429 ``Throttling.RateQuota`` with
    ``retry_after=1e12`` (any ``Retry-After`` over ``HUGE_WAIT``, an hour, is
    counted as ``huge_retry_after``), and the account's refusals, 429
    ``PrepaidBillOverdue``, ``PostpaidBillOverdue``, ``CommodityNotPurchased``,
    ``Throttling.AllocationQuota`` or 400 ``Arrearage`` (``BILLING_CODES``,
    counted as ``billing``), each with its message of the simulator's table.

    Faults apply after authentication, and never change the simulator's state:
    only what the client is told (a ``late`` fault changes *when* the request
    takes effect, not what it does).
    """

    endpoint: str = attrs.field(validator=_check_endpoint)
    kind: FaultKind = attrs.field(validator=_check_kind)
    times: int = attrs.field(default=1, validator=_check_times)
    status: int = 500
    code: str = "InternalError"
    retry_after: float | None = None
    after_processing: bool = attrs.field(
        default=attrs.Factory(_answer_kinds_process, takes_self=True)
    )
    delay: float = attrs.field(
        default=attrs.Factory(_default_delay, takes_self=True), validator=_check_delay
    )
    keep: float = attrs.field(default=0.5, validator=_check_keep)
    field: str | None = attrs.field(default=None, validator=_check_field)
    size: int = attrs.field(default=DEFAULT_HUGE_BYTES, validator=_check_size)
    chunked: bool = False
    interval: float = attrs.field(default=0.5, validator=_check_interval)
    task_id: str | None = attrs.field(default=None, validator=_check_task_id)

    def __attrs_post_init__(self) -> None:
        if self.kind in ANSWER_KINDS and not self.after_processing:
            raise ValueError(
                f"a {self.kind} fault rewrites the real answer, so it always comes after "
                "processing; after_processing=False is not possible"
            )
        if self.kind == "late":
            if self.after_processing:
                raise ValueError(
                    "a late fault answers before the request is processed (it is processed "
                    "delay seconds later); after_processing=True is not possible"
                )
            if self.endpoint not in LATE_ENDPOINTS:
                raise ValueError(
                    f"a late fault plays on an API endpoint, one of {sorted(LATE_ENDPOINTS)}; "
                    f"got {self.endpoint!r}"
                )
            if self.status != 0 and not 400 <= self.status <= 599:
                raise ValueError(
                    "a late fault answers an error status (400 to 599) or drops the "
                    f"connection (status=0); got status={self.status!r}"
                )
        if self.kind == "echo_key" and not 400 <= self.status <= 599:
            raise ValueError(
                "an echo_key fault answers an error status (400 to 599), got "
                f"status={self.status!r}"
            )


def fault_label(fault: Fault, endpoint: str) -> str:
    """What ``fault`` does to a request to ``endpoint``, named as ``Chaos``'s fields are.

    A 429 is ``throttle_burst``; a 5xx is ``server_error`` (before processing,
    no ``Retry-After``), ``server_error_retry_after`` or ``server_error_after``;
    any other status is ``odd_status_after`` after processing and ``status``
    before. Resets and delays are ``reset_before`` / ``reset_after`` and
    ``slow_before`` / ``slow_after``; ``truncate`` is ``truncated``,
    ``drop_field`` is ``missing_field``; ``cut`` is ``cut_download`` on the
    result host and ``cut`` elsewhere; ``late`` is ``late``.

    The hostile ones: a ``status`` with one of ``BILLING_CODES`` is ``billing``,
    one with a ``Retry-After`` over ``HUGE_WAIT`` ``huge_retry_after`` (both
    before the rules above); ``huge`` is ``huge_answer``, ``gzip_bomb``, ``drip``
    and ``odd_task_id`` keep their names, ``echo_key`` is ``echoed_key``, and
    ``gzip`` is ``gzip_download`` on the result host and ``gzip`` elsewhere.
    """
    when = "after" if fault.after_processing else "before"
    named = _HOSTILE_LABELS.get(fault.kind)
    if named is not None:
        return named
    if fault.kind == "gzip":
        return "gzip_download" if endpoint == "download" else "gzip"
    if fault.kind == "status":
        if fault.code in BILLING_CODES:
            return "billing"
        if fault.retry_after is not None and fault.retry_after > HUGE_WAIT:
            return "huge_retry_after"
        if fault.status == 429:
            return "throttle_burst"
        if 500 <= fault.status < 600:
            if fault.after_processing:
                return "server_error_after"
            return "server_error" if fault.retry_after is None else "server_error_retry_after"
        return "odd_status_after" if fault.after_processing else "status"
    if fault.kind == "late":
        return "late"
    if fault.kind == "reset":
        return f"reset_{when}"
    if fault.kind == "delay":
        return f"slow_{when}"
    if fault.kind == "truncate":
        return "truncated"
    if fault.kind == "drop_field":
        return "missing_field"
    return "cut_download" if endpoint == "download" else "cut"


_HOSTILE_LABELS = {
    "huge": "huge_answer",
    "gzip_bomb": "gzip_bomb",
    "drip": "drip",
    "echo_key": "echoed_key",
    "odd_task_id": "odd_task_id",
}


class FaultSource(Protocol):
    """Anything that can decide a request's fault; the simulator asks per request."""

    def take(self, endpoint: str) -> Fault | None:
        """The fault for this request to ``endpoint``, consuming it; ``None`` for none."""
        ...


@attrs.define
class _Armed:
    fault: Fault
    remaining: int


class FaultBook:
    """The scripted faults, fired in the order they were added."""

    def __init__(self) -> None:
        self._armed: list[_Armed] = []

    def add(self, fault: Fault) -> None:
        """Arm ``fault`` for its next ``fault.times`` matching requests."""
        self._armed.append(_Armed(fault, fault.times))

    def clear(self) -> None:
        """Disarm every fault not yet fired."""
        self._armed.clear()

    def take(self, endpoint: str) -> Fault | None:
        """The first armed fault matching ``endpoint``, counted as fired once."""
        for armed in self._armed:
            if armed.fault.endpoint in ("*", endpoint):
                armed.remaining -= 1
                if armed.remaining == 0:
                    self._armed.remove(armed)
                return armed.fault
        return None

    @property
    def pending(self) -> tuple[tuple[Fault, int], ...]:
        """Each armed fault with how many more times it will fire."""
        return tuple((armed.fault, armed.remaining) for armed in self._armed)

    def __len__(self) -> int:
        return len(self._armed)

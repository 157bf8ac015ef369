"""Chaos: random faults with one probability per kind, reproducible from a seed.

``Chaos`` is the frozen setting (``SimulatorConfig(chaos=...)``); ``ChaosSource``
is the ``FaultSource`` the simulator builds from it. Each request (after
authentication) to one of ``Chaos.endpoints`` rolls one die per kind that can
happen there, each with that kind's probability; if several come up, one of
them is chosen at random. A request gets at most one fault, so with
probabilities ``p_k`` the chance of some fault is ``1 - prod(1 - p_k)``.

Reproducibility: every endpoint draws from its own generator, seeded with
``(seed, endpoint)``, so the n-th request to an endpoint gets the same fault
whatever the other endpoints saw: the same seed and the same requests give
the same faults, even when requests to different endpoints interleave
differently from run to run.

The hostile kinds (``HOSTILE_KINDS``: huge answers, gzip bombs, drips, huge
``Retry-After``, billing refusals, echoed keys, odd task ids, gzip-encoded
videos) roll their dice on a second generator, seeded with
``(seed, endpoint, "hostile")``: the transit kinds draw exactly what they drew
before those kinds existed, so an older seed plays the same faults as before,
and turning hostile kinds on only replaces some of them (when the dice of both
come up, each kind that came up is as likely to be played). ``Chaos.uniform``
leaves the hostile kinds at 0 unless asked.

``Chaos``'s docstring says what each kind does, and where.
"""

from __future__ import annotations

import math
import random
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from ._faults import DEFAULT_DRIP_SECONDS, DEFAULT_HUGE_BYTES, HUGE_WAIT, Fault

__all__ = [
    "CHAOS_ENDPOINTS",
    "CHAOS_KINDS",
    "HOSTILE_KINDS",
    "Chaos",
    "ChaosKind",
    "ChaosSource",
]

ChaosKind = Literal[
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
    # Appended, not sorted in: each request rolls the dice in this order, so new
    # kinds at the end leave the draws of the older ones where they were.
    "late",
    "odd_status_after",
    # The hostile kinds: a service misbehaving on purpose. Rolled on a die of their own.
    "huge_answer",
    "gzip_bomb",
    "drip",
    "huge_retry_after",
    "billing",
    "echoed_key",
    "odd_task_id",
    "gzip_download",
]
#: Every kind, in the order the dice are rolled.
CHAOS_KINDS: tuple[ChaosKind, ...] = typing.get_args(ChaosKind)
#: The kinds of a hostile service, off in ``Chaos.uniform`` unless ``hostile=True``.
HOSTILE_KINDS: tuple[ChaosKind, ...] = CHAOS_KINDS[CHAOS_KINDS.index("huge_answer") :]
#: The kinds of faults in transit, each request's first dice.
_TRANSIT_KINDS: tuple[ChaosKind, ...] = CHAOS_KINDS[: CHAOS_KINDS.index("huge_answer")]

_API = ("detect", "submit", "query", "list", "cancel", "upload_policy")

#: The hostile kinds of every API endpoint; a submit also sees ``odd_task_id``.
_API_HOSTILE: tuple[ChaosKind, ...] = (
    "huge_answer",
    "gzip_bomb",
    "drip",
    "huge_retry_after",
    "billing",
    "echoed_key",
)


def _api_kinds(endpoint: str) -> tuple[ChaosKind, ...]:
    # A late query or list would change nothing when it is finally processed: only a
    # submit's late effect (a task nobody was told about) is worth the dice.
    left_out = ("cut_download",) if endpoint == "submit" else ("cut_download", "late")
    transit = tuple(k for k in _TRANSIT_KINDS if k not in left_out)
    odd_id: tuple[ChaosKind, ...] = ("odd_task_id",) if endpoint == "submit" else ()
    return transit + _API_HOSTILE + odd_id


#: The endpoints chaos can play on, and what can happen on each.
_KINDS_AT: dict[str, tuple[ChaosKind, ...]] = {
    **{endpoint: _api_kinds(endpoint) for endpoint in _API},
    # The upload host stores a file or not: no body for the client to misread, no
    # bursts, and no API answers to stand out among.
    "upload": tuple(
        k
        for k in _TRANSIT_KINDS
        if k
        not in (
            "truncated",
            "missing_field",
            "throttle_burst",
            "cut_download",
            "late",
            "odd_status_after",
        )
    ),
    "download": (
        "server_error",
        "server_error_retry_after",
        "reset_before",
        "slow_before",
        "cut_download",
        "drip",
        "gzip_download",
    ),
}
CHAOS_ENDPOINTS: frozenset[str] = frozenset(_KINDS_AT)

#: Endpoints that share one 429 burst, as they share the client's pacing.
_GROUP = {"query": "tasks", "list": "tasks", "cancel": "tasks"}

#: The 5xx answers drawn from (docs/wire.md, "Errors"; a 502 is the gateway's).
_SERVER_ERRORS = (
    (500, "InternalError"),
    (500, "SystemError"),
    (500, "ModelServingError"),
    (502, "InternalError"),
    (503, "ServiceUnavailable"),
    (503, "ModelUnavailable"),
)

#: The answers of ``odd_status_after``: none is in the protocol (docs/wire.md, "Errors").
_ODD_STATUSES = (302, 307, 408)

#: The share of ``late`` faults that drop the connection instead of answering a 5xx.
_LATE_DROPPED = 0.25

#: The fields a ``missing_field`` fault may drop, per endpoint (each present in a 200).
_DROPPABLE: dict[str, tuple[str, ...]] = {
    "detect": ("output", "output.bbox_face", "output.ext_bbox_face"),
    "submit": ("output", "output.task_id", "output.task_status"),
    "query": ("output", "output.task_id", "output.task_status"),
    "list": ("data", "total"),
    "cancel": ("request_id",),
    "upload_policy": ("data", "data.upload_dir"),
}

#: Bytes kept by a cut or truncated body: never (almost) all, never (almost) none.
_KEEP_RANGE = (0.1, 0.9)

#: The account's refusals ``billing`` draws from (docs/wire.md, "Errors").
_BILLING = (
    (429, "PrepaidBillOverdue"),
    (429, "PostpaidBillOverdue"),
    (429, "CommodityNotPurchased"),
    (429, "Throttling.AllocationQuota"),
    (400, "Arrearage"),
)

#: The ids ``odd_task_id`` shows (``{task_id}``: the real one): each leaves ``/tasks/``
#: or cannot be a path segment at all.
_ODD_TASK_IDS = (
    "..",
    ".",
    "../{task_id}",
    "{task_id}/cancel",
    "{task_id}" + "0" * 10_240,
)


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"Chaos.{attribute.name} must be a probability from 0 to 1, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(
            f"Chaos.{attribute.name} must be a positive number of seconds, got {value!r}"
        )


def _whole_bytes(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"Chaos.{attribute.name} must be a whole number of bytes >= 1, got {value!r}"
        )


def _huge_wait(_: object, __: attrs.Attribute[float], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not HUGE_WAIT < value < math.inf
    ):
        raise ValueError(
            f"Chaos.huge_wait must be a number of seconds over {HUGE_WAIT:g} (an hour), "
            f"got {value!r}"
        )


def _burst_length(_: object, __: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Chaos.burst_length must be a whole number >= 1, got {value!r}")


def _late_after(value: Any) -> tuple[float, float]:
    """``(low, high)`` as floats; anything that is not a pair is left to the validator."""
    if isinstance(value, tuple | list) and len(value) == 2:
        low, high = value
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
            return float(low), float(high)
    return value  # type: ignore[no-any-return]


def _check_late_after(
    _: object, __: attrs.Attribute[tuple[float, float]], value: tuple[float, float]
) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(v, float) and math.isfinite(v) for v in value)
        or not 0 <= value[0] <= value[1]
    ):
        raise ValueError(
            "Chaos.late_after must be a pair (low, high) of provider seconds with "
            f"0 <= low <= high, got {value!r}"
        )


def _endpoints(_: object, __: attrs.Attribute[frozenset[str]], value: frozenset[str]) -> None:
    unknown = value - CHAOS_ENDPOINTS
    if unknown:
        raise ValueError(
            f"Chaos.endpoints: {sorted(unknown)} cannot see chaos; expected some of "
            f"{sorted(CHAOS_ENDPOINTS)}"
        )


def _endpoint_set(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):  # a lone name, not the set of its letters
        return frozenset({value})
    return frozenset(value)


def _probability_field() -> Any:
    return attrs.field(default=0.0, validator=_probability)


@attrs.frozen(kw_only=True)
class Chaos:
    """Random faults: one probability (0 to 1) per kind, and a seed.

    Every probability defaults to 0 (nothing happens); ``Chaos.uniform(rate)``
    sets them all to ``rate``. Each request (after authentication) rolls one die
    per kind that can happen on its endpoint; if several come up, one of them is
    chosen at random, so the chance of some fault is ``1 - prod(1 - p)``. The
    n-th request to an endpoint gets the same fault for the same ``seed``,
    however the other endpoints' requests interleave with it.
    ``slow_seconds`` is how late a slow answer comes (real seconds: set it above
    the client's read timeout), ``retry_after`` the ``Retry-After`` of
    ``server_error_retry_after`` (real seconds), ``burst_length`` how many
    requests of an endpoint group one ``throttle_burst`` answers 429,
    ``late_after`` the range a ``late`` submit's delay is drawn from,
    ``endpoints`` where chaos plays (default: everywhere it can); ``huge_bytes``,
    ``bomb_bytes``, ``drip_interval``, ``drip_seconds`` and ``huge_wait`` shape
    the hostile kinds below.

    What each kind does (the names are also the keys of
    ``SimulatorStats.faults_by_kind``):

    ``server_error``
        500, 502 or 503 with the provider's error body (``InternalError``,
        ``SystemError``, ``ModelServingError``, ``ServiceUnavailable``,
        ``ModelUnavailable``), before processing, without ``Retry-After``.
    ``server_error_retry_after``
        The same with ``Retry-After: retry_after`` (real seconds).
    ``server_error_after``
        The same, without ``Retry-After``, *after* processing: a submit answered
        500 has created its task.
    ``reset_before`` / ``reset_after``
        The connection drops without an answer, before the request is processed
        (a submit creates nothing) or after (it created its task: the ambiguous
        case).
    ``slow_before`` / ``slow_after``
        The answer comes ``slow_seconds`` real seconds late. ``slow_before`` waits
        first and processes afterwards, so a submit the client gave up on creates
        its task late (docs/wire.md, "Rate limits"); ``slow_after`` processes at once and
        answers late.
    ``truncated``
        The real answer, its status kept (200 for a success), with its body cut
        mid-way: a complete HTTP message whose body is not valid JSON.
    ``missing_field``
        The real JSON answer without one field: ``output`` or a key the client
        needs inside it (``output.task_status``, ``output.task_id``, the boxes of a
        detection), ``data`` or ``total`` of a list.
    ``throttle_burst``
        429 ``Throttling.RateQuota`` for this request and the next
        ``burst_length - 1`` requests of its endpoint group (detect; submit; the
        task endpoints query, list and cancel together; upload policy); the rest of
        a burst is served without rolling dice.
    ``cut_download``
        A result video whose ``Content-Length`` promises more bytes than are sent
        before the connection closes.
    ``late``
        A submit answered at once as if it failed (a 500, 502 or 503 with the
        provider's error body; one time in four, a dropped connection instead)
        and processed only later, in the background: after a delay drawn
        uniformly from ``late_after`` (provider seconds, scaled by the
        simulator's ``time_scale``; by default 150 to 250, past the client's
        120 s reconcile window). Its task then appears, created at that instant;
        several late submits are therefore created out of order (docs/wire.md,
        "Rate limits"). Its rate-limit admission happens on arrival.
    ``odd_status_after``
        The request is processed (a submit creates its task), then answered
        with something the protocol does not list: 302 or 307 with a
        ``Location`` naming the same path, or 408 Request Timeout, each with a
        short plain-text body (docs/wire.md, "Errors": such an answer does not
        prove that nothing was created).

    The hostile kinds (``HOSTILE_KINDS``), off in ``uniform`` unless
    ``hostile=True``; they roll a die of their own (see the module's docstring):

    ``huge_answer``
        The real JSON answer after whitespace, ``huge_bytes`` in all (8 MiB by
        default), streamed; half the time chunked, without ``Content-Length``.
    ``gzip_bomb``
        The same, ``bomb_bytes`` inflated (8 MiB by default), sent
        ``Content-Encoding: gzip``: about a thousandth of that on the wire.
    ``drip``
        The real answer's headers at once, then its body one byte every
        ``drip_interval`` real seconds (0.5), the rest at once after
        ``drip_seconds`` (60), or less if the client hangs up.
    ``huge_retry_after``
        429 ``Throttling.RateQuota`` with ``Retry-After: huge_wait``
        (``1000000000000`` by default), before processing.
    ``billing``
        The account refused, before processing: 429 ``PrepaidBillOverdue``,
        ``PostpaidBillOverdue``, ``CommodityNotPurchased`` or
        ``Throttling.AllocationQuota``, or 400 ``Arrearage``, with the provider's
        envelope and the simulator's message for the code.
    ``echoed_key``
        A gateway's plain-text 502 that repeats the request's headers, its
        ``Authorization`` among them; half the time after processing. (A 401
        echoing the key ends a batch for good: a scripted ``echo_key`` fault.)
    ``odd_task_id``
        A submit's answer naming an impossible task id (``..``, ``.``,
        ``../<id>``, ``<id>/cancel``, or the id and 10 kB more), its task created
        under the real id all the same.
    ``gzip_download``
        A result video sent ``Content-Encoding: gzip``, its ``Content-Length``
        the compressed size.

    Where they happen: every kind on the API endpoints but ``cut_download``, which
    only plays on the result host (``download``), and ``late``, which only plays
    on ``submit``. The result host also sees the status errors, ``reset_before``
    and ``slow_before`` (in OSS's XML); the upload host sees the status errors,
    resets and delays. The simulator's own image host
    (``sample``) and unknown paths (``other``) never see chaos: a fault there would
    turn into a permanent ``400 InvalidURL`` of the detection, not a transient one.
    Of the hostile kinds, the API endpoints see all but ``gzip_download`` (which
    plays on the result host only) and ``odd_task_id`` (submits only); the result
    host sees ``drip`` and ``gzip_download``; the upload host none.
    """

    seed: int = 0
    server_error: float = _probability_field()
    server_error_retry_after: float = _probability_field()
    server_error_after: float = _probability_field()
    reset_before: float = _probability_field()
    reset_after: float = _probability_field()
    slow_before: float = _probability_field()
    slow_after: float = _probability_field()
    truncated: float = _probability_field()
    missing_field: float = _probability_field()
    throttle_burst: float = _probability_field()
    cut_download: float = _probability_field()
    late: float = _probability_field()
    odd_status_after: float = _probability_field()
    huge_answer: float = _probability_field()
    gzip_bomb: float = _probability_field()
    drip: float = _probability_field()
    huge_retry_after: float = _probability_field()
    billing: float = _probability_field()
    echoed_key: float = _probability_field()
    odd_task_id: float = _probability_field()
    gzip_download: float = _probability_field()
    slow_seconds: float = attrs.field(default=2.0, validator=_positive)
    retry_after: float = attrs.field(default=1.0, validator=_positive)
    burst_length: int = attrs.field(default=5, validator=_burst_length)
    late_after: tuple[float, float] = attrs.field(
        default=(150.0, 250.0), converter=_late_after, validator=_check_late_after
    )
    endpoints: frozenset[str] = attrs.field(
        default=CHAOS_ENDPOINTS, converter=_endpoint_set, validator=_endpoints
    )
    huge_bytes: int = attrs.field(default=DEFAULT_HUGE_BYTES, validator=_whole_bytes)
    bomb_bytes: int = attrs.field(default=DEFAULT_HUGE_BYTES, validator=_whole_bytes)
    drip_interval: float = attrs.field(default=0.5, validator=_positive)
    drip_seconds: float = attrs.field(default=DEFAULT_DRIP_SECONDS, validator=_positive)
    huge_wait: float = attrs.field(default=1e12, validator=_huge_wait)

    @classmethod
    def uniform(
        cls, rate: float, *, seed: int = 0, hostile: bool = False, **settings: Any
    ) -> Chaos:
        """Every kind in transit with probability ``rate``; ``settings`` sets the other fields.

        An API request can suffer about a dozen kinds (a submit twelve, a query
        eleven), so ``uniform(0.01)`` gives roughly one request in nine some
        fault. The hostile kinds (``HOSTILE_KINDS``) stay at 0 unless
        ``hostile=True`` gives them ``rate`` too, or ``settings`` names them.
        """
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValueError(f"the chaos rate must be a probability from 0 to 1, got {rate!r}")
        rates: dict[str, Any] = dict.fromkeys(CHAOS_KINDS if hostile else _TRANSIT_KINDS, rate)
        return cls(seed=seed, **{**rates, **settings})

    @property
    def probabilities(self) -> Mapping[ChaosKind, float]:
        """Each kind's probability, in ``CHAOS_KINDS`` order."""
        return {kind: float(getattr(self, kind)) for kind in CHAOS_KINDS}

    def kinds_at(self, endpoint: str) -> tuple[ChaosKind, ...]:
        """The kinds that can happen on ``endpoint`` (none outside ``endpoints``)."""
        if endpoint not in self.endpoints:
            return ()
        return _KINDS_AT[endpoint]


class ChaosSource:
    """The ``FaultSource`` of one ``Chaos`` setting: dice per endpoint, bursts per group.

    ``time_scale`` is the simulator's: it turns the provider seconds of
    ``Chaos.late_after`` into the real delay of a ``late`` fault.
    """

    def __init__(self, chaos: Chaos, *, time_scale: float = 1.0) -> None:
        self.chaos = chaos
        self.time_scale = time_scale
        self._dice: dict[str, random.Random] = {}
        self._bursts: dict[str, int] = {}

    def _die(self, endpoint: str, *, hostile: bool = False) -> random.Random:
        name = f"{endpoint}/hostile" if hostile else endpoint
        die = self._dice.get(name)
        if die is None:
            # A string seed is hashed with SHA-512, so it is the same in every process.
            die = self._dice[name] = random.Random(f"{self.chaos.seed}/{name}")
        return die

    def take(self, endpoint: str) -> Fault | None:
        """This request's fault: the rest of a burst, a kind whose die came up, or ``None``."""
        kinds = self.chaos.kinds_at(endpoint)
        if not kinds:
            return None
        group = _GROUP.get(endpoint, endpoint)
        if self._bursts.get(group, 0) > 0:
            self._bursts[group] -= 1
            return _throttled(endpoint)
        transit = self._transit(kinds, endpoint, group)
        die = self._die(endpoint, hostile=True)
        probabilities = self.chaos.probabilities
        odd = [k for k in kinds if k in HOSTILE_KINDS and die.random() < probabilities[k]]
        if not odd:
            return transit[1] if transit is not None else None
        # Each kind that came up is as likely as the others to be the one played.
        hits = len(transit[0]) if transit is not None else 0
        index = die.randrange(hits + len(odd))
        if transit is not None and index < hits:
            return transit[1]
        kind = odd[0] if len(odd) == 1 else die.choice(odd)
        return self._hostile(kind, endpoint, die)

    def _transit(
        self, kinds: tuple[ChaosKind, ...], endpoint: str, group: str
    ) -> tuple[list[ChaosKind], Fault] | None:
        """The kinds in transit that came up, and the fault drawn among them; ``None``: none.

        Drawn whatever the hostile dice say, so they change nothing here: a
        request gets the same fault in transit with or without them, unless a
        hostile one is played instead (a burst drawn then starts all the same).
        """
        die = self._die(endpoint)
        probabilities = self.chaos.probabilities
        # Every die is rolled, whatever comes up, so each request uses the same draws.
        hits = [k for k in kinds if k not in HOSTILE_KINDS and die.random() < probabilities[k]]
        if not hits:
            return None
        kind = hits[0] if len(hits) == 1 else die.choice(hits)
        if kind == "throttle_burst":
            self._bursts[group] = self.chaos.burst_length - 1
        return hits, self._fault(kind, endpoint, die)

    def _hostile(self, kind: ChaosKind, endpoint: str, die: random.Random) -> Fault:
        chaos = self.chaos
        if kind == "huge_answer":
            return Fault(endpoint, "huge", size=chaos.huge_bytes, chunked=die.random() < 0.5)
        if kind == "gzip_bomb":
            return Fault(endpoint, "gzip_bomb", size=chaos.bomb_bytes, chunked=die.random() < 0.5)
        if kind == "drip":
            return Fault(endpoint, "drip", interval=chaos.drip_interval, delay=chaos.drip_seconds)
        if kind == "huge_retry_after":
            return Fault(
                endpoint,
                "status",
                status=429,
                code="Throttling.RateQuota",
                retry_after=chaos.huge_wait,
            )
        if kind == "billing":
            status, code = die.choice(_BILLING)
            return Fault(endpoint, "status", status=status, code=code)
        if kind == "echoed_key":
            return Fault(endpoint, "echo_key", status=502, after_processing=die.random() < 0.5)
        if kind == "odd_task_id":
            return Fault(endpoint, "odd_task_id", task_id=die.choice(_ODD_TASK_IDS))
        return Fault(endpoint, "gzip")

    def _fault(self, kind: ChaosKind, endpoint: str, die: random.Random) -> Fault:
        if kind == "throttle_burst":
            return _throttled(endpoint)
        if kind in ("server_error", "server_error_retry_after", "server_error_after"):
            status, code = die.choice(_SERVER_ERRORS)
            return Fault(
                endpoint,
                "status",
                status=status,
                code=code,
                retry_after=self.chaos.retry_after if kind == "server_error_retry_after" else None,
                after_processing=kind == "server_error_after",
            )
        if kind in ("reset_before", "reset_after"):
            return Fault(endpoint, "reset", after_processing=kind == "reset_after")
        if kind in ("slow_before", "slow_after"):
            return Fault(
                endpoint,
                "delay",
                delay=self.chaos.slow_seconds,
                after_processing=kind == "slow_after",
            )
        if kind == "late":
            status, code = die.choice(_SERVER_ERRORS)
            if die.random() < _LATE_DROPPED:
                status = 0
            delay = die.uniform(*self.chaos.late_after) * self.time_scale
            return Fault(endpoint, "late", status=status, code=code, delay=delay)
        if kind == "odd_status_after":
            return Fault(
                endpoint, "status", status=die.choice(_ODD_STATUSES), after_processing=True
            )
        if kind == "missing_field":
            return Fault(endpoint, "drop_field", field=die.choice(_DROPPABLE[endpoint]))
        keep = die.uniform(*_KEEP_RANGE)
        return Fault(endpoint, "truncate" if kind == "truncated" else "cut", keep=keep)


def _throttled(endpoint: str) -> Fault:
    return Fault(endpoint, "status", status=429, code="Throttling.RateQuota")

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

``Chaos``'s docstring says what each kind does, and where.
"""

from __future__ import annotations

import math
import random
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from ._faults import Fault

__all__ = ["CHAOS_ENDPOINTS", "CHAOS_KINDS", "Chaos", "ChaosKind", "ChaosSource"]

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
]
#: Every kind, in the order the dice are rolled.
CHAOS_KINDS: tuple[ChaosKind, ...] = typing.get_args(ChaosKind)

_API = ("detect", "submit", "query", "list", "cancel", "upload_policy")


def _api_kinds(endpoint: str) -> tuple[ChaosKind, ...]:
    # A late query or list would change nothing when it is finally processed: only a
    # submit's late effect (a task nobody was told about) is worth the dice.
    left_out = ("cut_download",) if endpoint == "submit" else ("cut_download", "late")
    return tuple(k for k in CHAOS_KINDS if k not in left_out)


#: The endpoints chaos can play on, and what can happen on each.
_KINDS_AT: dict[str, tuple[ChaosKind, ...]] = {
    **{endpoint: _api_kinds(endpoint) for endpoint in _API},
    # The upload host stores a file or not: no body for the client to misread, no
    # bursts, and no API answers to stand out among.
    "upload": tuple(
        k
        for k in CHAOS_KINDS
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


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"Chaos.{attribute.name} must be a probability from 0 to 1, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(
            f"Chaos.{attribute.name} must be a positive number of seconds, got {value!r}"
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
    ``late_after`` the range a ``late`` submit's delay is drawn from, and
    ``endpoints`` where chaos plays (default: everywhere it can).

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

    Where they happen: every kind on the API endpoints but ``cut_download``, which
    only plays on the result host (``download``), and ``late``, which only plays
    on ``submit``. The result host also sees the status errors, ``reset_before``
    and ``slow_before`` (in OSS's XML); the upload host sees the status errors,
    resets and delays. The simulator's own image host
    (``sample``) and unknown paths (``other``) never see chaos: a fault there would
    turn into a permanent ``400 InvalidURL`` of the detection, not a transient one.
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
    slow_seconds: float = attrs.field(default=2.0, validator=_positive)
    retry_after: float = attrs.field(default=1.0, validator=_positive)
    burst_length: int = attrs.field(default=5, validator=_burst_length)
    late_after: tuple[float, float] = attrs.field(
        default=(150.0, 250.0), converter=_late_after, validator=_check_late_after
    )
    endpoints: frozenset[str] = attrs.field(
        default=CHAOS_ENDPOINTS, converter=_endpoint_set, validator=_endpoints
    )

    @classmethod
    def uniform(cls, rate: float, *, seed: int = 0, **settings: Any) -> Chaos:
        """Every kind with probability ``rate``; ``settings`` sets the other fields.

        An API request can suffer about a dozen kinds (a submit twelve, a query
        eleven), so ``uniform(0.01)`` gives roughly one request in nine some
        fault.
        """
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValueError(f"the chaos rate must be a probability from 0 to 1, got {rate!r}")
        rates: dict[str, Any] = dict.fromkeys(CHAOS_KINDS, rate)
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

    def _die(self, endpoint: str) -> random.Random:
        die = self._dice.get(endpoint)
        if die is None:
            # A string seed is hashed with SHA-512, so it is the same in every process.
            die = self._dice[endpoint] = random.Random(f"{self.chaos.seed}/{endpoint}")
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
        die = self._die(endpoint)
        probabilities = self.chaos.probabilities
        # Every die is rolled, whatever comes up, so each request uses the same draws.
        hits = [kind for kind in kinds if die.random() < probabilities[kind]]
        if not hits:
            return None
        kind = hits[0] if len(hits) == 1 else die.choice(hits)
        if kind == "throttle_burst":
            self._bursts[group] = self.chaos.burst_length - 1
        return self._fault(kind, endpoint, die)

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

"""Chaos: random faults with one probability per kind, reproducible from a seed.

``Chaos`` is the frozen setting (``SimulatorConfig(chaos=...)``), with the
checks of its fields; ``_chaos_kinds`` lists the kinds and where each can
happen; ``_chaos_source.ChaosSource`` is the ``FaultSource`` the simulator
builds from a setting, and its docstring says how the dice are rolled and why
the same seed plays the same faults. ``Chaos.uniform`` leaves the hostile kinds
at 0 unless asked.

``Chaos``'s docstring says what each kind does, and where.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ._chaos_kinds import CHAOS_ENDPOINTS, CHAOS_KINDS, KINDS_AT, TRANSIT_KINDS, ChaosKind
from ._faults import DEFAULT_DRIP_SECONDS, DEFAULT_HUGE_BYTES, HUGE_WAIT

__all__ = ["Chaos"]


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
    ``hostile=True``; they roll a die of their own (see ``_chaos_source``):

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
        rates: dict[str, Any] = dict.fromkeys(CHAOS_KINDS if hostile else TRANSIT_KINDS, rate)
        return cls(seed=seed, **{**rates, **settings})

    @property
    def probabilities(self) -> Mapping[ChaosKind, float]:
        """Each kind's probability, in ``CHAOS_KINDS`` order."""
        return {kind: float(getattr(self, kind)) for kind in CHAOS_KINDS}

    def kinds_at(self, endpoint: str) -> tuple[ChaosKind, ...]:
        """The kinds that can happen on ``endpoint`` (none outside ``endpoints``)."""
        if endpoint not in self.endpoints:
            return ()
        return KINDS_AT[endpoint]

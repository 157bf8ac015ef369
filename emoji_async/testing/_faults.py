"""Scripted faults: answers the service gives when something goes wrong in transit.

A ``Fault`` names an endpoint and what goes wrong there; a ``FaultBook`` holds
the scripted ones and hands each out for its next ``times`` matching requests.
The simulator only ever asks a fault source ``take(endpoint)``, so a future
chaos mode (random faults with probabilities) is another ``FaultSource`` that
produces the same ``Fault`` values, and every handler keeps working unchanged.
"""

from __future__ import annotations

from typing import Literal, Protocol

import attrs

from ._records import ENDPOINTS

__all__ = ["Fault", "FaultBook", "FaultKind", "FaultSource"]

FaultKind = Literal["status", "reset", "delay"]


def _check_endpoint(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value != "*" and value not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {value!r}; expected '*' or one of {sorted(ENDPOINTS)}")


def _check_kind(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value not in ("status", "reset", "delay"):
        raise ValueError(f"unknown fault kind {value!r}; expected status, reset or delay")


def _check_times(_: object, __: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"times must be at least 1, got {value!r}")


@attrs.frozen
class Fault:
    """What goes wrong for the next ``times`` requests to ``endpoint`` (``"*"``: any).

    ``status``: answer HTTP ``status`` with a provider error body carrying ``code``
    (and a ``Retry-After`` header when ``retry_after`` is given). ``reset``: drop
    the TCP connection without any HTTP answer. ``delay``: wait ``delay`` real
    seconds, then answer normally. With ``after_processing`` the request is
    processed first (a submit creates its task) and the fault replaces or delays
    the answer: the client cannot tell whether its request took effect.
    Faults apply after authentication.
    """

    endpoint: str = attrs.field(validator=_check_endpoint)
    kind: FaultKind = attrs.field(validator=_check_kind)
    times: int = attrs.field(default=1, validator=_check_times)
    status: int = 500
    code: str = "InternalError"
    retry_after: float | None = None
    after_processing: bool = False
    delay: float = 0.0


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

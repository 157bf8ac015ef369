"""What a simulator remembers about its traffic: one record per request, and counters.

Tests and benchmarks assert on these instead of on timing: "the client sent no
more than one submit per second" is a question about ``RequestRecord.at``,
"nothing was billed twice" one about ``SimulatorStats``.
"""

from __future__ import annotations

import typing
from typing import Literal

import attrs

__all__ = ["ENDPOINTS", "Endpoint", "RequestRecord", "SimulatorStats"]

#: The name of what a request asked for; rate limits and faults are per endpoint.
Endpoint = Literal[
    "detect",
    "submit",
    "query",
    "list",
    "cancel",
    "upload_policy",
    "upload",
    "download",
    "sample",
    "other",
]

ENDPOINTS: frozenset[str] = frozenset(typing.get_args(Endpoint))


@attrs.frozen
class RequestRecord:
    """One request as the simulator saw it.

    ``status`` is the HTTP status answered; 0 means no answer: the connection was
    dropped on purpose (a ``reset`` fault), or the request is still being handled
    (records are listed on arrival, in arrival order, and completed when answered).
    ``at`` is ``time.monotonic()`` when the request arrived, so it compares with
    the client's own monotonic clock. ``fault`` names the fault played on it, as
    ``SimulatorStats.faults_by_kind`` counts it (``"reset_after"``,
    ``"truncated"``...), or is ``None``.
    """

    method: str
    path: str
    endpoint: str
    status: int
    at: float
    fault: str | None = None


@attrs.define
class SimulatorStats:
    """Live counters, updated in place as the simulator works.

    Mutable on purpose: it is the simulator's own running tally, read at any
    time; take ``snapshot()`` to keep a value that will not move.
    ``detections_billed`` counts rejected detections too (the provider bills
    them); ``video_seconds_billed`` adds a template's seconds once, when its task
    succeeds; ``throttled`` counts every 429 sent, scripted ones included.
    ``faults_by_kind`` counts the requests a fault was played on, scripted or
    random, by what it did (the names of ``Chaos``'s fields: ``server_error``,
    ``reset_after``, ``throttle_burst``...; a burst of five 429s counts five).
    """

    tasks_created: int = 0
    throttled: int = 0
    throttled_by_endpoint: dict[str, int] = attrs.Factory(dict)
    requests_by_endpoint: dict[str, int] = attrs.Factory(dict)
    detections_billed: int = 0
    video_seconds_billed: int = 0
    faults_by_kind: dict[str, int] = attrs.Factory(dict)

    @property
    def faults(self) -> int:
        """How many requests a fault was played on, all kinds together."""
        return sum(self.faults_by_kind.values())

    def snapshot(self) -> SimulatorStats:
        """A copy that later traffic does not change."""
        return attrs.evolve(
            self,
            throttled_by_endpoint=dict(self.throttled_by_endpoint),
            requests_by_endpoint=dict(self.requests_by_endpoint),
            faults_by_kind=dict(self.faults_by_kind),
        )

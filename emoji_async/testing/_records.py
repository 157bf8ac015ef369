"""What a simulator remembers about its traffic: one record per request, and counters.

Tests and benchmarks assert on these instead of on timing: "the client sent no
more than one submit per second" is a question about ``RequestRecord.at``,
"nothing was billed twice" one about ``SimulatorStats``. The notifications the
simulated EventBridge sent (``DeliveryRecord``) are recorded the same way, so
what the service said can be held against what the client did.
"""

from __future__ import annotations

import typing
from typing import Literal

import attrs

__all__ = [
    "DELIVERY_OUTCOMES",
    "ENDPOINTS",
    "DeliveryOutcome",
    "DeliveryRecord",
    "Endpoint",
    "RequestRecord",
    "SimulatorStats",
]

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
    "certificate",
    "other",
]

ENDPOINTS: frozenset[str] = frozenset(typing.get_args(Endpoint))

#: What became of one attempt to deliver a notification (``DeliveryRecord.outcome``).
DeliveryOutcome = Literal["delivered", "retrying", "dead_lettered", "dropped"]
DELIVERY_OUTCOMES: tuple[DeliveryOutcome, ...] = typing.get_args(DeliveryOutcome)


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


@attrs.frozen(kw_only=True)
class DeliveryRecord:
    """One attempt of the simulated EventBridge to deliver a task-finished event to a target.

    ``event_id`` is the event's ``id`` (a duplicate copy carries the same one),
    ``task_id`` and ``task_status`` what it reports. ``copy`` counts the copies
    of the event sent to ``target`` (0, and 1, 2... for duplicates);
    ``attempt`` the tries of one copy (1, and 2, 3... for retries; 0 for a copy
    that was lost and never sent). ``status`` is the HTTP status the target
    answered, ``None`` when there was no answer (``error`` says why:
    ``"timeout"`` or the connection error). ``outcome``: ``"delivered"`` (a
    2xx answer), ``"retrying"`` (it failed and will be tried again),
    ``"dead_lettered"`` (the last try failed: the copy is given up),
    ``"dropped"`` (lost on purpose, ``SimulatorConfig.notify_drop``). ``at`` is
    ``time.monotonic()`` when the attempt was sent (for a dropped copy, when
    its task ended), like ``RequestRecord.at``.
    """

    event_id: str
    task_id: str
    task_status: str
    target: str
    copy: int
    attempt: int
    outcome: DeliveryOutcome
    at: float
    status: int | None = None
    error: str | None = None


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

    The simulated EventBridge's counters (all 0 without
    ``SimulatorConfig.notify_targets``): ``events_published``, one per task
    that ended while the simulator was served; ``deliveries``, every POST sent
    to a target, retries included; ``delivered``, the copies a target accepted
    (2xx); ``dropped``, the copies lost on purpose, never sent; ``duplicated``,
    the copies sent beyond the first one of an event to a target;
    ``dead_lettered``, the copies given up after their last retry. Once every
    copy has settled, ``events_published * len(notify_targets) + duplicated ==
    delivered + dropped + dead_lettered``.
    """

    tasks_created: int = 0
    throttled: int = 0
    throttled_by_endpoint: dict[str, int] = attrs.Factory(dict)
    requests_by_endpoint: dict[str, int] = attrs.Factory(dict)
    detections_billed: int = 0
    video_seconds_billed: int = 0
    faults_by_kind: dict[str, int] = attrs.Factory(dict)
    events_published: int = 0
    deliveries: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    dead_lettered: int = 0

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

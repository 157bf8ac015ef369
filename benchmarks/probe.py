"""Measuring one call against a misbehaving simulator: where it starts and ends, what it cost.

A hostile scenario is given a :class:`Probe`: the call it times starts at
``start()`` (requests, billing and memory are counted from there) and ends at
``stop()``; ``facts`` carries what else the scenario found. :class:`Measured`
is what one scenario measured, as its process reports it to the parent.
:func:`key_shows` says whether an API key shows anywhere in an error.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import attrs

from emoji_async.testing import SimulatorServer

from .meters import peak_rss_mb, rss_mb

__all__ = ["Measured", "Probe", "key_shows"]


@attrs.frozen
class Measured:
    """What one scenario measured."""

    name: str
    outcome: str
    seconds: float
    deadline: float
    requests: dict[str, int]
    rss_growth_mb: float
    finished: bool
    facts: dict[str, Any] = attrs.field(factory=dict)

    @property
    def of_deadline(self) -> float:
        """The time taken, as a multiple of the call's own deadline."""
        return self.seconds / self.deadline


class Probe:
    """What a scenario tells the measurement: where the hostile call starts, and facts."""

    def __init__(self, server: SimulatorServer) -> None:
        self.server = server
        self.facts: dict[str, Any] = {}
        self.start()

    def start(self) -> None:
        """The hostile call starts now: time, requests and memory are counted from here."""
        stats = self.server.simulator.stats
        self.requests_before = len(self.server.simulator.requests)
        self.billed_before = stats.detections_billed
        self.created_before = stats.tasks_created
        self.rss_before = max(rss_mb(), peak_rss_mb())
        self.began = time.monotonic()
        self.ended: float | None = None

    def stop(self) -> None:
        """The hostile call ended now: what the scenario does next is not timed."""
        if self.ended is None:
            self.ended = time.monotonic()


def key_shows(key: str, exc: BaseException) -> bool:
    """Whether ``key`` shows in ``exc``: its text, its repr, its causes, its traceback."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if key in str(current) or key in repr(current):
            return True
        current = current.__cause__ or current.__context__
    return key in "".join(traceback.format_exception(exc))

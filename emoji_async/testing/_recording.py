"""The record of every request, whatever its fate: the first step of the pipeline.

A middleware lists each request on arrival (status 0, "no answer yet"), so a
request still in flight is visible, and replaces that record with the final
one when it ends: its status (0 when nothing was answered) and the fault
played on it, which the fault machinery names through ``note_fault``. It keeps
the newest ``SimulatorConfig.keep_requests`` records and counts requests and
429s per endpoint in ``SimulatorStats``.
"""

from __future__ import annotations

import asyncio
import contextvars
import time

import attrs
from aiohttp import web
from aiohttp.typedefs import Handler

from ._records import RequestRecord, SimulatorStats
from ._responses import Dropped

__all__ = ["Recorder", "note_fault"]

#: Route names that are another spelling of an endpoint (names must be unique).
_ALIASES = {"query_slash": "query", "list_slash": "list"}

#: The labels of the faults played on the request being handled, for its record.
_PLAYED: contextvars.ContextVar[list[str]] = contextvars.ContextVar("emoji_simulator_played")


def note_fault(label: str) -> None:
    """Name ``label`` among the faults played on the request being handled."""
    played = _PLAYED.get(None)
    if played is not None:
        played.append(label)


class Recorder:
    """Keeps ``requests`` (the newest ``keep`` of them, or all) and their counts in ``stats``."""

    def __init__(self, stats: SimulatorStats, *, keep: int | None) -> None:
        self.requests: list[RequestRecord] = []
        self._stats = stats
        self._keep = keep

    async def record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Handle ``request`` with ``handler``, recording it (the body of a middleware)."""
        # Listed on arrival (status 0, "no answer yet"), so a request still in flight
        # (a scripted delay, say) is visible; its status is filled in when it ends.
        route = request.match_info.route.name
        endpoint = _ALIASES.get(route, route) if route is not None else "other"
        arrived = RequestRecord(request.method, request.path, endpoint, 0, time.monotonic())
        self.requests.append(arrived)
        keep = self._keep
        if keep is not None and len(self.requests) > keep:
            # A quarter at a time, so forgetting costs O(1) per request on average.
            del self.requests[: len(self.requests) - (keep - keep // 4)]
        counts = self._stats.requests_by_endpoint
        counts[endpoint] = counts.get(endpoint, 0) + 1
        played: list[str] = []
        token = _PLAYED.set(played)
        status = 500
        try:
            response = await handler(request)
            status = 0 if isinstance(response, Dropped) else response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 0  # shut down mid-request: nothing was answered
            raise
        finally:
            _PLAYED.reset(token)
            self._settle(arrived, status, played[-1] if played else None)

    def _settle(self, arrived: RequestRecord, status: int, fault: str | None) -> None:
        """Replace the arrival record with the final one (unless it was forgotten since)."""
        for index in range(len(self.requests) - 1, -1, -1):
            if self.requests[index] is arrived:
                self.requests[index] = attrs.evolve(arrived, status=status, fault=fault)
                break
        if status == 429:
            self._stats.throttled += 1
            throttled = self._stats.throttled_by_endpoint
            throttled[arrived.endpoint] = throttled.get(arrived.endpoint, 0) + 1

"""Playing a request's fault: before its operation, instead of it (``late``), or on its answer.

A fault only ever changes what the client is told (and, for ``late``, when the
request takes effect): the tasks, uploads and bills stay what the operations
made them. A fault that has nothing to act on (a field the answer lacks, a
body too short to cut, no JSON to pad) leaves the answer as it is and is not
counted as played.
"""

from __future__ import annotations

import attrs
from aiohttp import web

from ._clock import Clock
from ._faults import Fault, fault_label
from ._hostile import echo_reply, is_json_object, with_task_id
from ._lifetime import Lifetime, Operation
from ._recording import note_fault
from ._records import SimulatorStats
from ._replies import dated, fault_reply, kept, without
from ._responses import cut, drop, hostile_answer, respond
from ._wire import Reply

__all__ = ["FaultPlayer"]


class FaultPlayer:
    """Plays faults on requests, and sends answers dated on the service's clock."""

    def __init__(self, clock: Clock, stats: SimulatorStats, lifetime: Lifetime) -> None:
        self._clock = clock
        self._stats = stats
        self._lifetime = lifetime

    def send(self, reply: Reply, endpoint: str) -> web.Response:
        return respond(self._dated(reply, endpoint))

    def _dated(self, reply: Reply, endpoint: str) -> Reply:
        return dated(reply, endpoint, self._clock)

    def _played(self, fault: Fault, endpoint: str) -> None:
        label = fault_label(fault, endpoint)
        counts = self._stats.faults_by_kind
        counts[label] = counts.get(label, 0) + 1
        note_fault(label)

    def _error(self, fault: Fault, endpoint: str, request: web.Request) -> Reply:
        return fault_reply(fault, endpoint, request.path_qs)

    def _echo(self, fault: Fault, request: web.Request) -> Reply:
        return echo_reply(
            fault.status, fault.code, request.method, request.path_qs, request.headers
        )

    async def before(
        self, request: web.Request, endpoint: str, fault: Fault
    ) -> web.Response | None:
        """Play ``fault`` before processing: an answer instead of the normal one, or ``None``."""
        self._played(fault, endpoint)
        if fault.kind == "delay":
            await self._lifetime.sleep(fault.delay)
            return None
        if fault.kind == "reset":
            return drop(request)
        if fault.kind == "echo_key":
            return self.send(self._echo(fault, request), endpoint)
        return self.send(self._error(fault, endpoint, request), endpoint)

    def late(
        self, request: web.Request, endpoint: str, fault: Fault, operation: Operation
    ) -> web.Response:
        """Answer as failed now, and process ``fault.delay`` seconds later.

        The request was admitted by its rate limit on arrival (the caller's part).
        """
        self._played(fault, endpoint)
        self._lifetime.schedule_late(operation, fault.delay)
        if fault.status == 0:
            return drop(request)
        return self.send(self._error(fault, endpoint, request), endpoint)

    async def after(
        self, request: web.Request, endpoint: str, fault: Fault, reply: Reply
    ) -> web.StreamResponse:
        """Play ``fault`` on the answer ``reply`` of a request already processed."""
        if fault.kind == "drop_field":
            stripped = without(reply, fault.field)
            if stripped is None:
                return self.send(reply, endpoint)
            self._played(fault, endpoint)
            return self.send(stripped, endpoint)
        if fault.kind == "odd_task_id":
            renamed = with_task_id(reply, ".." if fault.task_id is None else fault.task_id)
            if renamed is None:
                return self.send(reply, endpoint)
            self._played(fault, endpoint)
            return self.send(renamed, endpoint)
        if fault.kind in ("truncate", "cut") and len(reply.body) < 2:
            return self.send(reply, endpoint)  # nothing to cut
        if fault.kind in ("huge", "gzip_bomb") and not is_json_object(reply):
            return self.send(reply, endpoint)  # no JSON to pad
        if fault.kind in ("drip", "gzip") and not reply.body:
            return self.send(reply, endpoint)  # nothing to drip or compress
        self._played(fault, endpoint)
        if fault.kind in ("huge", "gzip_bomb", "drip", "gzip"):
            return await hostile_answer(
                request, self._dated(reply, endpoint), fault, self._lifetime
            )
        if fault.kind == "echo_key":
            return self.send(self._echo(fault, request), endpoint)
        if fault.kind == "delay":
            await self._lifetime.sleep(fault.delay)
            return self.send(reply, endpoint)
        if fault.kind == "reset":
            return drop(request)
        if fault.kind == "truncate":
            body = reply.body[: kept(len(reply.body), fault.keep)]
            return self.send(attrs.evolve(reply, body=body), endpoint)
        if fault.kind == "cut":
            return await cut(request, self._dated(reply, endpoint), fault.keep)
        return self.send(self._error(fault, endpoint, request), endpoint)

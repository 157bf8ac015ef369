"""The pipeline every request goes through, in the provider's order.

1. recording (a middleware, ``_recording``: every request, whatever its fate);
2. authentication (API routes only): 401 ``InvalidApiKey``;
3. the request's fault, if any: a scripted one (``FaultBook``) or else a random
   one (``ChaosSource``, when ``SimulatorConfig.chaos`` is set), played here
   unless it comes after processing;
4. the rate limit (API routes only): 429 ``Throttling.RateQuota``, no state change;
5. the operation itself (``_service``): validation, state change, answer;
6. a fault that comes ``after_processing``, replacing, delaying, truncating,
   cutting short or stripping a field from that answer.

A ``late`` fault leaves the pipeline after step 4: the request, admitted by its
rate limit on arrival, is answered as failed at once and its operation (step 5)
runs later in a background task, whose answer nobody reads (``_lifetime``
keeps those tasks and cancels them when the server shuts down).

Every answer of the API carries a ``Date`` header on the service's clock (so
``SimulatorConfig.clock_skew`` shows there too); the storage and image hosts
leave theirs to aiohttp.

The fault machinery only asks a ``FaultSource`` for the request's fault, so
scripted and random faults play through the same code (``_fault_play``).
"""

from __future__ import annotations

import math

from aiohttp import web

from ._chaos_source import ChaosSource
from ._config import SimulatorConfig
from ._fault_play import FaultPlayer
from ._faults import Fault, FaultBook
from ._lifetime import Operation
from ._replies import seconds_text
from ._responses import Dropped
from ._service import Service
from ._wire import (
    NO_API_KEY,
    RATE_LIMITED,
    WRONG_API_KEY,
    OssError,
    Reply,
    ServiceError,
    error_reply,
    oss_error_reply,
)

__all__ = ["Pipeline"]


class Pipeline:
    """Authenticates, plays faults, throttles and runs a request's operation.

    ``chaos`` is the source of random faults (``None``: none); the simulator
    replaces it when its chaos changes.
    """

    def __init__(
        self,
        config: SimulatorConfig,
        service: Service,
        faults: FaultBook,
        player: FaultPlayer,
        chaos: ChaosSource | None,
    ) -> None:
        self.config = config
        self.chaos = chaos
        self._service = service
        self._faults = faults
        self._player = player

    async def run(
        self, request: web.Request, endpoint: str, operation: Operation, *, api: bool = True
    ) -> web.StreamResponse:
        """Steps 2 to 6 for ``request`` to ``endpoint`` (2 and 4 only when ``api``)."""
        player = self._player
        if api:
            if (denied := self._authenticate(request)) is not None:
                return player.send(denied, endpoint)
            try:
                await request.read()  # the whole request has arrived before anything happens
            except ConnectionResetError:
                return Dropped(status=599)
        fault = self._take_fault(endpoint)
        if fault is not None and fault.kind == "late":
            throttled = self._throttle(endpoint)
            if throttled is not None:
                return player.send(throttled, endpoint)  # refused: nothing to process later
            return player.late(request, endpoint, fault, operation)
        if fault is not None and not fault.after_processing:
            answer = await player.before(request, endpoint, fault)
            if answer is not None:
                return answer
        reply = self._throttle(endpoint) if api else None
        if reply is None:
            try:
                reply = await operation()
            except ServiceError as exc:
                reply = error_reply(exc.status, exc.code, exc.message)
            except OssError as exc:
                reply = oss_error_reply(exc.status, exc.code, exc.message)
            except ConnectionResetError:  # an upload whose client gave up mid-body
                return Dropped(status=599)
        if fault is not None and fault.after_processing:
            return await player.after(request, endpoint, fault, reply)
        return player.send(reply, endpoint)

    def _authenticate(self, request: web.Request) -> Reply | None:
        header = request.headers.get("Authorization", "").strip()
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if not header or (scheme.lower() == "bearer" and not key):
            return error_reply(401, "InvalidApiKey", NO_API_KEY)
        if scheme.lower() != "bearer" or key not in self.config.api_keys:
            return error_reply(401, "InvalidApiKey", WRONG_API_KEY)
        return None

    def _throttle(self, endpoint: str) -> Reply | None:
        wait = self._service.limiter.admit(endpoint, self._service.clock.now())
        if wait is None:
            return None
        reply = error_reply(429, "Throttling.RateQuota", RATE_LIMITED)
        if self.config.retry_after:
            # At the provider's own pace a server says whole seconds; on a compressed
            # clock, the scaled wait itself, so a client honouring it waits what a
            # real one would (one real second would be 100 s at time_scale 0.01).
            text = (
                str(max(1, math.ceil(wait))) if self.config.time_scale == 1 else seconds_text(wait)
            )
            reply = reply.with_headers(("Retry-After", text))
        return reply

    def _take_fault(self, endpoint: str) -> Fault | None:
        """The request's fault: a scripted one first, else a random one.

        Chaos rolls its dice for every request all the same, so its faults
        depend only on how many requests each endpoint has had.
        """
        scripted = self._faults.take(endpoint)
        drawn = self.chaos.take(endpoint) if self.chaos is not None else None
        return scripted if scripted is not None else drawn

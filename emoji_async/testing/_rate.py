"""Per-endpoint sliding-window rate limits, the way the provider counts them.

Only accepted requests enter a window: a request answered 429 leaves no trace,
so a client that keeps knocking does not push its own next slot further away.
"""

from __future__ import annotations

import math
from collections import deque

from ._config import RATE_WINDOW, ServiceLimits

__all__ = ["RateLimiter"]


class RateLimiter:
    """Admits at most ``n`` requests per endpoint in any window of ``width`` real seconds."""

    def __init__(self, limits: ServiceLimits | None, time_scale: float) -> None:
        self._limits = limits
        self._time_scale = time_scale
        self._accepted: dict[str, deque[float]] = {}

    def _window(self, endpoint: str) -> tuple[int, float] | None:
        if self._limits is None:
            return None
        rate = self._limits.rate_for(endpoint)
        if rate is None:
            return None
        if rate >= 1:
            return math.floor(rate), RATE_WINDOW * self._time_scale
        return 1, RATE_WINDOW / rate * self._time_scale

    def admit(self, endpoint: str, now: float) -> float | None:
        """Count a request at ``now`` if admitted (``None``), else say how long until a slot frees.

        The wait is in real seconds.
        """
        window = self._window(endpoint)
        if window is None:
            return None
        count, width = window
        accepted = self._accepted.setdefault(endpoint, deque())
        while accepted and accepted[0] <= now - width:
            accepted.popleft()
        if len(accepted) >= count:
            return max(accepted[0] + width - now, 0.0)
        accepted.append(now)
        return None

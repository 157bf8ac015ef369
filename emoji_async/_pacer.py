"""The in-process pacer: one endpoint group's request starts, spaced and held back.

A :class:`Pacer`, one per endpoint group and shared by every task of one
client, spaces the *starts* of requests ``(window * (1 + margin) + jitter) /
(rate * window)`` seconds apart (1.105 s for 1/s): the relative margin and the
absolute ``jitter`` absorb the difference in delay between two requests on
their way there. The jitter is real time: it does not shrink on a compressed
clock, where it matters most. A 429 on any request of the group pushes every
later request of the group back by the ``Retry-After`` the service asked for
(one rate window when it did not say), so a throttled account slows down as a
whole instead of each task retrying on its own; never by more than
``RateLimits.max_hold`` (a minute: throttling usually clears within one), so
that one absurd ``Retry-After`` does not stop the group for an hour. The call
that got it fails at once when the wait would end past its own deadline.
"""

from __future__ import annotations

import asyncio

__all__ = ["Pacer"]


class Pacer:
    """Spaces request starts ``interval`` apart; a 429 holds back every later request."""

    def __init__(self, interval: float, window: float) -> None:
        self.interval = interval
        self.window = window
        self._next = 0.0
        self._held_until = 0.0
        # How late, in all, turns have started after their time: each moves every
        # later turn, so that starts stay ``interval`` apart as they happen.
        self._late = 0.0

    async def acquire(self) -> None:
        """Wait for this caller's turn. Turns are taken in arrival order.

        Turns are spaced by when requests really start, not by when they were
        due: an event loop that stalls (a blocking call, a long pause) wakes
        every sleeper whose turn passed at once, and those requests would reach
        the service together. A turn taken late moves every later turn by as much.
        """
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            start = max(now, self._next, self._held_until)
            self._next = start + self.interval
            late = self._late
            while start > now:
                await asyncio.sleep(start - now)
                now = loop.time()
                start += self._late - late
                late = self._late
            if self._held_until > now:
                continue  # A 429 arrived while this caller slept: its turn is void, take a new one.
            self._late += now - start
            self._next += now - start
            return

    def hold(self, seconds: float | None) -> float:
        """After a 429: no request of the group starts for ``seconds`` (default one window)."""
        wait = self.window if seconds is None or seconds <= 0 else seconds
        self._held_until = max(self._held_until, asyncio.get_running_loop().time() + wait)
        return wait

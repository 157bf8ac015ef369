"""The in-process pacer: one endpoint group's requests, spaced by when they leave.

A :class:`Pacer`, one per endpoint group and shared by every task of one
client, spaces requests ``(window * (1 + margin) + jitter) / (rate * window)``
seconds apart (1.105 s for 1/s): the relative margin and the absolute
``jitter`` absorb the difference in delay between two requests on their way
there. The jitter is real time: it does not shrink on a compressed clock,
where it matters most.

The spacing is counted from when a request *left* (its headers written, as the
transport reports through :meth:`Turn.sent`), not from when its turn came: a
request may wait after its turn for a connection, a journal write, or a busy
event loop, and a next one released on the turn's time would reach the service
right behind it. So one turn of a group is out at a time: the next is released
once the previous request has left (or given up unsent, :meth:`Turn.end`), one
interval after it left. An event loop that stalls past several turns therefore
does not send them together either.

A 429 on any request of the group pushes every later request of the group
back by the ``Retry-After`` the service asked for (one rate window when it did
not say), so a throttled account slows down as a whole instead of each task
retrying on its own; never by more than ``RateLimits.max_hold`` (a minute:
throttling usually clears within one), so that one absurd ``Retry-After`` does
not stop the group for an hour. The call that got it fails at once when the
wait would end past its own deadline.
"""

from __future__ import annotations

import asyncio
import math

__all__ = ["FREE", "Pacer", "Turn"]


class Turn:
    """One request's turn: say when it left (:meth:`sent`) or that it never will (:meth:`end`).

    Until one of them, the next turn of its group waits. Both may be called
    more than once; only the first counts.
    """

    __slots__ = ("_pacer",)

    def __init__(self, pacer: Pacer | None) -> None:
        self._pacer = pacer

    def sent(self) -> None:
        """The request has left: the next turn comes one interval from now."""
        pacer, self._pacer = self._pacer, None
        if pacer is not None:
            pacer.left(asyncio.get_running_loop().time())

    def end(self) -> None:
        """The attempt is over; if it never left, the next turn need not wait for it."""
        pacer, self._pacer = self._pacer, None
        if pacer is not None:
            pacer.left(None)


#: The turn of an unpaced request: nothing waits for it.
FREE = Turn(None)


class Pacer:
    """Spaces one group's requests ``interval`` apart by when they leave; a 429 holds them back."""

    def __init__(self, interval: float, window: float) -> None:
        self.interval = interval
        self.window = window
        self._held_until = 0.0
        self._last_left = -math.inf
        # Held from a turn's release until its request leaves: one turn out at a time,
        # given in arrival order (asyncio's lock wakes its waiters first in, first out).
        self._out = asyncio.Lock()

    async def acquire(self) -> Turn:
        """Wait for this caller's turn; the caller reports on it (:class:`Turn`)."""
        loop = asyncio.get_running_loop()
        await self._out.acquire()
        try:
            # A 429 arriving meanwhile moves ``due``: the loop sleeps again. Nothing
            # else can move it while this turn is out, so no event is needed.
            while (due := self._due()) > loop.time():  # noqa: ASYNC110
                await asyncio.sleep(due - loop.time())
        except BaseException:
            self._out.release()
            raise
        return Turn(self)

    def _due(self) -> float:
        """When the turn out may start: an interval after the last request left, and unheld."""
        return max(self._last_left + self.interval, self._held_until)

    def left(self, at: float | None) -> None:
        """The turn out has left at ``at`` (loop time), or ended unsent (``None``)."""
        if at is not None:
            self._last_left = at
        self._out.release()

    def hold(self, seconds: float | None) -> float:
        """After a 429: no request of the group starts for ``seconds`` (default one window)."""
        wait = self.window if seconds is None or seconds <= 0 else seconds
        self._held_until = max(self._held_until, asyncio.get_running_loop().time() + wait)
        return wait

"""One clock for the whole model, and its two renderings on the wire.

The model runs on ``time.monotonic()`` so it never jumps; wall-clock time is
read once, at start, and every instant is shown as ``start_wall + skew + (t -
start_monotonic)``. Two events at the same model instant therefore print the
same string, which is what lets a test see that the next task starts exactly
when the previous one ends.

``skew`` is how far the service's clock runs ahead of the real one (negative:
behind), in real seconds: a provider's servers are not the client's machine,
and nothing says their clocks agree. Every time the service shows or reads
(task lists, task queries, the list's time filters, the ``Date`` header, the
expiry of signed URLs) goes through ``wall``, so one offset moves them all,
while the model's own instants (``time.monotonic()`` readings) stay unshifted.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import time

__all__ = ["BEIJING", "Clock"]

#: The provider shows times in China Standard Time, without saying so.
BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")


class Clock:
    """Monotonic model time, provider-time scaling, and (skewed) wall-clock rendering."""

    def __init__(self, time_scale: float, skew: float = 0.0) -> None:
        self.time_scale = time_scale
        self.skew = skew
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    def now(self) -> float:
        """The current model instant (``time.monotonic()``)."""
        return time.monotonic()

    def scaled(self, provider_seconds: float) -> float:
        """How many real seconds a provider duration lasts here."""
        return provider_seconds * self.time_scale

    def wall(self, at: float) -> float:
        """The POSIX time the service's clock shows at the model instant ``at``."""
        return self._wall0 + self.skew + (at - self._mono0)

    def epoch_ms(self, at: float) -> int:
        """``at`` in whole epoch milliseconds, as the task list shows it."""
        return int(self.wall(at) * 1000)

    def beijing(self, at: float) -> str:
        """``at`` as ``YYYY-MM-DD HH:MM:SS.mmm`` in Beijing time, as task queries show it."""
        ms = self.epoch_ms(at)
        moment = dt.datetime.fromtimestamp(ms // 1000, BEIJING)
        return f"{moment:%Y-%m-%d %H:%M:%S}.{ms % 1000:03d}"

    def http_date(self, at: float) -> str:
        """``at`` as an HTTP ``Date`` header (RFC 9110: ``Sun, 06 Nov 1994 08:49:37 GMT``)."""
        return email.utils.formatdate(self.wall(at), usegmt=True)

    def at_wall(self, wall: float) -> float:
        """The model instant at which the service's clock shows ``wall`` (inverse of ``wall``)."""
        return self._mono0 + (wall - self.skew - self._wall0)

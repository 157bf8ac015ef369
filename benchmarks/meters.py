"""What a process measures about itself while a scenario runs in it.

Its resident memory (now, and the peak the kernel kept), a thread that samples
the memory and the connections to one port, a ticker that records how late the
event loop wakes, and a watch on the garbage collector's passes. Used by the
scale scenario (ten thousand tasks in flight) and the hostile one (what each
misbehaviour of the service costs in memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
import threading
import time
from collections.abc import Iterator

__all__ = [
    "CONNECTIONS_EVERY",
    "RSS_EVERY",
    "TICK",
    "GcWatch",
    "Sampler",
    "connections_to",
    "peak_rss_mb",
    "record_loop_lag",
    "rss_mb",
]

#: How often the loop-lag ticker wakes (real seconds).
TICK = 0.010
#: How often the sampler reads the RSS, and the connections (real seconds).
RSS_EVERY = 0.05
CONNECTIONS_EVERY = 0.25


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def connections_to(port: int) -> int:
    import psutil

    found = psutil.Process().net_connections(kind="tcp")
    return sum(1 for conn in found if conn.raddr and conn.raddr.port == port)


class Sampler:
    """A thread that follows the process's RSS and its connections to one port."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._stop = threading.Event()
        self.rss_peak = rss_mb()
        self.connections_peak = 0
        self._thread = threading.Thread(target=self._loop, name="scale-sampler", daemon=True)

    def _loop(self) -> None:
        every = round(CONNECTIONS_EVERY / RSS_EVERY)
        for n in _counter():
            self.rss_peak = max(self.rss_peak, rss_mb())
            if n % every == 0:
                self.connections_peak = max(self.connections_peak, connections_to(self._port))
            if self._stop.wait(RSS_EVERY):
                return

    @contextlib.contextmanager
    def running(self) -> Iterator[Sampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self.rss_peak = max(self.rss_peak, rss_mb())


def _counter() -> Iterator[int]:
    n = 0
    while True:
        yield n
        n += 1


async def record_loop_lag(lags: list[tuple[float, float]]) -> None:
    """Append ``(when, how late)`` for every tick, ``when`` on ``time.perf_counter()``."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(TICK)
        now = time.perf_counter()
        lags.append((now, now - started - TICK))


class GcWatch:
    """Times the garbage collector's passes while installed (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.full_collections = 0
        self.full_seconds = 0.0
        self.worst_pause = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        self.worst_pause = max(self.worst_pause, pause)
        if info["generation"] == 2:
            self.full_collections += 1
            self.full_seconds += pause

    @contextlib.contextmanager
    def installed(self) -> Iterator[GcWatch]:
        gc.callbacks.append(self._callback)
        try:
            yield self
        finally:
            gc.callbacks.remove(self._callback)


def peak_rss_mb() -> float:
    """The most resident memory this process has held, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

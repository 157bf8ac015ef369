"""The simulator in a process of its own, so its CPU is never counted against the client.

``simulator_process()`` starts ``python -m benchmarks.simproc`` (this module),
reads the base URL it prints, and yields a :class:`SimProcess`. The child is
always stopped on exit: closing its stdin asks it to stop, then SIGTERM, then
SIGKILL. A parent that dies without cleaning up closes the child's stdin too,
so the child never outlives it.

While it runs, the child answers one command on stdin, ``stats``, with one
JSON line: the simulator's counters, its own CPU seconds, and the TCP
connections its server accepted (opened in total, open now, and the most open
at once since the previous ``stats``). Control travels over that pipe, not
over HTTP, so asking for counters opens no connection and sends no request
that the counters would have to leave out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import attrs
from aiohttp import web

from emoji_async.testing import ServiceLimits, Simulator, SimulatorConfig, fixed_duration

from . import ROOT
from .simulator import KEY

__all__ = ["SimCounters", "SimProcess", "detected_boxes", "simulator_process"]


#: How long the child may take to import and listen before it counts as failed.
STARTUP_TIMEOUT = 30.0
#: How long the child may take to answer ``stats``.
REPLY_TIMEOUT = 30.0
#: How long a stopping child is given after each request to stop.
STOP_GRACE = 5.0
_API_ENDPOINTS = ("detect", "submit", "query", "list", "cancel", "upload_policy")


@attrs.frozen
class SimCounters:
    """What the simulator process had counted at one moment."""

    requests_by_endpoint: dict[str, int]
    tasks_created: int
    throttled: int
    cpu_seconds: float
    connections_opened: int
    connections_open: int
    connections_peak: int

    @property
    def api_requests(self) -> int:
        """Requests to the service's API (detect, submit, task queries, ...)."""
        return sum(self.requests_by_endpoint.get(name, 0) for name in _API_ENDPOINTS)

    def since(self, earlier: SimCounters) -> SimCounters:
        """The counts between ``earlier`` and this one (the peak is already per interval)."""
        names = set(self.requests_by_endpoint) | set(earlier.requests_by_endpoint)
        return SimCounters(
            requests_by_endpoint={
                name: self.requests_by_endpoint.get(name, 0)
                - earlier.requests_by_endpoint.get(name, 0)
                for name in sorted(names)
            },
            tasks_created=self.tasks_created - earlier.tasks_created,
            throttled=self.throttled - earlier.throttled,
            cpu_seconds=self.cpu_seconds - earlier.cpu_seconds,
            connections_opened=self.connections_opened - earlier.connections_opened,
            connections_open=self.connections_open,
            connections_peak=self.connections_peak,
        )


class SimProcess:
    """A running simulator process: its base URL, pid, and counters on request."""

    def __init__(self, process: asyncio.subprocess.Process, base_url: str) -> None:
        self._process = process
        self.base_url = base_url
        self.pid = process.pid
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<SimProcess pid={self.pid} {self.base_url}>"

    @property
    def returncode(self) -> int | None:
        """The child's exit status once it has ended, ``None`` while it runs."""
        return self._process.returncode

    async def counters(self) -> SimCounters:
        """The child's counters now (and the connection peak since the previous call)."""
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        async with self._lock, asyncio.timeout(REPLY_TIMEOUT):
            stdin.write(b"stats\n")
            await stdin.drain()
            line = await stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator process {self.pid} has exited")
        return SimCounters(**json.loads(line))


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()
    for signal_child in (None, process.terminate, process.kill):
        if process.returncode is not None:
            break
        if signal_child is not None:
            with contextlib.suppress(ProcessLookupError):
                signal_child()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_GRACE):
                await process.wait()
    await process.wait()


@contextlib.asynccontextmanager
async def simulator_process(
    *,
    task_seconds: float = 0.0,
    time_scale: float = 1.0,
    limits: bool = False,
) -> AsyncIterator[SimProcess]:
    """A simulator in a child process, for the duration of the block.

    Every task runs ``task_seconds`` provider seconds (times ``time_scale`` in
    real seconds); with ``limits=False`` no rate limit applies and every task
    starts the moment it is submitted. Videos are never rendered.
    """
    args = [
        sys.executable,
        "-m",
        "benchmarks.simproc",
        "--task-seconds",
        repr(task_seconds),
        "--time-scale",
        repr(time_scale),
    ]
    if limits:
        args.append("--limits")
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(STARTUP_TIMEOUT):
            line = await process.stdout.readline()
        base_url = line.decode().strip()
        if not base_url.startswith("http://"):
            raise RuntimeError(
                f"the simulator process did not start (exit status {process.returncode})"
            )
        yield SimProcess(process, base_url)
    finally:
        await _stop(process)


async def detected_boxes(base_url: str, image_url: str) -> tuple[list[int], list[int]]:
    """``(face_bbox, ext_bbox)`` of ``image_url``, from one detection (over its own session).

    The simulator refuses a submit whose boxes are not the ones detection
    returned; from another process the only way to learn them is to ask.
    """
    body = {
        "model": "emoji-detect-v1",
        "input": {"image_url": image_url},
        "parameters": {"ratio": "1:1"},
    }
    url = f"{base_url}/services/aigc/image2video/face-detect"
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        response.raise_for_status()
        output = (await response.json())["output"]
    return list(output["bbox_face"]), list(output["ext_bbox_face"])


# --- the child -----------------------------------------------------------------


class _Connections:
    """Counts the TCP connections an aiohttp server accepts, by wrapping its two hooks.

    A connection counts as open from its accept until the server sees it
    closed, so right after a client swaps a connection for a new one both
    may count for a moment: the peak is an upper bound of what the client
    held at once.
    """

    def __init__(self, server: web.Server) -> None:
        self.opened = 0
        self.open = 0
        self.peak = 0
        made: Callable[..., None] = server.connection_made
        lost: Callable[..., None] = server.connection_lost

        def connection_made(handler: Any, transport: Any) -> None:
            self.opened += 1
            self.open += 1
            self.peak = max(self.peak, self.open)
            made(handler, transport)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self.open -= 1
            lost(handler, exc)

        # Instance attributes shadow the methods each connection's handler calls.
        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def take_peak(self) -> int:
        """The most connections open at once since the last call."""
        peak, self.peak = self.peak, self.open
        return peak


async def _serve(config: SimulatorConfig) -> None:
    simulator = Simulator(config)
    runner = web.AppRunner(simulator.app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        assert runner.server is not None
        connections = _Connections(runner.server)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def counters() -> str:
            stats = simulator.stats
            return json.dumps(
                {
                    "requests_by_endpoint": dict(stats.requests_by_endpoint),
                    "tasks_created": stats.tasks_created,
                    "throttled": stats.throttled,
                    "cpu_seconds": time.process_time(),
                    "connections_opened": connections.opened,
                    "connections_open": connections.open,
                    "connections_peak": connections.take_peak(),
                }
            )

        def control() -> None:
            # stdin closes when the parent stops us or dies: either way, stop.
            for line in sys.stdin:
                if line.strip() == "stats":
                    future = asyncio.run_coroutine_threadsafe(_call(counters), loop)
                    print(future.result(), flush=True)
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=control, name="simproc-control", daemon=True).start()
        print(f"http://{host}:{port}{config.api_prefix}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


async def _call(function: Callable[[], str]) -> str:
    return function()


def _child(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="a simulator for the benchmarks, in its own process"
    )
    parser.add_argument("--task-seconds", type=float, default=0.0)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--limits", action="store_true")
    args = parser.parse_args(argv)
    config = SimulatorConfig(
        time_scale=args.time_scale,
        limits=ServiceLimits() if args.limits else None,
        durations=fixed_duration(args.task_seconds),
        render_videos=False,
    )
    asyncio.run(_serve(config))


if __name__ == "__main__":
    _child()

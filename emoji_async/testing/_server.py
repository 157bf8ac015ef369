"""Running a simulator on a real socket: ``serve`` for tests, ``run_forever`` for a shell.

Both bind loopback by default and pick a free port with ``port=0``, so tests
can run in parallel without coordinating ports.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
from aiohttp import web

from ._app import Simulator
from ._config import SimulatorConfig
from ._eventbridge_events import CERTIFICATE_PATH
from ._samples import SAMPLE_PORTRAITS, SAMPLES_PATH

__all__ = ["SimulatorServer", "run_forever", "serve"]

#: How long shutdown waits for requests still in flight (a scripted delay, say).
_SHUTDOWN_TIMEOUT = 1.0


@attrs.frozen
class SimulatorServer:
    """A simulator listening on ``host:port``, and the URLs a client needs."""

    simulator: Simulator
    host: str
    port: int

    @property
    def origin(self) -> str:
        """``http://host:port``: where uploads and result videos live."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base URL (origin plus ``api_prefix``), without a trailing slash."""
        return f"{self.origin}{self.simulator.config.api_prefix}"

    @property
    def certificate_url(self) -> str:
        """Where the simulated EventBridge's certificate is: ``{origin}/eventbridge/cert.pem``.

        Every notification names it in ``x-eventbridge-signature-url``. It is a
        loopback URL, never the official certificate host: a receiver trusts it
        only when a test says so.
        """
        return f"{self.origin}{CERTIFICATE_PATH}"

    def sample_url(self, name: str) -> str:
        """The public URL of the sample portrait ``name`` (one of ``SAMPLE_PORTRAITS``).

        A loopback URL, so the simulator fetches and checks it like any image
        and animates it in the result video.
        """
        if name not in SAMPLE_PORTRAITS:
            raise ValueError(
                f"unknown sample portrait {name!r}; expected one of {SAMPLE_PORTRAITS}"
            )
        return f"{self.origin}{SAMPLES_PATH}/{name}.png"


@asynccontextmanager
async def serve(
    config: SimulatorConfig | Simulator | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[SimulatorServer]:
    """Serve a simulator (a new one from ``config``, or the one given) while the block runs."""
    simulator = config if isinstance(config, Simulator) else Simulator(config)
    runner = web.AppRunner(simulator.app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        server = SimulatorServer(simulator, str(bound_host), int(bound_port))
        simulator.origin = server.origin  # the certificate URL of notifications is built from it
        yield server
    finally:
        await runner.cleanup()


async def run_forever(
    config: SimulatorConfig | Simulator | None = None, host: str = "127.0.0.1", port: int = 8000
) -> None:
    """Serve (a new simulator from ``config``, or the one given) until cancelled.

    Prints the base URL once it listens (and, with notification targets, the
    certificate URL on stderr).
    """
    async with serve(config, host=host, port=port) as server:
        print(server.base_url, flush=True)
        if server.simulator.certificate_pem is not None:
            print(f"certificate: {server.certificate_url}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()

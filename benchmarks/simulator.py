"""What every scenario shares: a simulator and a client on one compressed clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from emoji_async import EmojiClient
from emoji_async.testing import SimulatorConfig, SimulatorServer, serve

__all__ = ["on_one_clock"]


@asynccontextmanager
async def on_one_clock(
    config: SimulatorConfig,
) -> AsyncIterator[tuple[SimulatorServer, EmojiClient]]:
    """The simulator of ``config`` and a default client whose policies run on its clock."""
    scale = config.time_scale
    async with (
        serve(config) as server,
        EmojiClient(
            api_key="sk-simulator",
            base_url=server.base_url,
            time_scale=scale,
        ) as client,
    ):
        yield server, client

"""A client pointed at a running simulator, on its clock: the one line a test needs."""

from __future__ import annotations

from typing import Any

from .._client import EmojiClient
from ._server import SimulatorServer

__all__ = ["client_for"]


def client_for(server: SimulatorServer, **settings: Any) -> EmojiClient:
    """An :class:`~emoji_async.EmojiClient` for ``server``, on the simulator's clock.

    The client gets the simulator's base URL, a key it accepts, and its
    ``time_scale``: the client's poll, retry and rate-limit policies run as
    much faster as the simulator's clock does, so the client makes the
    decisions it would make against the real service, only sooner. Any other
    :class:`~emoji_async.EmojiClient` argument may be given in ``settings``
    (``poll=``, ``limits=None``, ``on_event=``...); those given replace these::

        async with serve(SimulatorConfig(time_scale=0.01)) as server:
            async with client_for(server) as client:
                video = await client.generate(url, "mengwa_kaixin")
    """
    config = server.simulator.config
    chosen: dict[str, Any] = {
        "api_key": min(config.api_keys, default="sk-simulator"),
        "base_url": server.base_url,
        "time_scale": config.time_scale,
    }
    chosen.update(settings)
    return EmojiClient(**chosen)

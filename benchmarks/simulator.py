"""A simulator in this process, as the scenarios run it: its key, a client on its clock, its record.

``on_one_clock`` serves a simulator and opens a default client whose policies
run on the simulator's compressed clock; ``detection_lag`` and ``polls_of``
read from the simulator's own record how soon a task's end was seen and how
many polls it took, the figures every latency scenario reports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from emoji_async import EmojiClient, NotifyPolicy, RateLimits
from emoji_async.testing import SimulatedTask, Simulator, SimulatorConfig, SimulatorServer, serve

__all__ = ["KEY", "detection_lag", "on_one_clock", "polls_of"]

#: The API key every simulator accepts.
KEY = "sk-simulator"


@asynccontextmanager
async def on_one_clock(
    config: SimulatorConfig,
    *,
    limits: RateLimits | None = None,
    notifications: NotifyPolicy | None = None,
) -> AsyncIterator[tuple[SimulatorServer, EmojiClient]]:
    """The simulator of ``config`` and a default client whose policies run on its clock.

    ``limits``: the client's pacing, if not the default (the suite's invariant
    checks give a loaded machine's jitter; the figures always use the default).
    ``notifications``: the client's safety net, for a client that waits on events.
    """
    scale = config.time_scale
    async with (
        serve(config) as server,
        EmojiClient(
            api_key=KEY,
            base_url=server.base_url,
            time_scale=scale,
            limits=limits or RateLimits(),
            notifications=notifications,
        ) as client,
    ):
        yield server, client


def detection_lag(task: SimulatedTask, held_at: float) -> float:
    """How late the end of ``task`` was seen (at ``held_at``), as a fraction of its run time."""
    assert task.ended_at is not None
    assert task.scheduled_at is not None
    return (held_at - task.ended_at) / (task.ended_at - task.scheduled_at)


def polls_of(sim: Simulator, task_id: str) -> int:
    """How many queries of ``task_id`` the simulator received."""
    return sum(1 for r in sim.requests if r.endpoint == "query" and task_id in r.path)

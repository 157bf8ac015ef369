"""What a server's shutdown cuts short: waits, drips, and the late requests not yet processed.

A ``late`` fault answers a request as failed at once and runs its operation
later, in a background task whose answer nobody reads. ``Lifetime`` keeps
those tasks and cancels them when the server shuts down; its ``sleep`` (a
scripted delay, a drip's pause) ends early then, as nobody waits for it any
more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from ._wire import OssError, Reply, ServiceError

__all__ = ["Lifetime", "Operation"]

#: A request's own work: validation, state change, answer.
Operation = Callable[[], Awaitable[Reply]]


class Lifetime:
    """The simulator between its server's start and shutdown, and its late requests."""

    def __init__(self) -> None:
        self._closing = asyncio.Event()
        self._late_requests: set[asyncio.Task[None]] = set()

    @property
    def closing(self) -> bool:
        """Whether the server is shutting down."""
        return self._closing.is_set()

    def start(self) -> None:
        self._closing.clear()

    async def shut_down(self) -> None:
        self._closing.set()  # cut scripted delays short: nobody waits for them any more
        await self.cancel_late()

    async def cancel_late(self) -> None:
        """Cancel the late requests not yet processed, and wait until they are gone."""
        pending = list(self._late_requests)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def schedule_late(self, operation: Operation, delay: float) -> None:
        """Run ``operation`` ``delay`` real seconds from now, in the background."""
        if self._closing.is_set():
            return  # the server is going away: nothing will be processed any more
        task = asyncio.get_running_loop().create_task(self._process_late(operation, delay))
        self._late_requests.add(task)
        task.add_done_callback(self._late_done)

    async def _process_late(self, operation: Operation, delay: float) -> None:
        await asyncio.sleep(delay)
        # A refusal (a 400 of validation, say) changes nothing, and nobody reads it.
        with contextlib.suppress(ServiceError, OssError):
            await operation()

    def _late_done(self, task: asyncio.Task[None]) -> None:
        self._late_requests.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # a bug of the simulator: say so now, not at garbage collection
            task.get_loop().call_exception_handler(
                {"message": "a late request of the simulator failed", "exception": error}
            )

    async def sleep(self, seconds: float) -> None:
        """Sleep, unless the server shuts down first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

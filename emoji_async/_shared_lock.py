"""The account's submit lock in Redis: one paid submit at a time, across every process.

``{ns}:submit:lock`` holds its holder's token (``host:pid:nonce:serial``). It
is held across a submit and its settling, and expires ``lock_ttl`` after its
holder stops renewing it, every third of that.

The submits waiting for it, every process's, queue in Redis by lane
(:mod:`~emoji_async._shared_lock_scripts`): an interactive submit goes ahead
of a bulk one that waited longer, in whichever process each waits, and a bulk
one lets at most :data:`~emoji_async._lane_lock.MAX_OVERTAKEN` interactive
ones by. One task of each process looks for them all, every tick while any
waits: it renews their places in the queue, and takes the lock for the one
at its head.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import AsyncIterator, Callable

from ._errors import SharedPacingError
from ._lane_lock import MAX_OVERTAKEN
from ._shared_link import RedisLink
from ._values import Lane

__all__ = ["SubmitLock"]

log = logging.getLogger("emoji_async")

#: How each lane is written in the queue: a look at the task list (no lane) is short
#: and goes first, as an interactive submit does, without counting against a bulk one.
_LANES = {Lane.INTERACTIVE: "i", Lane.BULK: "b", None: "l"}


class SubmitLock:
    """The submit lock as one process takes it: its waiters queue in Redis with the others'."""

    def __init__(self, link: RedisLink, namespace: str, *, tick: float) -> None:
        self._link = link
        prefix = f"{namespace}:submit"
        self._keys = [f"{prefix}:lock", f"{prefix}:waiting", f"{prefix}:waiters"]
        self._ttl = link.config.lock_ttl
        self._tick = tick
        self._released_at = -math.inf
        #: This process's waiters, in the order they came: each one's token and lane.
        self._waiting: dict[str, tuple[asyncio.Future[None], str]] = {}
        self._came = asyncio.Event()
        self._looker: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def held(self, token: Callable[[], str], lane: Lane | None) -> AsyncIterator[None]:
        """Hold the lock under a ``token()`` of its own (its holder's name, for whoever looks)."""
        name = token()
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        self._waiting[name] = (turn, _LANES[lane])
        self._came.set()
        if self._looker is None or self._looker.done():
            self._looker = asyncio.create_task(self._look(), name="emoji-submit-lock-queue")
        try:
            await turn
        except BaseException:
            if self._waiting.pop(name, None) is not None:
                self._link.spawn(self._leave(name), "leave the submit lock's queue")
            elif turn.done() and not turn.cancelled() and turn.exception() is None:
                # Handed the lock just as it was cancelled: pass it on.
                self._link.spawn(self._let_go(name), "let go of the submit lock")
            raise
        renewer = asyncio.create_task(self._renew(name), name="emoji-submit-lock")
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            self._released_at = loop.time()
            try:
                released = await self._unlock(name)
            except SharedPacingError as exc:
                log.warning(
                    "could not release the account's submit lock (it expires in %g s): %s",
                    self._ttl,
                    exc,
                )
            else:
                if not released:
                    log.warning(
                        "the account's submit lock expired while this process held it:"
                        " another process may have submitted meanwhile"
                    )

    async def _look(self) -> None:
        """While any caller here waits: renew their places, and take the lock for the head."""
        loop = asyncio.get_running_loop()
        this = asyncio.current_task()
        ttl_ms = round(self._ttl * 1000)
        while self._waiting:
            # Python 3.11's asyncio.wait_for (around each of redis-py's sends) may swallow
            # a cancel that comes as the send completes: honour it here (see _shared).
            if this is not None and this.cancelling():
                raise asyncio.CancelledError
            self._came.clear()
            # Having just let go, give the other processes a turn at the lock first:
            # they look every tick. The submit's own pacing would wait this long anyway.
            # Meanwhile this process's waiters still take their places in the queue.
            courtesy = self._released_at + 2 * self._tick - loop.time()
            waiters = [part for name, (_, lane) in self._waiting.items() for part in (name, lane)]
            args = [ttl_ms, ttl_ms, MAX_OVERTAKEN, "0" if courtesy > 0 else "1", *waiters]
            try:
                given = await self._link.script_any(
                    "take the submit lock", "take", self._keys, args
                )
            except SharedPacingError as exc:
                for turn, _ in self._waiting.values():
                    if not turn.done():
                        turn.set_exception(exc)
                self._waiting.clear()
                return
            if given:
                waiter = self._waiting.pop(str(given), None)
                if waiter is None or waiter[0].done():  # it stopped waiting meanwhile
                    self._link.spawn(self._let_go(str(given)), "let go of the submit lock")
                else:
                    waiter[0].set_result(None)
                continue
            wait = self._tick * random.uniform(0.75, 1.25)
            if courtesy > 0:
                wait = min(wait, courtesy)
            # A new waiter takes its place in the queue at once, not a tick later.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._came.wait(), wait)

    async def _leave(self, name: str) -> None:
        await self._link.script_any(
            "leave the submit lock's queue", "leave", self._keys[1:], [name]
        )

    async def _unlock(self, name: str) -> bool:
        """Let go of the lock; ``False`` if it was no longer ``name``'s (it had expired)."""
        what = "release the submit lock"
        return bool(await self._link.script_any(what, "unlock", self._keys[:1], [name]))

    async def _let_go(self, name: str) -> None:
        await self._unlock(name)

    async def _renew(self, name: str) -> None:
        ttl_ms = round(self._ttl * 1000)
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                renewed = await self._link.script_any(
                    "renew the submit lock", "relock", self._keys[:1], [name, ttl_ms]
                )
            except SharedPacingError as exc:
                log.warning("could not renew the account's submit lock: %s", exc)
                continue
            if not renewed:
                log.warning("the account's submit lock was lost while held (it had expired)")
                return

    async def aclose(self) -> None:
        """Stop looking for the lock: a caller still waiting gets :class:`SharedPacingError`."""
        if self._looker is not None:
            self._looker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._looker
            self._looker = None
        closed = SharedPacingError("shared pacing is not connected (the client is not open)")
        for turn, _ in self._waiting.values():
            if not turn.done():
                turn.set_exception(closed)
        self._waiting.clear()

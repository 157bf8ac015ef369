"""The account's submit lock in Redis: one paid submit at a time, across every process.

``redis``'s own lock (``SET NX PX``, released and renewed by token) on
``{ns}:submit:lock``, its value the holder's ``host:pid:nonce``. It is held
across a submit and its settling, and expires ``lock_ttl`` after its holder
stops renewing it, every third of that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import AsyncIterator, Callable

from redis.asyncio.lock import Lock
from redis.exceptions import LockError, LockNotOwnedError, RedisError

from ._shared_link import RedisLink

__all__ = ["SubmitLock"]

log = logging.getLogger("emoji_async")


class SubmitLock:
    """The submit lock as one process takes it: its callers one at a time, then Redis."""

    def __init__(self, link: RedisLink, key: str, *, tick: float) -> None:
        self._link = link
        self._key = key
        self._ttl = link.config.lock_ttl
        self._tick = tick
        self._local = asyncio.Lock()
        self._released_at = -math.inf

    @contextlib.asynccontextmanager
    async def held(self, token: Callable[[], str]) -> AsyncIterator[None]:
        """Hold the lock under a ``token()`` of its own (its holder's name, for whoever looks)."""
        # One caller of this process at a time asks Redis; the others wait here.
        async with self._local:
            loop = asyncio.get_running_loop()
            # Having just let go, give the other processes a turn at the lock first:
            # they look every tick. The submit's own pacing would wait this long anyway.
            courtesy = self._released_at + 2 * self._tick - loop.time()
            if courtesy > 0:
                await asyncio.sleep(courtesy)
            lock = Lock(
                self._link.client,
                self._key,
                timeout=self._ttl,
                sleep=self._tick * random.uniform(0.75, 1.25),
                thread_local=False,
            )
            await self._link.call("take the submit lock", lock.acquire(token=token()))
            renewer = asyncio.create_task(self._renew(lock), name="emoji-submit-lock")
            try:
                yield
            finally:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
                self._released_at = loop.time()
                try:
                    await lock.release()
                except LockNotOwnedError:
                    log.warning(
                        "the account's submit lock expired while this process held it:"
                        " another process may have submitted meanwhile"
                    )
                except (RedisError, OSError) as exc:
                    log.warning(
                        "could not release the account's submit lock (it expires in %g s): %s",
                        self._ttl,
                        self._link.scrub(exc),
                    )

    async def _renew(self, lock: Lock) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                await lock.reacquire()
            except LockError:  # LockNotOwnedError included
                log.warning("the account's submit lock was lost while held (it had expired)")
                return
            except (RedisError, OSError) as exc:
                log.warning("could not renew the account's submit lock: %s", self._link.scrub(exc))

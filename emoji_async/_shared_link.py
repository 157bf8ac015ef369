"""The connection shared pacing keeps to Redis: opened and checked, its failures translated.

Every Redis step of shared pacing goes through a :class:`RedisLink`: a
failure of ``redis`` (or of the socket under it) becomes
:class:`SharedPacingError`, with the server named by its origin and the URL's
password never shown. Writes nobody waits for run in the background and are
let finish when the link closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Coroutine, Mapping
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._errors import SharedPacingError
from ._shared_config import RedisPacing
from ._urls import redis_origin, url_password

__all__ = ["RedisLink"]

log = logging.getLogger("emoji_async")

_T = TypeVar("_T")

#: The oldest Redis that has every command used here (ZMSCORE).
_MIN_VERSION = (6, 2)


class RedisLink:
    """One process's connection to the account's Redis, and the scripts registered on it."""

    def __init__(self, config: RedisPacing) -> None:
        self.config = config
        self.where = redis_origin(config.url)
        self._redis: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def open(self, scripts: Mapping[str, str]) -> None:
        """Connect and check the server; :class:`SharedPacingError` if it cannot be used."""
        timeout = self.config.connect_timeout
        client = aioredis.Redis.from_url(
            self.config.url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            health_check_interval=30,
            decode_responses=True,
        )
        try:
            info = await client.info("server")
            version = tuple(int(n) for n in str(info.get("redis_version", "0.0")).split(".")[:2])
            if version < _MIN_VERSION:
                raise SharedPacingError(
                    f"shared pacing needs Redis 6.2 or later; {self.where} runs"
                    f" {info.get('redis_version')}"
                )
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise SharedPacingError(
                f"shared pacing: Redis at {self.where} cannot be used:"
                f" {type(exc).__name__}: {self.scrub(exc)}"
            ) from exc
        except SharedPacingError:
            await client.aclose()
            raise
        self._redis = client
        for name, source in scripts.items():
            self._scripts[name] = client.register_script(source)

    @property
    def connected(self) -> bool:
        """Whether :meth:`open` succeeded and :meth:`close` has not run since."""
        return self._redis is not None

    async def drain(self) -> None:
        """Let the writes nobody waits for finish: within the connect timeout, or cancelled."""
        if self._background:
            _, late = await asyncio.wait(self._background, timeout=self.config.connect_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def close(self) -> None:
        """Disconnect (quietly: the client is closing anyway)."""
        if self._redis is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()
        self._redis = None

    def scrub(self, exc: BaseException) -> str:
        """An error's text, never with the URL's password in it."""
        text = str(exc)
        password = url_password(self.config.url)
        if password:
            text = text.replace(password, "***")
        return text

    async def call(self, what: str, step: Awaitable[_T]) -> _T:
        """One Redis step; its failure becomes :class:`SharedPacingError`."""
        try:
            return await step
        except (RedisError, OSError) as exc:
            raise SharedPacingError(
                f"shared pacing: could not {what} in Redis at {self.where}:"
                f" {type(exc).__name__}: {self.scrub(exc)}"
            ) from exc

    @property
    def client(self) -> aioredis.Redis:
        """The connection; :class:`SharedPacingError` if the client is not open."""
        if self._redis is None:
            raise SharedPacingError("shared pacing is not connected (the client is not open)")
        return self._redis

    async def script(self, name: str, keys: list[str], args: list[Any]) -> int:
        """Run the script registered as ``name``; its answer as an int."""
        if self._redis is None:
            raise SharedPacingError("shared pacing is not connected (the client is not open)")
        result = await self.call(name, self._scripts[name](keys=keys, args=args))
        return int(result)

    async def values(self, name: str, keys: list[str], args: list[Any]) -> list[int]:
        """Run the script registered as ``name``; its answer, a list, as ints."""
        if self._redis is None:
            raise SharedPacingError("shared pacing is not connected (the client is not open)")
        result = await self.call(name, self._scripts[name](keys=keys, args=args))
        return [int(value) for value in result]

    async def script_any(
        self, what: str, name: str, keys: list[str], args: list[Any] | None = None
    ) -> Any:
        """Run the script registered as ``name``; its answer as Redis gave it."""
        return await self.call(what, self._scripts[name](keys=keys, args=args or []))

    def spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """A write nobody waits for; a failure is logged (:meth:`drain` lets it finish)."""

        async def quietly() -> None:
            try:
                await work
            except SharedPacingError as exc:
                log.warning("could not %s: %s", what, exc)

        task = asyncio.create_task(quietly())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

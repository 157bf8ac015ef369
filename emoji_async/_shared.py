"""Pacing shared through Redis: every process of one account keeps under its limits together.

The only module that imports ``redis``. Every key starts with the account's
namespace (``{prefix}:{account}``, both names the user chose: no key
material ever goes to Redis, in a key or a value). Times are Redis's own
(``TIME``): the processes' clocks may disagree, the server's is the one all
of them are measured on.

``{ns}:pace:{group}`` (a hash: ``next``, ``held``, in microseconds)
    One endpoint group's schedule. :data:`_PACE` reserves the next start,
    ``interval`` after the previous one, and answers how long to wait for
    it: the in-process :class:`~emoji_async._pacer.Pacer`'s arithmetic
    (its window ``spread`` longer: two machines' requests take different
    paths), one round trip a request, turns handed out in the order they are
    asked for. A 429 sets ``held`` (:data:`_HOLD`): no turn of the group
    starts before it, for any process; a turn this process was already
    waiting for is taken again.
``{ns}:submit:lock`` (a string: the holder's ``host:pid:nonce``)
    The submit lock (``redis``'s own lock: ``SET NX PX``, released and
    renewed by token). Held across a submit and its settling; it expires
    ``lock_ttl`` after its holder stops renewing it, every third of that.
``{ns}:submit:known`` (a sorted set: task id -> when created, ms)
    Every task a submit of the account created, for 25 hours (the task list
    shows the last 24): settling never adopts another process's task.
``{ns}:submit:unsettled`` (a sorted set: ``digest:nonce`` -> when sent, ms)
    A submit on the wire, by a digest of its inputs; removed once settled.
    One left behind is a process that stopped mid-submit: its task may still
    appear, so for the reconcile window no other submit adopts a task alone.
``{ns}:inflight`` (a sorted set: task id -> lease end, ms)
    The account's tasks in flight. A lease lasts ``lease_ttl`` and is renewed
    every third of that while its task is followed here; a process that stops
    leaves leases that simply run out.
``{ns}:queue`` (a sorted set: task id -> place), ``{ns}:queue:seq``, ``{ns}:queue:last_end``
    The same tasks in the account's submit order (submits are serialized by
    the lock, so the order of the places is the provider's queue), and the
    latest end any process saw (the provider's clock, ms). Each process
    reads them every submit interval while it follows tasks: another
    process's task submitted earlier is ahead of ours on the
    :class:`~emoji_async._task_board.TaskBoard`, so a task that cannot have
    started is not polled, and the start of one that has is known.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import math
import os
import random
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Collection, Coroutine
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, LockNotOwnedError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._errors import SharedPacingError
from ._limits import RateLimits, group_of
from ._pacing import PacingBackend
from ._shared_config import RedisPacing
from ._task_board import TaskBoard
from ._urls import redis_origin, url_password
from ._values import Endpoint

__all__ = ["RedisBackend"]

log = logging.getLogger("emoji_async")

_T = TypeVar("_T")

#: Tasks created are remembered this long (ms): the task list shows the last 24 h.
_KNOWN_MS = 25 * 3600 * 1000
#: A pacing key outlives its last turn by this much (ms), then goes.
_IDLE_MS = 60_000
#: The fastest a waiting process looks at the lock or the count in flight (seconds).
_MIN_TICK = 0.002
#: The oldest Redis that has every command used here (ZMSCORE).
_MIN_VERSION = (6, 2)

_NOW_US = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

#: KEYS[1] a group's hash; ARGV[1] its interval, ARGV[2] a hold known here (both us).
#: Reserves the next start; returns the wait for it (us).
_PACE = (
    _NOW_US
    + """
local nxt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
local held = math.max(tonumber(redis.call('HGET', KEYS[1], 'held') or '0'),
                      now + tonumber(ARGV[2]))
local start = math.max(now, nxt, held)
local after = start + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'next', string.format('%.0f', after))
redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(after, held) - now) / 1000) + ARGV[3])
return start - now
"""
)

#: KEYS[1] a group's hash; ARGV[1] the wait (us). No start of the group before then.
_HOLD = (
    _NOW_US
    + """
local untill = now + tonumber(ARGV[1])
local held = tonumber(redis.call('HGET', KEYS[1], 'held') or '0')
if untill > held then
    redis.call('HSET', KEYS[1], 'held', string.format('%.0f', untill))
    local nxt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
    redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(untill, nxt) - now) / 1000) + ARGV[2])
end
return 0
"""
)

#: KEYS[1] a sorted set; ARGV[1] ms added to now for the score, ARGV[2] 'XX' or 'NX'
#: (renew only, or add), ARGV[3] the key's life (ms), ARGV[4] members scored more than
#: this many ms before now are dropped, ARGV[5..] members.
_STAMP = (
    _NOW_US
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now / 1000 - ARGV[4]))
local score = string.format('%.0f', now / 1000 + tonumber(ARGV[1]))
for i = 5, #ARGV do
    if ARGV[2] == 'XX' then
        redis.call('ZADD', KEYS[1], 'XX', score, ARGV[i])
    else
        redis.call('ZADD', KEYS[1], score, ARGV[i])
    end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 0
"""
)

#: KEYS: the leases, the queue. Drops the leases that ran out, and their tasks from the queue.
_TRIM = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now / 1000))
for i = 1, #gone do
    redis.call('ZREM', KEYS[1], gone[i])
    redis.call('ZREM', KEYS[2], gone[i])
end
"""

#: KEYS: the leases, the queue, the sequence; ARGV[1] the lease (ms), ARGV[2] the task.
#: Counts the task in flight; returns its place in the account's submit order.
_OCCUPY = (
    _NOW_US
    + _TRIM
    + """
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], string.format('%.0f', now / 1000 + ARGV[1]), ARGV[2])
redis.call('ZADD', KEYS[2], seq, ARGV[2])
for i = 1, 3 do
    redis.call('PEXPIRE', KEYS[i], 2 * ARGV[1])
end
return seq
"""
)

#: KEYS: the leases, the queue, the sequence; ARGV[1] the lease (ms), ARGV[2..] tasks.
#: Renews the leases still there (one that ran out stays out).
_RENEW = (
    _NOW_US
    + """
local score = string.format('%.0f', now / 1000 + ARGV[1])
for i = 2, #ARGV do
    redis.call('ZADD', KEYS[1], 'XX', score, ARGV[i])
end
for i = 1, 3 do
    if redis.call('EXISTS', KEYS[i]) == 1 then
        redis.call('PEXPIRE', KEYS[i], 2 * ARGV[1])
    end
end
return 0
"""
)

#: KEYS: the leases, the queue, the latest end; ARGV[1] a task, ARGV[2] its end (ms) or ''.
_VACATE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '' and tonumber(ARGV[2]) > tonumber(redis.call('GET', KEYS[3]) or '0') then
    redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
end
return 0
"""

#: KEYS: the leases, the queue. How many tasks are in flight.
_COUNT = (
    _NOW_US
    + _TRIM
    + """
return redis.call('ZCARD', KEYS[1])
"""
)

#: KEYS: the leases, the queue, the latest end. The queue (task, place, ...) and the latest end.
_VIEW = (
    _NOW_US
    + _TRIM
    + """
return {redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES'), redis.call('GET', KEYS[3]) or ''}
"""
)

#: KEYS[1] the unsettled submits; ARGV[1] a record or a digest. Removes it, or all of the digest.
_SETTLE = """
local name = ARGV[1]
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if member == name or string.sub(member, 1, #name + 1) == name .. ':' then
        redis.call('ZREM', KEYS[1], member)
    end
end
return 0
"""

#: KEYS[1] the unsettled submits; ARGV[1] a digest, ARGV[2] the horizon (ms).
#: Drops records past the horizon; counts those of other inputs.
_OTHERS = (
    _NOW_US
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now / 1000 - ARGV[2]))
local prefix = ARGV[1] .. ':'
local others = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if string.sub(member, 1, #prefix) ~= prefix then
        others = others + 1
    end
end
return others
"""
)


class RedisBackend(PacingBackend):
    """The account's pacing state in Redis, shared by every process configured alike."""

    def __init__(self, config: RedisPacing, limits: RateLimits | None) -> None:
        self.limits = limits
        self.board: TaskBoard | None = None
        self.config = config
        ns = config.namespace
        self._pace_key = f"{ns}:pace:"
        self._lock_key = f"{ns}:submit:lock"
        self._known_key = f"{ns}:submit:known"
        self._unsettled_key = f"{ns}:submit:unsettled"
        self._inflight_key = f"{ns}:inflight"
        self._queue_keys = [self._inflight_key, f"{ns}:queue", f"{ns}:queue:seq"]
        self._end_keys = [self._inflight_key, f"{ns}:queue", f"{ns}:queue:last_end"]
        self._where = redis_origin(config.url)
        # Not secret: says in Redis which process holds the lock, for whoever looks.
        self._identity = f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._serial = itertools.count()
        submit = limits.interval(Endpoint.SUBMIT) if limits is not None else 0.05
        #: How often a waiting process looks at the lock (a fifth of a submit's turn).
        self.tick = max(_MIN_TICK, submit / 5)
        self._redis: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._local = asyncio.Lock()
        self._released_at = -math.inf
        self._held_until: dict[str, float] = {}
        #: Tasks this process counts in flight, with when each was counted (loop time).
        self._leases: dict[str, float] = {}
        #: Each task this process submitted: its place in the account's submit order.
        self._places: dict[str, int] = {}
        #: The places of the other processes' tasks in flight, as last seen.
        self._elsewhere: dict[str, int] = {}
        self._elsewhere_sorted: list[int] = []
        self._background: set[asyncio.Task[None]] = set()
        self._renewer: asyncio.Task[None] | None = None

    def attach(self, board: TaskBoard) -> None:
        self.board = board

    @property
    def shared(self) -> bool:
        return True

    def batch_cap(self, default: int) -> int | None:
        # All processes' batches together keep what one batch would keep in flight.
        return self.config.max_in_flight or default

    # --- lifetime ------------------------------------------------------------

    async def open(self) -> None:
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
                    f"shared pacing needs Redis 6.2 or later; {self._where} runs"
                    f" {info.get('redis_version')}"
                )
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise SharedPacingError(
                f"shared pacing: Redis at {self._where} cannot be used:"
                f" {type(exc).__name__}: {self._scrub(exc)}"
            ) from exc
        except SharedPacingError:
            await client.aclose()
            raise
        self._redis = client
        for name, source in (
            ("pace", _PACE),
            ("hold", _HOLD),
            ("stamp", _STAMP),
            ("occupy", _OCCUPY),
            ("renew", _RENEW),
            ("vacate", _VACATE),
            ("count", _COUNT),
            ("view", _VIEW),
            ("settle", _SETTLE),
            ("others", _OTHERS),
        ):
            self._scripts[name] = client.register_script(source)
        self._renewer = asyncio.create_task(self._keep_up(), name="emoji-shared-pacing")

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if self._background:
            _, late = await asyncio.wait(self._background, timeout=self.config.connect_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._redis is None:
            return
        if self._leases:
            # Ended here: the other processes need not wait for the leases to run out.
            with contextlib.suppress(RedisError, OSError):
                await self._redis.zrem(self._queue_keys[0], *self._leases)
                await self._redis.zrem(self._queue_keys[1], *self._leases)
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()
        self._leases.clear()
        self._redis = None

    def _scrub(self, exc: BaseException) -> str:
        """An error's text, never with the URL's password in it."""
        text = str(exc)
        password = url_password(self.config.url)
        if password:
            text = text.replace(password, "***")
        return text

    async def _call(self, what: str, step: Awaitable[_T]) -> _T:
        """One Redis step; its failure becomes :class:`SharedPacingError`."""
        try:
            return await step
        except (RedisError, OSError) as exc:
            raise SharedPacingError(
                f"shared pacing: could not {what} in Redis at {self._where}:"
                f" {type(exc).__name__}: {self._scrub(exc)}"
            ) from exc

    @property
    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            raise SharedPacingError("shared pacing is not connected (the client is not open)")
        return self._redis

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> int:
        if self._redis is None:
            raise SharedPacingError("shared pacing is not connected (the client is not open)")
        result = await self._call(name, self._scripts[name](keys=keys, args=args))
        return int(result)

    def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """A write nobody waits for; a failure is logged (``aclose`` lets it finish)."""

        async def quietly() -> None:
            try:
                await work
            except SharedPacingError as exc:
                log.warning("could not %s: %s", what, exc)

        task = asyncio.create_task(quietly())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- request pacing ------------------------------------------------------

    async def acquire(self, endpoint: Endpoint) -> None:
        limits = self.limits
        if limits is None:
            return
        group = group_of(endpoint)
        key = self._pace_key + group
        interval = limits.interval(endpoint)
        # ``spread`` widens each window like ``jitter`` does: one turn a window gets
        # all of it, twenty turns a window a twentieth each.
        interval *= 1 + self.config.spread / (limits.window * (1 + limits.margin) + limits.jitter)
        interval_us = round(interval * 1e6)
        loop = asyncio.get_running_loop()
        while True:
            held_here = max(0.0, self._held_until.get(group, 0.0) - loop.time())
            wait_us = await self._script(
                "pace", [key], [interval_us, round(held_here * 1e6), _IDLE_MS]
            )
            if wait_us <= 0:
                return
            await asyncio.sleep(wait_us / 1e6)
            # A 429 here while this caller slept voids its turn. One elsewhere on the
            # account holds back only the turns taken after it: asking Redis again
            # here would send every request a round trip late.
            if self._held_until.get(group, 0.0) <= loop.time():
                return

    def hold(self, endpoint: Endpoint, seconds: float | None) -> float | None:
        limits = self.limits
        if limits is None:
            return None
        wait = limits.window if seconds is None or seconds <= 0 else seconds
        group = group_of(endpoint)
        until = asyncio.get_running_loop().time() + wait
        self._held_until[group] = max(self._held_until.get(group, 0.0), until)
        self._spawn(
            self._held(self._pace_key + group, wait), f"hold back the account's {group} requests"
        )
        return wait

    async def _held(self, key: str, wait: float) -> None:
        await self._script("hold", [key], [round(wait * 1e6), _IDLE_MS])

    # --- submits -------------------------------------------------------------

    def submit_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._locked()

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        # One caller of this process at a time asks Redis; the others wait here.
        async with self._local:
            loop = asyncio.get_running_loop()
            # Having just let go, give the other processes a turn at the lock first:
            # they look every tick. The submit's own pacing would wait this long anyway.
            courtesy = self._released_at + 2 * self.tick - loop.time()
            if courtesy > 0:
                await asyncio.sleep(courtesy)
            lock = Lock(
                self._client,
                self._lock_key,
                timeout=self.config.lock_ttl,
                sleep=self.tick * random.uniform(0.75, 1.25),
                thread_local=False,
            )
            token = f"{self._identity}:{next(self._serial)}"
            await self._call("take the submit lock", lock.acquire(token=token))
            renewer = asyncio.create_task(self._renew_lock(lock), name="emoji-submit-lock")
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
                        self.config.lock_ttl,
                        self._scrub(exc),
                    )

    async def _renew_lock(self, lock: Lock) -> None:
        while True:
            await asyncio.sleep(self.config.lock_ttl / 3)
            try:
                await lock.reacquire()
            except LockError:  # LockNotOwnedError included
                log.warning("the account's submit lock was lost while held (it had expired)")
                return
            except (RedisError, OSError) as exc:
                log.warning("could not renew the account's submit lock: %s", self._scrub(exc))

    async def remember(self, task_ids: Collection[str]) -> None:
        if task_ids:
            await self._script(
                "stamp", [self._known_key], [0, "NX", _KNOWN_MS, _KNOWN_MS, *task_ids]
            )

    def forget(self, task_id: str) -> None:
        self._spawn(self._forget(task_id), "forget a task")

    async def _forget(self, task_id: str) -> None:
        await self._call("forget a task", self._client.zrem(self._known_key, task_id))

    async def known(self, task_ids: Collection[str]) -> set[str]:
        ids = list(task_ids)
        if not ids:
            return set()
        scores = await self._call(
            "read the tasks known", self._client.zmscore(self._known_key, ids)
        )
        return {task_id for task_id, score in zip(ids, scores, strict=True) if score is not None}

    async def sending(self, digest: str) -> str:
        record = f"{digest}:{self._identity}:{next(self._serial)}"
        await self._script("stamp", [self._unsettled_key], [0, "NX", _KNOWN_MS, _KNOWN_MS, record])
        return record

    async def settled(self, name: str) -> None:
        await self._script("settle", [self._unsettled_key], [name])

    async def unsettled(self, digest: str, horizon: float) -> int:
        return await self._script("others", [self._unsettled_key], [digest, round(horizon * 1000)])

    # --- tasks in flight -----------------------------------------------------

    @property
    def _lease_ms(self) -> int:
        return round(self.config.lease_ttl * 1000)

    async def occupy(self, task_id: str) -> None:
        self._leases[task_id] = asyncio.get_running_loop().time()
        self._places[task_id] = await self._script(
            "occupy", self._queue_keys, [self._lease_ms, task_id]
        )
        if len(self._places) > 10_000:  # the oldest ended long ago
            for old in list(self._places)[:5_000]:
                del self._places[old]

    def vacate(self, task_id: str, ended: float | None) -> None:
        leased = self._leases.pop(task_id, None) is not None
        if leased or ended is not None:
            self._spawn(self._vacate(task_id, ended), "end a task's lease")

    async def _vacate(self, task_id: str, ended: float | None) -> None:
        end_ms = "" if ended is None else f"{ended * 1000:.0f}"
        await self._script("vacate", self._end_keys, [task_id, end_ms, _KNOWN_MS])

    async def in_flight(self) -> int:
        return await self._script("count", self._queue_keys[:2], [])

    async def room(self, cap: int) -> None:
        # A task ends every minute or so: a look every submit interval is prompt enough.
        while await self.in_flight() >= cap:  # noqa: ASYNC110  (other processes' ends)
            await asyncio.sleep(5 * self.tick * random.uniform(0.75, 1.25))

    def _ahead_elsewhere(self, task_id: str) -> int:
        """How many of the other processes' tasks in flight were submitted before ``task_id``."""
        place = self._places.get(task_id)
        return 0 if place is None else bisect.bisect_left(self._elsewhere_sorted, place)

    async def _look(self) -> None:
        """Learn the other processes' tasks in flight, and the latest end any process saw."""
        if self._redis is None:
            return
        queue, last_end = await self._call(
            "read the account's queue", self._scripts["view"](keys=self._end_keys, args=[])
        )
        places = {
            str(queue[i]): int(float(queue[i + 1]))
            for i in range(0, len(queue), 2)
            if str(queue[i]) not in self._places
        }
        moved = any(task_id not in places for task_id in self._elsewhere)
        self._elsewhere = places
        self._elsewhere_sorted = sorted(places.values())
        if self.board is not None:
            self.board.elsewhere(
                self._ahead_elsewhere,
                last_end=float(last_end) / 1000 if last_end else None,
                moved=moved,
            )

    async def _keep_up(self) -> None:
        """Renew the leases of the tasks followed here; follow the account's queue."""
        loop = asyncio.get_running_loop()
        this = asyncio.current_task()
        renewed = loop.time()
        while True:
            # Python 3.11's asyncio.wait_for (around each of redis-py's sends) swallows a
            # cancel that comes as the send completes; the task still counts it. Honour
            # it here, or aclose(), which cancels this loop, waits for it for ever.
            if this is not None and this.cancelling():
                raise asyncio.CancelledError
            # The queue as often as the gate looks; the leases every third of a lease.
            await asyncio.sleep(min(5 * self.tick, self.config.lease_ttl / 3))
            try:
                if self.board is not None and len(self.board):
                    await self._look()
                if loop.time() - renewed >= self.config.lease_ttl / 3:
                    renewed = loop.time()
                    await self._renew_leases(renewed)
            except SharedPacingError as exc:
                log.warning("shared pacing: %s", exc)

    async def _renew_leases(self, now: float) -> None:
        board = self.board
        for task_id, since in list(self._leases.items()):
            # Submitted but never followed (nobody waits for it): its lease runs out.
            if (board is None or task_id not in board) and now - since > self.config.lease_ttl:
                del self._leases[task_id]
        if self._leases:
            await self._script("renew", self._queue_keys, [self._lease_ms, *self._leases])

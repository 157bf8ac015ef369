"""The simulated EventBridge: each task's end delivered, signed, to every HTTP target.

When ``SimulatorConfig.notify_targets`` names targets, every task that ends
(SUCCEEDED, FAILED, CANCELED) publishes one event (``_eventbridge_events``),
and each target gets its own copy the way EventBridge delivers one:

- after a latency drawn from ``notify_latency`` (provider seconds, scaled),
  counted from the task's end;
- lost with probability ``notify_drop`` (never sent), or sent again with
  probability ``notify_duplicates`` (the same event id, its own latency);
- POSTed with the signature V2 headers, signed at the moment of each attempt
  (``EventSigner``; the string-to-sign in ``notify_sign_form``, over the
  target's URL), the certificate URL pointing at the simulator's own
  ``CERTIFICATE_PATH``, and the static ``notify_token`` if one is set;
- retried per ``notify_retry`` when the answer is not 2xx, the connection
  fails or no answer comes within ``notify_timeout`` real seconds; after the
  last retry the copy is dead-lettered.

Every attempt (and every loss) is a ``DeliveryRecord``; ``SimulatorStats``
counts them. Randomness comes from ``notify_seed`` and the event's number, so
the n-th event is treated the same whatever the timing of the others.

Tasks advance lazily (``_tasks``): without traffic nothing would end. While
targets are set, a watcher wakes at the next running task's end and advances
the board, so an event goes out when its task ends even if nobody asks. The
watcher and the deliveries are tasks of the simulator's loop, started with
its application and cancelled when it shuts down. Without targets none of
this exists (and ``cryptography``, which signing needs, is not imported).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import aiohttp

from ._clock import Clock
from ._config import SimulatorConfig
from ._eventbridge_events import CERTIFICATE_PATH, Event, event_for
from ._eventbridge_keys import EventSigner
from ._eventbridge_knobs import RetryStrategy
from ._records import DeliveryOutcome, DeliveryRecord, SimulatorStats
from ._tasks import SimulatedTask, TaskBoard

__all__ = ["EventBridge", "retry_waits"]

#: At most this many copies beyond the first, however likely duplicates are.
MAX_EXTRA_COPIES = 3
#: ``BACKOFF_RETRY``: this many retries, each this many provider seconds after a failure.
BACKOFF_RETRIES = 3
BACKOFF_WAIT = (10.0, 20.0)
#: ``EXPONENTIAL_DECAY_RETRY``: this many retries, 1, 2, 4... s apart up to the cap. The
#: waits add up to 86015 s, within the one day the provider gives a copy. The attempts'
#: own time is not counted against that day: it is network time, not scaled, and on a
#: compressed clock it would cut the schedule short.
DECAY_RETRIES = 176
DECAY_CAP = 512.0


def retry_waits(strategy: RetryStrategy, rng: random.Random) -> Iterator[float]:
    """The provider seconds to wait before each retry of a copy, in order."""
    if strategy == "BACKOFF_RETRY":
        for _ in range(BACKOFF_RETRIES):
            yield rng.uniform(*BACKOFF_WAIT)
    else:
        for n in range(DECAY_RETRIES):
            yield min(2.0**n, DECAY_CAP)


class EventBridge:
    """Publishes each end of ``board``'s tasks and delivers it; ``records`` says what happened.

    ``origin`` gives the simulator's origin (``http://host:port``) once it is
    served: the certificate URL each delivery names is built from it.
    """

    def __init__(
        self,
        config: SimulatorConfig,
        clock: Clock,
        board: TaskBoard,
        stats: SimulatorStats,
        *,
        origin: Callable[[], str | None],
    ) -> None:
        self._config = config
        self._clock = clock
        self._board = board
        self._stats = stats
        self._origin = origin
        self.signer = EventSigner(form=config.notify_sign_form)
        self.records: list[DeliveryRecord] = []
        self._keep = config.keep_requests
        self._published = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        board.watcher = self

    # -- lifetime ------------------------------------------------------------------

    async def start(self) -> None:
        """Start watching the tasks' ends (the application's startup)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()  # made here: an event belongs to the loop it is used on
        timeout = aiohttp.ClientTimeout(total=self._config.notify_timeout)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._spawn(self._watch())

    async def aclose(self) -> None:
        """Cancel the watcher and every delivery still due, and close the session."""
        self._loop = None  # an end found from now on is not published: nothing would send it
        pending = list(self._tasks)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # a bug of the simulator: say so now, not at garbage collection
            task.get_loop().call_exception_handler(
                {"message": "a notification of the simulator failed", "exception": error}
            )

    # -- the board's watcher ---------------------------------------------------------

    def started(self, ends_at: float) -> None:
        """A task started: the next end may be sooner than the watcher thought."""
        wake = self._wake
        if wake is not None:
            self._in_loop(wake.set)

    def ended(self, task: SimulatedTask) -> None:
        """A task ended: publish its event (while the simulator is served)."""
        self._in_loop(lambda: self._publish(task))

    def _in_loop(self, action: Callable[[], None]) -> None:
        """Run ``action`` now if on the simulator's loop, else soon on it; not at all if stopped.

        The board may be read from another thread (a test's, of a simulator
        served in a thread): the loop's own objects are touched on the loop only.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            action()
        else:
            loop.call_soon_threadsafe(action)

    async def _watch(self) -> None:
        """Advance the board at each running task's end, so that ends happen on time."""
        wake = self._wake
        assert wake is not None
        while True:
            wake.clear()
            self._board.advance(self._clock.now())
            end = self._board.next_end()
            wait = None if end is None else max(end - self._clock.now(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), wait)

    # -- publishing and delivering ---------------------------------------------------

    def _publish(self, task: SimulatedTask) -> None:
        if self._loop is None:
            return
        config = self._config
        rng = random.Random(f"{config.notify_seed}/{self._published}")
        self._published += 1
        event = event_for(task, self._clock, rng)
        self._stats.events_published += 1
        for target in config.notify_targets:
            if rng.random() < config.notify_drop:
                self._stats.dropped += 1
                self._record(event, target, 0, 0, "dropped", at=event.ended_at)
                continue
            copies = 1
            while copies <= MAX_EXTRA_COPIES and rng.random() < config.notify_duplicates:
                copies += 1
            self._stats.duplicated += copies - 1
            for copy in range(copies):
                due = event.ended_at + self._clock.scaled(rng.uniform(*config.notify_latency))
                dice = random.Random(rng.getrandbits(64))
                self._spawn(self._deliver(event, target, copy, due, dice))

    async def _deliver(
        self, event: Event, target: str, copy: int, due: float, rng: random.Random
    ) -> None:
        """Send one copy at ``due`` (a model instant), and retry it until it is settled."""
        clock = self._clock
        await asyncio.sleep(max(due - clock.now(), 0.0))
        waits = retry_waits(self._config.notify_retry, rng)
        attempt = 0
        while True:
            attempt += 1
            at = clock.now()
            status, error = await self._post(event, target)
            outcome: DeliveryOutcome = "delivered"
            wait = None
            if status is None or not 200 <= status < 300:
                wait = next(waits, None)
                outcome = "dead_lettered" if wait is None else "retrying"
            if outcome == "delivered":
                self._stats.delivered += 1
            elif outcome == "dead_lettered":
                self._stats.dead_lettered += 1
            self._record(event, target, copy, attempt, outcome, at=at, status=status, error=error)
            if wait is None:
                return
            await asyncio.sleep(clock.scaled(wait))

    async def _post(self, event: Event, target: str) -> tuple[int | None, str | None]:
        """One attempt: the target's answer status, or ``None`` and what went wrong."""
        origin = self._origin()
        if origin is None or self._session is None:
            return None, "the simulator's origin is unknown (serve it with serve())"
        headers = self.signer.headers(
            target,
            event.body,
            cert_url=origin + CERTIFICATE_PATH,
            token=self._config.notify_token,
            now=self._clock.wall(self._clock.now()),
        )
        headers["Content-Type"] = "application/json;charset=utf-8"
        self._stats.deliveries += 1
        try:
            async with self._session.post(
                target, data=event.body, headers=headers, allow_redirects=False
            ) as answer:
                return answer.status, None
        except TimeoutError:
            return None, "timeout"
        except aiohttp.ClientError as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _record(
        self,
        event: Event,
        target: str,
        copy: int,
        attempt: int,
        outcome: DeliveryOutcome,
        *,
        at: float,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        self.records.append(
            DeliveryRecord(
                event_id=event.event_id,
                task_id=event.task_id,
                task_status=event.task_status,
                target=target,
                copy=copy,
                attempt=attempt,
                outcome=outcome,
                at=at,
                status=status,
                error=error,
            )
        )
        keep = self._keep
        if keep is not None and len(self.records) > keep:
            # A quarter at a time, as the request records are forgotten.
            del self.records[: len(self.records) - (keep - keep // 4)]

"""The account's limits, and how the client keeps under them.

The provider allows, per account: 1 detection/s, 1 submit/s, 20 task queries/s
(queries, lists and cancels; counted together here, which keeps under the
limit whether the provider counts them together or apart), and runs **one
task at a time**, queueing the others as PENDING.

Two mechanisms, both client-wide (shared by every task of one client):

* :class:`Pacer`, one per endpoint group, spaces the *starts* of requests
  ``(window * (1 + margin) + jitter) / (rate * window)`` seconds apart (1.105 s
  for 1/s): the relative margin and the absolute ``jitter`` absorb the
  difference in delay between two requests on their way there. The jitter is
  real time: it does not shrink on a compressed clock, where it matters most.
  A 429 on any request of the group pushes every later request of the group
  back by the ``Retry-After`` the service asked for (one rate window when it
  did not say), so a throttled account slows down as a whole instead of each
  task retrying on its own; never by more than ``RateLimits.max_hold`` (a
  minute: throttling usually clears within one), so that one absurd
  ``Retry-After`` does not stop the group for an hour. The call that got it
  fails at once when the wait would end past its own deadline.
* :class:`TaskBoard` knows the client's own live tasks in submission order.
  A task queued behind others of ours cannot start before they end, so its
  watcher sleeps until one of them ends instead of polling a queue where
  only the head can move.

Where the account's state lives is a :class:`PacingBackend`: :class:`InProcess`
(the default) keeps it in this process, as above; ``_shared`` keeps it in
Redis (:class:`RedisPacing`), so that every process of the account shares the
request pacing, one lock serializing the paid submits, and the count of the
account's tasks in flight.
"""

from __future__ import annotations

import abc
import asyncio
import bisect
import contextlib
import itertools
import re
import time
from collections.abc import AsyncIterator, Callable, Collection

import attrs

from ._adaptive import DurationModel
from ._errors import SharedPacingError, ValidationError
from ._urls import is_redis_url, redis_origin
from ._validation import is_finite_number
from ._values import Endpoint

__all__ = [
    "InProcess",
    "Pacer",
    "Pacing",
    "PacingBackend",
    "RateLimits",
    "RedisPacing",
    "SharedPacingError",
    "TaskBoard",
    "group_of",
]


def _positive(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    if not (is_finite_number(value) and value > 0):
        raise ValidationError(attribute.name, "a finite number > 0", value)


def _slots(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 1:
        raise ValidationError(attribute.name, "an int >= 1", value)


def _margin(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    if not (is_finite_number(value) and 0 <= value <= 1):
        raise ValidationError(attribute.name, "a number from 0 to 1", value)


@attrs.frozen(kw_only=True)
class RateLimits:
    """The account's limits (requests per second, counted over ``window`` seconds).

    ``margin`` (a fraction of the window) and ``jitter`` (seconds, never
    scaled) are the safety kept below each limit. ``max_hold`` (seconds) is
    the longest a 429's ``Retry-After`` holds back later requests of its
    group: the provider says throttling usually clears within a minute.
    """

    detect_per_second: float = attrs.field(default=1.0, validator=_positive)
    submit_per_second: float = attrs.field(default=1.0, validator=_positive)
    query_per_second: float = attrs.field(default=20.0, validator=_positive)
    upload_policy_per_second: float = attrs.field(default=100.0, validator=_positive)
    running_tasks: int = attrs.field(default=1, validator=_slots)
    window: float = attrs.field(default=1.0, validator=_positive)
    margin: float = attrs.field(default=0.1, validator=_margin)
    jitter: float = attrs.field(default=0.005, validator=_margin)
    max_hold: float = attrs.field(default=60.0, validator=_positive)

    def scaled(self, factor: float) -> RateLimits:
        """The same limits on a clock ``1 / factor`` times faster (a compressed simulator).

        ``jitter`` stays as it is: network delays do not compress.
        """
        return attrs.evolve(
            self,
            detect_per_second=self.detect_per_second / factor,
            submit_per_second=self.submit_per_second / factor,
            query_per_second=self.query_per_second / factor,
            upload_policy_per_second=self.upload_policy_per_second / factor,
            window=self.window * factor,
            max_hold=self.max_hold * factor,
        )

    def interval(self, endpoint: Endpoint) -> float:
        """Seconds between two request starts to ``endpoint``'s group."""
        rate = {
            Endpoint.DETECT: self.detect_per_second,
            Endpoint.SUBMIT: self.submit_per_second,
            Endpoint.UPLOAD_POLICY: self.upload_policy_per_second,
        }.get(endpoint, self.query_per_second)
        return (self.window * (1 + self.margin) + self.jitter) / (rate * self.window)


class Pacer:
    """Spaces request starts ``interval`` apart; a 429 holds back every later request."""

    def __init__(self, interval: float, window: float) -> None:
        self.interval = interval
        self.window = window
        self._next = 0.0
        self._held_until = 0.0
        # How late, in all, turns have started after their time: each moves every
        # later turn, so that starts stay ``interval`` apart as they happen.
        self._late = 0.0

    async def acquire(self) -> None:
        """Wait for this caller's turn. Turns are taken in arrival order.

        Turns are spaced by when requests really start, not by when they were
        due: an event loop that stalls (a blocking call, a long pause) wakes
        every sleeper whose turn passed at once, and those requests would reach
        the service together. A turn taken late moves every later turn by as much.
        """
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            start = max(now, self._next, self._held_until)
            self._next = start + self.interval
            late = self._late
            while start > now:
                await asyncio.sleep(start - now)
                now = loop.time()
                start += self._late - late
                late = self._late
            if self._held_until > now:
                continue  # A 429 arrived while this caller slept: its turn is void, take a new one.
            self._late += now - start
            self._next += now - start
            return

    def hold(self, seconds: float | None) -> float:
        """After a 429: no request of the group starts for ``seconds`` (default one window)."""
        wait = self.window if seconds is None or seconds <= 0 else seconds
        self._held_until = max(self._held_until, asyncio.get_running_loop().time() + wait)
        return wait


class TaskBoard:
    """The client's live, watched tasks in submission order.

    Kept as a sorted list, so counting the tasks ahead of one is a binary
    search: ten thousand tasks in flight cost no more per poll than ten.

    With shared pacing the backend also tells it of the account's other
    tasks (:meth:`elsewhere`): those submitted earlier by other processes
    count as ahead too, and their ends move ``last_end``.
    """

    def __init__(self, on_release: Callable[[str, float | None], None] | None = None) -> None:
        # (submission time in epoch seconds, registration number): ties keep arrival order.
        self._keys: dict[str, tuple[float, int]] = {}
        self._on_release = on_release
        self._foreign: Callable[[str], int] | None = None
        self._sorted: list[tuple[float, int]] = []
        self._seq = itertools.count()
        self._ended = asyncio.Event()
        self.last_end: float | None = None

    def watch(self, task_id: str, submitted: float | None) -> None:
        """Follow ``task_id``, ordered by ``submitted`` (epoch seconds; now if unknown)."""
        if task_id not in self._keys:
            key = (submitted or time.time(), next(self._seq))
            self._keys[task_id] = key
            bisect.insort(self._sorted, key)

    def release(self, task_id: str, ended: float | None = None) -> None:
        """The task ended (at ``ended``, epoch seconds, if known) or nobody follows it any more.

        The tasks behind it move up; the latest end seen is kept in ``last_end``,
        which is when the next queued task started on a one-slot account.
        """
        if ended is not None and (self.last_end is None or ended > self.last_end):
            self.last_end = ended
        key = self._keys.pop(task_id, None)
        if key is not None:
            del self._sorted[bisect.bisect_left(self._sorted, key)]
            self._wake()
        if self._on_release is not None:
            self._on_release(task_id, ended)

    def _wake(self) -> None:
        self._ended.set()
        self._ended = asyncio.Event()

    def elsewhere(
        self, ahead: Callable[[str], int], *, last_end: float | None, moved: bool
    ) -> None:
        """The account's other processes: how many of their tasks are ahead of one of ours.

        ``last_end`` is the latest end any of them saw; ``moved`` says some
        of their tasks ended since the last call, which wakes the waiters.
        """
        self._foreign = ahead
        if last_end is not None and (self.last_end is None or last_end > self.last_end):
            self.last_end = last_end
        if moved:
            self._wake()

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def ahead(self, task_id: str) -> int:
        """How many of the client's live tasks (and the account's, if shared) are ahead of it."""
        key = self._keys.get(task_id)
        if key is None:
            return 0
        mine = bisect.bisect_left(self._sorted, key)
        return mine if self._foreign is None else mine + self._foreign(task_id)

    async def next_release(self) -> None:
        """Return when any followed task ends or is let go."""
        await self._ended.wait()


def group_of(endpoint: Endpoint) -> str:
    """The rate limit group of ``endpoint``: queries, lists and cancels count together."""
    if endpoint in (Endpoint.QUERY, Endpoint.LIST, Endpoint.CANCEL):
        return "query"
    return str(endpoint.value)


class PacingBackend(abc.ABC):
    """Where one client keeps what it shares with the rest of the account.

    Three things, each either this process's own (:class:`InProcess`) or the
    account's, shared by every process through Redis:

    * the request pacing of each endpoint group (:meth:`acquire`, :meth:`hold`);
    * the paid submits: a lock serializing them (:meth:`submit_lock`), the tasks
      created (:meth:`remember`, :meth:`known`), and submits sent whose answer
      nobody has seen yet (:meth:`sending`, :meth:`settled`, :meth:`unsettled`);
    * the account's tasks in flight, each a lease renewed while a process
      follows it (:meth:`occupy`, :meth:`vacate`, :meth:`room`).
    """

    def __init__(self, limits: RateLimits | None) -> None:
        self.limits = limits
        self.board: TaskBoard | None = None

    def attach(self, board: TaskBoard) -> None:
        """The board of the tasks this process follows (its leases are renewed)."""
        self.board = board

    async def open(self) -> None:  # noqa: B027  (nothing to open in this process)
        """Connect to where the state lives."""

    async def aclose(self) -> None:  # noqa: B027
        """Let go of everything held (locks, leases) and disconnect."""

    @property
    def shared(self) -> bool:
        """Whether other processes see this state."""
        return False

    @abc.abstractmethod
    async def acquire(self, endpoint: Endpoint) -> None:
        """Wait until a request to ``endpoint`` may start."""

    @abc.abstractmethod
    def hold(self, endpoint: Endpoint, seconds: float | None) -> float | None:
        """Hold back ``endpoint``'s group after a 429; the wait imposed, or ``None`` if unpaced."""

    @abc.abstractmethod
    def submit_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held across a paid submit and its settling: one at a time on the account."""

    async def remember(self, task_ids: Collection[str]) -> None:  # noqa: B027
        """Tasks created by a submit of this process: never adopted by another one's."""

    def forget(self, task_id: str) -> None:  # noqa: B027
        """A task nobody holds any more: a later settling may adopt it."""

    async def known(self, task_ids: Collection[str]) -> set[str]:
        """Those of ``task_ids`` that a submit of any process of the account created."""
        return set()

    async def sending(self, digest: str) -> str:
        """A submit of these inputs (``digest``) leaves now; the name of its record."""
        return digest

    async def settled(self, name: str) -> None:  # noqa: B027
        """A submit is settled (its task known, or provably none).

        ``name`` is a record :meth:`sending` returned, or a digest: every
        record of those inputs, a stopped process's included.
        """

    async def unsettled(self, digest: str, horizon: float) -> int:
        """Submits of other inputs sent in the last ``horizon`` seconds and never settled.

        Only a process that stopped while its submit was on the wire leaves
        one: its task may still appear in the task list, so it must not be
        taken for another submit's.
        """
        return 0

    async def occupy(self, task_id: str) -> None:  # noqa: B027
        """Count ``task_id`` in flight on the account."""

    def vacate(self, task_id: str, ended: float | None) -> None:  # noqa: B027
        """``task_id`` ended (at ``ended``, epoch seconds), or nobody here follows it any more."""

    async def in_flight(self) -> int:
        """The account's tasks in flight, as far as this backend knows."""
        return 0

    async def room(self, cap: int) -> None:  # noqa: B027  (in one process, a batch's gate is enough)
        """Wait until fewer than ``cap`` of the account's tasks are in flight."""


class InProcess(PacingBackend):
    """The account as this process sees it: its own pacers and one submit lock."""

    def __init__(self, limits: RateLimits | None) -> None:
        super().__init__(limits)
        self._lock = asyncio.Lock()
        self._pacers: dict[str, Pacer] = {}
        if limits is not None:
            for endpoint in Endpoint:
                group = group_of(endpoint)
                if group not in self._pacers:
                    self._pacers[group] = Pacer(limits.interval(endpoint), limits.window)

    async def acquire(self, endpoint: Endpoint) -> None:
        pacer = self._pacers.get(group_of(endpoint))
        if pacer is not None:
            await pacer.acquire()

    def hold(self, endpoint: Endpoint, seconds: float | None) -> float | None:
        pacer = self._pacers.get(group_of(endpoint))
        return None if pacer is None else pacer.hold(seconds)

    def submit_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._locked()

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        async with self._lock:
            yield


def _seconds_at_least(least: float) -> Callable[[object, attrs.Attribute[float], object], None]:
    def check(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
        if not (is_finite_number(value) and value >= least):
            raise ValidationError(attribute.name, f"a number of seconds >= {least:g}", value)

    return check


def _optional_slots(
    instance: object, attribute: attrs.Attribute[int | None], value: object
) -> None:
    if value is not None and (type(value) is not int or value < 1):
        raise ValidationError(attribute.name, "None or an int >= 1", value)


def _flag(instance: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError(attribute.name, "True or False", value)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _key_part(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValidationError(
            attribute.name, "1 to 64 of A-Z a-z 0-9 _ . - (starting with a letter or digit)", value
        )


def _redis_url(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    allowed = "a redis://, rediss:// or unix:// URL"
    if not isinstance(value, str):
        raise ValidationError(attribute.name, allowed, type(value).__name__)
    if not is_redis_url(value):
        raise ValidationError(attribute.name, allowed, redis_origin(value))


@attrs.frozen
class RedisPacing:
    """Pacing shared through Redis by every process of one account.

    ``url`` names the Redis server (``redis://host:6379/0``; ``rediss://`` for
    TLS; a password in it is used, never shown). ``account`` is a name of your
    choosing, the same in every process of one DashScope account and different
    for another account: it namespaces the keys (``{prefix}:{account}:...``),
    so it must not be secret. The API key never goes to Redis.

    ``spread`` (seconds, real time) widens each rate window further, like
    :class:`RateLimits`' ``jitter``: requests of different processes or
    machines reach the service by different paths, and each process wakes
    for its turn on its own schedule (1.125 s between submits by default).
    ``lock_ttl``: seconds the submit lock outlives a holder that stopped
    answering (it is renewed every third of that while held). ``lease_ttl``:
    the same for each task counted in flight. ``max_in_flight``: the account's
    tasks in flight a batch keeps at most (``None``: a batch's default
    concurrency on one account). ``fallback``: if Redis cannot be reached
    when the client opens, pace in this process alone with a logged warning
    instead of raising :class:`SharedPacingError`. Needs the ``redis`` extra
    (``pip install 'emoji-async[redis]'``).
    """

    url: str = attrs.field(validator=_redis_url, repr=redis_origin)
    account: str = attrs.field(kw_only=True, validator=_key_part)
    prefix: str = attrs.field(default="emoji_async", kw_only=True, validator=_key_part)
    spread: float = attrs.field(default=0.02, kw_only=True, validator=_seconds_at_least(0))
    lock_ttl: float = attrs.field(default=10.0, kw_only=True, validator=_seconds_at_least(0.1))
    lease_ttl: float = attrs.field(default=60.0, kw_only=True, validator=_seconds_at_least(0.1))
    max_in_flight: int | None = attrs.field(default=None, kw_only=True, validator=_optional_slots)
    fallback: bool = attrs.field(default=False, kw_only=True, validator=_flag)
    connect_timeout: float = attrs.field(
        default=5.0, kw_only=True, validator=_seconds_at_least(0.01)
    )

    @property
    def namespace(self) -> str:
        """The prefix of every key this account's processes share."""
        return f"{self.prefix}:{self.account}"


class Pacing:
    """What one client knows of its account: pacing, its task board, and learned run times."""

    def __init__(self, limits: RateLimits | None, backend: PacingBackend | None = None) -> None:
        self.limits = limits
        self.backend = backend if backend is not None else InProcess(limits)
        self.board = TaskBoard(on_release=self.backend.vacate)
        self.backend.attach(self.board)
        self.durations = DurationModel()

    async def acquire(self, endpoint: Endpoint) -> None:
        """Wait until a request to ``endpoint`` may start."""
        await self.backend.acquire(endpoint)

    def hold(self, endpoint: Endpoint, seconds: float | None) -> float | None:
        """Hold back ``endpoint``'s group after a 429; the wait imposed, or ``None`` if unpaced.

        Never longer than ``RateLimits.max_hold``, whatever the service asked for.
        """
        if seconds is not None and self.limits is not None:
            seconds = min(seconds, self.limits.max_hold)
        return self.backend.hold(endpoint, seconds)

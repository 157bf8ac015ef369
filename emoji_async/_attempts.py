"""Who may own which task: the account's paid attempts and the tasks seen in its list.

Pure bookkeeping, no I/O: :mod:`emoji_async._reconcile` sends, lists and
cancels; this module says what a listing proves. The provider has no
idempotency key and never shows a task's inputs (docs/wire.md, "Tasks"), so
a task found in the list can be tied to a submit only by elimination:

* Every paid attempt is an :class:`Attempt`. While its outcome is unknown
  (its request is on the wire, or its answer was lost) it may still create a
  task, at any later time: the provider bounds neither how late nor in which
  order a slow service processes requests. Such an attempt is a *possible
  owner* of every task that appears after it was sent.
* "Appears after it was sent" is judged on the client's own clock, never the
  service's: a task seen in a listing that arrived before an attempt was sent
  existed before it, so that attempt cannot have made it. Neither the
  service's clock nor the zone in which it reads the list's time filters
  enters any decision.
* A task is *unexplained* while no attempt is known to have made it and it is
  not an orphan. An unexplained task with no possible owner existed before any
  attempt that is still unknown: another program's, or older than this
  client; it is never touched.
* An attempt *owns* an unexplained task when it is that task's only possible
  owner (attempts with the same inputs count as one: their tasks animate the
  same portrait with the same template). Two or more possible owners: the
  ownership cannot be proved, and nobody adopts the task.

Attempts are kept for :data:`REMEMBER` (the task list shows the last 24 h), so
an attempt whose answer was lost and that was sent again (a *ghost*) stays a
rival of every later settlement for that long.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from ._models import TaskStatus, TaskSummary

__all__ = [
    "FREE_ENDS",
    "REMEMBER",
    "Ambiguous",
    "Attempt",
    "AttemptState",
    "Hint",
    "Ledger",
    "Nothing",
    "Owned",
    "Verdict",
    "label_for",
    "owner_of",
]

#: How long attempts and sightings are kept, in seconds: the list shows the last 24 h.
REMEMBER: Final = 25 * 3600.0
#: The fewest characters of a task id a damaged answer must hold to name its task.
MIN_HINT: Final = 8


def owner_of(inputs: Mapping[str, Any]) -> str:
    """A name for a submit's inputs: attempts with equal inputs make interchangeable tasks.

    A digest, so that shared state and journals name the inputs without showing them.
    """
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def label_for(image: object) -> str:
    """How messages name an image: a file by its name, a URL without its query."""
    text = os.fspath(image) if isinstance(image, os.PathLike) else str(image)
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:
        return text[:80]
    if parts.scheme in ("http", "https", "oss"):
        # A signed URL's query is a credential: never in a log line.
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))[:200]
    return Path(text).name or text[:80]


class AttemptState(enum.Enum):
    """Where one paid attempt stands."""

    #: The request is about to leave, or on its way: no answer yet.
    SENDING = "sending"
    #: Its answer was lost; its job waits for the settlement.
    OPEN = "open"
    #: Its answer was lost and its job moved on (sent again, or gave up):
    #: a task it makes from now on is an orphan.
    GHOST = "ghost"
    #: Its task is known: the answer named it, or the settlement proved it.
    CREATED = "created"
    #: It provably created nothing (a documented 4xx, or it never left).
    NOTHING = "none"

    @property
    def is_unknown(self) -> bool:
        """Whether the attempt may still create a task nobody has heard of."""
        return self in (AttemptState.SENDING, AttemptState.OPEN, AttemptState.GHOST)


@attrs.frozen
class Hint:
    """What a damaged answer told of its task id: the whole id, or its first characters."""

    text: str
    complete: bool


@attrs.define(eq=False)
class Attempt:
    """One paid submit request (retries of a throttled one included), as the client saw it.

    ``owner`` names its inputs (:func:`owner_of`); ``label`` says whose it is
    in messages (a job key, or the image); ``sent_at`` is the client's clock
    (epoch seconds) just before it left.
    """

    owner: str
    label: str
    sent_at: float
    state: AttemptState = AttemptState.SENDING
    task_id: str | None = None
    hint: Hint | None = None
    #: Its record in the account's shared state, with shared pacing.
    record: str | None = None


@attrs.frozen
class Sighting:
    """A task as the list last showed it, and when the client first saw it."""

    task: TaskSummary
    first_seen: float


@attrs.frozen
class Owned:
    """The attempt made this task."""

    task_id: str


@attrs.frozen
class Nothing:
    """No task the attempt may have made has appeared (yet)."""


@attrs.frozen
class Ambiguous:
    """Tasks the attempt may have made, none of which can be proved its own.

    ``free`` cost nothing as they stand (PENDING, to be cancelled; or ended
    without a video); ``billable`` are running or succeeded. ``foreign`` is
    set when more tasks appeared than this client's attempts could have made:
    someone else submits on the account, so none of them is to be touched.
    """

    free: tuple[TaskSummary, ...]
    billable: tuple[TaskSummary, ...]
    owners: tuple[str, ...]
    foreign: bool = False

    @property
    def candidates(self) -> tuple[str, ...]:
        """Every candidate's id, billable ones first."""
        return tuple(t.task_id for t in (*self.billable, *self.free))


Verdict = Owned | Nothing | Ambiguous

#: States a task costs nothing in, whoever made it (only successful tasks are billed).
FREE_ENDS: Final = frozenset({TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.UNKNOWN})


def is_free(task: TaskSummary) -> bool:
    """Whether the task, as listed, costs nothing if nobody holds it (or cancels it)."""
    return task.status is TaskStatus.PENDING or task.status in FREE_ENDS


class Ledger:
    """The attempts of this client (and its journals), and the tasks seen in the list.

    ``clock`` reads the client's time in epoch seconds; by default a wall clock
    anchored to the monotonic one, so that a step of the system clock while the
    client runs cannot reorder what it saw.
    """

    def __init__(self, clock: Any = None) -> None:
        if clock is None:
            wall0, mono0 = time.time(), time.monotonic()

            def clock() -> float:
                return wall0 + (time.monotonic() - mono0)

        self.now = clock
        #: The attempts whose outcome is unknown, oldest first (known ones are let go:
        #: what they made is in ``_made``).
        self._attempts: dict[int, Attempt] = {}
        self._seen: dict[str, Sighting] = {}
        #: When earlier runs first saw tasks not listed in this one yet.
        self._remembered: dict[str, float] = {}
        #: Tasks an attempt of this client made: task id -> owner.
        self._made: dict[str, str] = {}
        #: Tasks no attempt may hold: cancelled, ended without a video, or billed unheld.
        self._orphans: set[str] = set()
        #: Tasks another process of the account made (shared pacing tells).
        self._elsewhere: set[str] = set()
        #: Candidates an uncertain submit named: left for the user to decide.
        self._reserved: set[str] = set()
        #: Whether a listing has shown every task then in the list (the baseline).
        self.baseline: float | None = None

    # --- attempts ------------------------------------------------------------

    def begin(self, owner: str, label: str) -> Attempt:
        """A new attempt, about to leave now."""
        attempt = Attempt(owner=owner, label=label, sent_at=self.now())
        self._attempts[id(attempt)] = attempt
        return attempt

    def restore(self, attempt: Attempt) -> None:
        """An attempt an earlier run recorded (a journal's)."""
        if attempt.state is AttemptState.CREATED and attempt.task_id is not None:
            self._made[attempt.task_id] = attempt.owner
        if attempt.state.is_unknown and not any(
            (a.owner, a.sent_at) == (attempt.owner, attempt.sent_at)
            for a in self._attempts.values()
        ):
            self._attempts[id(attempt)] = attempt

    def left(self, attempt: Attempt) -> None:
        """The attempt's request leaves now (after its turn came): its time is now."""
        attempt.sent_at = self.now()

    def created(self, attempt: Attempt, task_id: str) -> None:
        """The attempt made ``task_id`` (its answer said so, or the settlement proved it)."""
        attempt.state = AttemptState.CREATED
        attempt.task_id = task_id
        self._made[task_id] = attempt.owner
        self._orphans.discard(task_id)
        self._attempts.pop(id(attempt), None)

    def nothing(self, attempt: Attempt) -> None:
        """The attempt provably created nothing."""
        attempt.state = AttemptState.NOTHING
        self._attempts.pop(id(attempt), None)

    def lost(self, attempt: Attempt, hint: Hint | None) -> None:
        """The attempt's answer was lost: its job waits for the settlement."""
        attempt.state = AttemptState.OPEN
        attempt.hint = hint

    def ghost(self, attempt: Attempt) -> None:
        """The attempt's job moved on: whatever it still makes is an orphan."""
        if attempt.state.is_unknown:
            attempt.state = AttemptState.GHOST

    def made(self, task_ids: Iterable[str], owner: str = "") -> None:
        """Tasks this client's earlier runs made (a journal's): never adopted again."""
        for task_id in task_ids:
            self._made.setdefault(task_id, owner)

    def elsewhere(self, task_ids: Iterable[str]) -> None:
        """Tasks another process of the account made."""
        self._elsewhere.update(task_ids)

    def orphaned(self, task_id: str) -> None:
        """A task no attempt may hold: it is never a candidate again."""
        if task_id not in self._made:
            self._orphans.add(task_id)

    def reserve(self, task_ids: Iterable[str]) -> None:
        """Candidates named to the user by an uncertain submit: nobody adopts or sweeps them."""
        for task_id in task_ids:
            if task_id not in self._made:
                self._reserved.add(task_id)

    def youngest_ghost(self) -> float | None:
        """When the most recent ghost was sent, or ``None`` if there is none."""
        times = [a.sent_at for a in self.unknown() if a.state is AttemptState.GHOST]
        return max(times, default=None)

    def unexplained_ids(self) -> list[str]:
        """The tasks seen that no attempt is known to have made, and no orphan."""
        return [s.task.task_id for s in self._unexplained()]

    def is_known(self, task_id: str) -> bool:
        """Whether the task is explained: made by a known attempt, elsewhere, or an orphan."""
        return (
            task_id in self._made
            or task_id in self._orphans
            or task_id in self._elsewhere
            or task_id in self._reserved
        )

    @property
    def has_ghosts(self) -> bool:
        """Whether an attempt whose job moved on may still make a task."""
        horizon = self.now() - REMEMBER
        return any(
            a.state is AttemptState.GHOST and a.sent_at >= horizon for a in self._attempts.values()
        )

    def unknown(self) -> list[Attempt]:
        """Every attempt that may still make a task nobody has heard of, oldest first."""
        horizon = self.now() - REMEMBER
        return [a for a in self._attempts.values() if a.state.is_unknown and a.sent_at >= horizon]

    # --- the list ------------------------------------------------------------

    def seen_at(self, task_id: str) -> float | None:
        """When the client first saw the task in a listing, or ``None``."""
        sighting = self._seen.get(task_id)
        return None if sighting is None else sighting.first_seen

    def observe(self, tasks: Iterable[TaskSummary], at: float) -> list[tuple[str, float]]:
        """A listing that arrived at ``at``; the tasks it showed first, with when first seen."""
        new: list[tuple[str, float]] = []
        for task in tasks:
            before = self._seen.get(task.task_id)
            if before is None:
                first = min(at, self._remembered.pop(task.task_id, at))
                new.append((task.task_id, first))
            else:
                first = before.first_seen
            self._seen[task.task_id] = Sighting(task, first)
        return new

    def saw(self, task_id: str, first_seen: float) -> None:
        """A sighting an earlier run recorded (a journal's): used once the task is listed."""
        sighting = self._seen.get(task_id)
        if sighting is not None:
            if first_seen < sighting.first_seen:
                self._seen[task_id] = Sighting(sighting.task, first_seen)
            return
        self._remembered[task_id] = min(first_seen, self._remembered.get(task_id, first_seen))

    def status(self, task_id: str) -> TaskSummary | None:
        """The task as last listed."""
        sighting = self._seen.get(task_id)
        return None if sighting is None else sighting.task

    def forget_old(self) -> None:
        """Drop what is older than :data:`REMEMBER`: the list no longer shows it."""
        horizon = self.now() - REMEMBER
        self._attempts = {k: a for k, a in self._attempts.items() if a.sent_at >= horizon}
        for task_id in [t for t, s in self._seen.items() if s.first_seen < horizon]:
            del self._seen[task_id]
            self._made.pop(task_id, None)
            self._orphans.discard(task_id)
            self._elsewhere.discard(task_id)
            self._reserved.discard(task_id)
        for task_id in [t for t, at in self._remembered.items() if at < horizon]:
            del self._remembered[task_id]

    # --- what a listing proves ----------------------------------------------

    def _unexplained(self) -> list[Sighting]:
        return [s for s in self._seen.values() if not self.is_known(s.task.task_id)]

    @staticmethod
    def _may_have_made(attempt: Attempt, sighting: Sighting) -> bool:
        # Seen in a listing that arrived before the attempt left: it existed before.
        return sighting.first_seen >= attempt.sent_at

    def owners(self, task_id: str) -> list[Attempt]:
        """The unknown attempts that may have made ``task_id`` (it must have been seen)."""
        sighting = self._seen[task_id]
        return [a for a in self.unknown() if self._may_have_made(a, sighting)]

    def verdict(self, attempt: Attempt, *, rivals_elsewhere: bool = False) -> Verdict:
        """What the tasks seen so far say of ``attempt``'s task.

        ``rivals_elsewhere``: another process of the account left a submit
        unsettled, so it may own any task that appeared.
        """
        unknown = self.unknown()
        candidates = [s for s in self._unexplained() if self._may_have_made(attempt, s)]
        # A task another uncertain submit named to its user (reserved) may still be this
        # attempt's: it is no one's to adopt, and sending again would pay twice if it is.
        held = tuple(
            s.task
            for task_id in self._reserved
            if (s := self._seen.get(task_id)) is not None
            and self._may_have_made(attempt, s)
            and s.task.status not in FREE_ENDS
        )
        hint = attempt.hint
        if hint is not None and (hint.complete or len(hint.text) >= MIN_HINT):
            # The answer itself named the task, or how its id begins: that is proof,
            # whatever else may own the others.
            candidates = [s for s in candidates if _matches(hint, s.task.task_id)]
            if len(candidates) == 1:
                return Owned(candidates[0].task.task_id)
        if not candidates and not held:
            return Nothing()
        rivals: dict[str, Attempt] = {}
        for sighting in candidates:
            for other in unknown:
                if other.owner != attempt.owner and self._may_have_made(other, sighting):
                    rivals.setdefault(other.owner, other)
        if len(candidates) == 1 and not rivals and not held and not rivals_elsewhere:
            return Owned(candidates[0].task.task_id)
        # Each unknown attempt makes one task at most: more candidates than attempts
        # that may have made them means someone else submits on this account.
        makers = {
            id(other)
            for sighting in candidates
            for other in unknown
            if self._may_have_made(other, sighting)
        }
        foreign = len(candidates) > len(makers) and not rivals_elsewhere
        tasks = [s.task for s in candidates]
        return Ambiguous(
            free=() if foreign else tuple(t for t in tasks if is_free(t)),
            billable=(
                (*tasks, *held) if foreign else (*(t for t in tasks if not is_free(t)), *held)
            ),
            owners=tuple(sorted({attempt.label, *(r.label for r in rivals.values())})),
            foreign=foreign,
        )

    def orphans(self) -> list[tuple[TaskSummary, tuple[str, ...]]]:
        """Unexplained tasks only ghosts may have made, with the labels of those ghosts.

        A task an attempt still being settled (or on the wire) may have made is
        left to that settlement.
        """
        found: list[tuple[TaskSummary, tuple[str, ...]]] = []
        for sighting in self._unexplained():
            owners = [a for a in self.unknown() if self._may_have_made(a, sighting)]
            if owners and all(a.state is AttemptState.GHOST for a in owners):
                found.append((sighting.task, tuple(sorted({a.label for a in owners}))))
        return found


def _matches(hint: Hint, task_id: str) -> bool:
    if hint.complete:
        return task_id == hint.text
    return len(hint.text) >= MIN_HINT and task_id.startswith(hint.text)

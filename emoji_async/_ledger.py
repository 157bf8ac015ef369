"""The ledger: the account's paid attempts and the tasks seen in its list.

Pure bookkeeping, no I/O: the submitter (:mod:`~emoji_async._reconcile`)
sends, lists and cancels, and records here what it sent and what each listing
showed; what that proves is :mod:`~emoji_async._verdicts`'s, asked of what is
kept here.

Time is the client's own: when an attempt left and when a task was first
seen are read on the ledger's clock, so that which came first is never the
service's to say. Attempts whose outcome is known are let go (what they made
is remembered by task id); attempts that may still make a task, and
sightings, are kept for :data:`~emoji_async._attempts.REMEMBER` (the task
list shows the last 24 h), so an attempt whose answer was lost and that was
sent again (a *ghost*) stays a rival of every later settlement for that long.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from ._attempts import REMEMBER, Attempt, AttemptState, Hint, Sighting
from ._models import TaskSummary
from ._verdicts import Verdict, judge, may_have_made

__all__ = ["Ledger"]


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

    def owners(self, task_id: str) -> list[Attempt]:
        """The unknown attempts that may have made ``task_id`` (it must have been seen)."""
        sighting = self._seen[task_id]
        return [a for a in self.unknown() if may_have_made(a, sighting)]

    def verdict(self, attempt: Attempt, *, rivals_elsewhere: bool = False) -> Verdict:
        """What the tasks seen so far say of ``attempt``'s task (see :func:`judge`).

        ``rivals_elsewhere``: another process of the account left a submit
        unsettled, so it may own any task that appeared.
        """
        return judge(
            attempt,
            unexplained=self._unexplained(),
            reserved=[
                s for task_id in self._reserved if (s := self._seen.get(task_id)) is not None
            ],
            unknown=self.unknown(),
            rivals_elsewhere=rivals_elsewhere,
        )

    def orphans(self) -> list[tuple[TaskSummary, tuple[str, ...]]]:
        """Unexplained tasks only ghosts may have made, with the labels of those ghosts.

        A task an attempt still being settled (or on the wire) may have made is
        left to that settlement.
        """
        found: list[tuple[TaskSummary, tuple[str, ...]]] = []
        for sighting in self._unexplained():
            owners = [a for a in self.unknown() if may_have_made(a, sighting)]
            if owners and all(a.state is AttemptState.GHOST for a in owners):
                found.append((sighting.task, tuple(sorted({a.label for a in owners}))))
        return found

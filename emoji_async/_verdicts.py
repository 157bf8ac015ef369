"""What a listing proves: which task an attempt whose answer was lost made, if any.

Pure rules, no I/O and no state of their own: :mod:`~emoji_async._ledger`
keeps the attempts and sightings they are asked of, and the settlement
(:mod:`~emoji_async._settlement`) sends, lists and cancels. The provider has
no idempotency key and never shows a task's inputs (docs/wire.md, "Tasks"),
so a task found in the list can be tied to a submit only by elimination:

* While an attempt's outcome is unknown (its request is on the wire, or its
  answer was lost) it may still create a task, at any later time: the
  provider bounds neither how late nor in which order a slow service
  processes requests. Such an attempt is a *possible owner* of every task
  that appears after it was sent.
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
* A damaged answer that still holds the task id, whole or its first
  :data:`MIN_HINT` characters, names the task outright, whatever else may own
  the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import attrs

from ._attempts import Attempt, Hint, Sighting
from ._models import TaskStatus, TaskSummary

__all__ = [
    "FREE_ENDS",
    "MIN_HINT",
    "Ambiguous",
    "Nothing",
    "Owned",
    "Verdict",
    "is_free",
    "judge",
    "may_have_made",
]

#: The fewest characters of a task id a damaged answer must hold to name its task.
MIN_HINT: Final = 8


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


def may_have_made(attempt: Attempt, sighting: Sighting) -> bool:
    """Whether ``attempt`` may have made the task of ``sighting``."""
    # Seen in a listing that arrived before the attempt left: it existed before.
    return sighting.first_seen >= attempt.sent_at


def judge(
    attempt: Attempt,
    *,
    unexplained: Iterable[Sighting],
    reserved: Iterable[Sighting],
    unknown: list[Attempt],
    rivals_elsewhere: bool = False,
) -> Verdict:
    """What the tasks seen so far say of ``attempt``'s task.

    ``unexplained``: the sightings no attempt is known to have made;
    ``reserved``: those of the candidates another uncertain submit named to its
    user; ``unknown``: every attempt that may still make a task.
    ``rivals_elsewhere``: another process of the account left a submit
    unsettled, so it may own any task that appeared.
    """
    candidates = [s for s in unexplained if may_have_made(attempt, s)]
    # A task another uncertain submit named to its user (reserved) may still be this
    # attempt's: it is no one's to adopt, and sending again would pay twice if it is.
    held = tuple(
        s.task for s in reserved if may_have_made(attempt, s) and s.task.status not in FREE_ENDS
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
            if other.owner != attempt.owner and may_have_made(other, sighting):
                rivals.setdefault(other.owner, other)
    if len(candidates) == 1 and not rivals and not held and not rivals_elsewhere:
        return Owned(candidates[0].task.task_id)
    # Each unknown attempt makes one task at most: more candidates than attempts
    # that may have made them means someone else submits on this account.
    makers = {
        id(other) for sighting in candidates for other in unknown if may_have_made(other, sighting)
    }
    foreign = len(candidates) > len(makers) and not rivals_elsewhere
    tasks = [s.task for s in candidates]
    return Ambiguous(
        free=() if foreign else tuple(t for t in tasks if is_free(t)),
        billable=((*tasks, *held) if foreign else (*(t for t in tasks if not is_free(t)), *held)),
        owners=tuple(sorted({attempt.label, *(r.label for r in rivals.values())})),
        foreign=foreign,
    )


def _matches(hint: Hint, task_id: str) -> bool:
    if hint.complete:
        return task_id == hint.text
    return len(hint.text) >= MIN_HINT and task_id.startswith(hint.text)

"""A paid attempt as the ledger keeps it, and the names a submit goes by.

Every paid submit request the client sends (retries of a throttled one
included) is an :class:`Attempt`, in one :class:`AttemptState` at a time:
while its outcome is unknown (its request is on the wire, or its answer was
lost) it may still create a task, at any later time, and the provider bounds
neither how late nor in which order a slow service processes requests. What
follows from that is :mod:`~emoji_async._verdicts`'s; the bookkeeping of
attempts and sightings is :mod:`~emoji_async._ledger`'s.

Attempts are kept for :data:`REMEMBER` (the task list shows the last 24 h), so
an attempt whose answer was lost and that was sent again (a *ghost*) stays a
rival of every later settlement for that long.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._models import TaskSummary
from ._urls import shown_image

__all__ = [
    "REMEMBER",
    "Attempt",
    "AttemptState",
    "Hint",
    "Sighting",
    "label_for",
    "owner_of",
]

#: How long attempts and sightings are kept, in seconds: the list shows the last 24 h.
REMEMBER: Final = 25 * 3600.0


def owner_of(inputs: Mapping[str, Any]) -> str:
    """A name for a submit's inputs: attempts with equal inputs make interchangeable tasks.

    A digest, so that shared state and journals name the inputs without showing them.
    """
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def label_for(image: object) -> str:
    """How messages name an image: a file by its name, a URL without its query."""
    return shown_image(os.fspath(image) if isinstance(image, os.PathLike) else str(image))


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

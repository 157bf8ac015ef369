"""What the paid path's caller gives beside its request, and what a submit ends with.

The request itself is :class:`~emoji_async._paid_request.PaidRequest`; beside
it travel the caller's :class:`SubmitHooks` (a batch's journal), awaited in
order along the submit. A submit ends :class:`Settled` (its own task, found in
the answer or in the task list), or, while its answer is lost, is known by an
:class:`Unsettled` value: the :class:`~emoji_async.SubmissionUncertainError`
its user gets is built from that value only where it is raised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Protocol

import attrs

from ._attempts import Hint
from ._errors import EmojiError, SubmissionUncertainError
from ._models import TaskSnapshot

__all__ = ["NoHooks", "Settled", "SubmitHooks", "Unsettled"]


@attrs.frozen
class Settled:
    """The task a submit created, and whether it was found in the task list."""

    snapshot: TaskSnapshot
    adopted: bool


class SubmitHooks(Protocol):
    """What a caller records along a submit (a batch's journal), awaited in order."""

    async def sending(self) -> None:
        """An attempt leaves now (the first, and each resend)."""

    async def lost(self, reason: str) -> None:
        """The attempt's answer was lost: it is being settled."""

    async def created(self, task_id: str) -> None:
        """The submit's task is known; awaited even if the caller stopped waiting."""


class NoHooks:
    """Records nothing."""

    async def sending(self) -> None:
        return None

    async def lost(self, reason: str) -> None:
        return None

    async def created(self, task_id: str) -> None:
        return None


@attrs.frozen(kw_only=True)
class Unsettled:
    """What a submit of unknown outcome is known by while it is settled.

    A plain value, not the error: the :class:`SubmissionUncertainError` its
    user gets is built from it (:meth:`uncertain`, :meth:`given_up`) only where
    it is raised. ``cause`` is the failure that lost the answer, if one did (an
    earlier run's attempt has none); ``hint`` what the damaged answer told of
    its task id.
    """

    sent_at: dt.datetime
    inputs: dict[str, Any]
    reason: str
    cause: EmojiError | None = None
    hint: Hint | None = None

    @classmethod
    def lost(cls, error: SubmissionUncertainError) -> Unsettled:
        """The submit whose answer ``error`` says was lost."""
        cause = error.__cause__
        seen = error.task_id_seen
        return cls(
            sent_at=error.sent_at,
            inputs=error.inputs,
            reason=error.reason,
            cause=cause if isinstance(cause, EmojiError) else None,
            hint=None if seen is None else Hint(seen, error.task_id_complete),
        )

    def uncertain(self, why: str, candidates: Iterable[str] = ()) -> SubmissionUncertainError:
        """The error its user gets: it stays unsettled, because of ``why``."""
        return SubmissionUncertainError(
            sent_at=self.sent_at,
            inputs=self.inputs,
            reason=f"{self.reason}; {why}",
            candidates=list(candidates),
        )

    def given_up(self) -> EmojiError:
        """The error its user gets when no task came of it and it is not sent again.

        The failure that lost its answer when there is one, as that says most.
        """
        if self.cause is not None:
            return self.cause
        hint = self.hint
        return SubmissionUncertainError(
            sent_at=self.sent_at,
            inputs=self.inputs,
            reason=self.reason,
            task_id_seen=None if hint is None else hint.text,
            task_id_complete=False if hint is None else hint.complete,
        )

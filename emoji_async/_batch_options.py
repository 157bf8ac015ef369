"""How a batch runs: the keyword arguments of ``generate_many`` and ``as_completed``, checked once.

Both methods take the same ten keyword arguments; each builds one
:class:`BatchOptions` from them, and everything below the client reads the
batch's settings from that value. Its checks run when it is built, before
anything is sent.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from ._budget import Budget
from ._checks import count, instance_of, optional
from ._errors import ValidationError
from ._policy import PollPolicy
from ._task import check_timeout
from ._validation import check_lane
from ._values import Lane
from .events import EventHandler

__all__ = ["BatchOptions", "default_concurrency"]


def default_concurrency(running_tasks: int) -> int:
    """Jobs in flight by default for a batch polling on ``BACKOFF``: the slots plus two.

    The provider starts the next PENDING task by itself the moment the running
    one ends, so its slot stays busy as long as one task of ours is always
    queued. A job needs some seconds of its own before it is queued (a
    detection and a submit, each paced to 1/s), so one job queued is not
    enough while the next one prepares: two more than the slots keeps one
    queued at all times. More would only add tasks waiting in the provider's
    queue, where they cost polls and gain nothing.
    """
    return running_tasks + 2


def _path_or_none(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else Path(value)


_BUDGET = optional(instance_of(Budget, "a Budget"), "a Budget or None")
_CONCURRENCY = optional(count(1), "an int >= 1")


@attrs.frozen(kw_only=True)
class BatchOptions:
    """One batch's settings, as :meth:`EmojiClient.generate_many` documents them.

    ``concurrency`` and ``poll`` are ``None`` when the client is to choose
    (see :func:`default_concurrency` and :meth:`PollPolicy.for_batches`).
    """

    concurrency: int | None = None
    journal: Path | None = attrs.field(default=None, converter=_path_or_none)
    jobs_file: Path | None = attrs.field(default=None, converter=_path_or_none)
    download_to: Path | None = attrs.field(default=None, converter=_path_or_none)
    on_event: EventHandler | None = None
    cancel_pending: bool = False
    timeout: float | None = None
    poll: PollPolicy | None = None
    budget: Budget | None = None
    lane: Lane = attrs.field(default=Lane.BULK, converter=check_lane)

    def __attrs_post_init__(self) -> None:
        # In the order the batch always checked them: the timeout, the budget, the concurrency.
        check_timeout(self.timeout)
        _BUDGET.validate(self.budget, field="budget")
        _CONCURRENCY.validate(self.concurrency, field="concurrency")
        # A jobs file is recorded in the journal: without one, it would be silently ignored.
        if self.jobs_file is not None and self.journal is None:
            raise ValidationError("jobs_file", "None when no journal is given", self.jobs_file)

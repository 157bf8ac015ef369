"""How a client runs a batch: the poll policy, the concurrency and the submitter it gets.

:meth:`EmojiClient.generate_many` and :meth:`EmojiClient.as_completed` build one
:class:`BatchOptions` each and run it here. What the caller leaves open, the
client chooses: its poll policy made sparser for batches, on its clock; enough
jobs in flight to keep the account's running slots busy; and, when pacing is
shared by several processes, one gate on the tasks in flight across all of them.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Protocol

from ._batch import Batch
from ._batch_options import BatchOptions, default_concurrency
from ._client_lifetime import Opened
from ._client_settings import on_clock
from ._jobs import EmojiJob, JobOutcome, Outcomes
from ._limits import RateLimits
from ._policy import PollPolicy
from ._poll_placement import placement_for
from ._shared_config import RedisPacing

__all__ = ["BatchSettings", "batch_for", "outcomes_in_order"]


class BatchSettings(Protocol):
    """The client's settings a batch takes what its options leave open from."""

    @property
    def limits(self) -> RateLimits | None: ...

    @property
    def poll(self) -> PollPolicy: ...

    @property
    def time_scale(self) -> float: ...

    @property
    def pacing(self) -> RedisPacing | None: ...

    @property
    def extra_templates(self) -> frozenset[str]: ...


def batch_for(client: BatchSettings, opened: Opened, options: BatchOptions) -> Batch:
    """The batch ``options`` ask for, on the client's service, clock and pacing."""
    slots = client.limits.running_tasks if client.limits is not None else 1
    policy = on_clock(options.poll or client.poll.for_batches(), client.time_scale)
    placement = placement_for(policy)
    default = placement.concurrency(
        default_concurrency(slots), slots, opened.service.pacing.durations
    )
    submitter = opened.submitter
    cap = opened.service.pacing.backend.batch_cap(default)
    if cap is not None:
        submitter = submitter.gated(cap)
    return Batch(
        opened.service,
        submitter=submitter,
        poll=policy,
        extra_templates=client.extra_templates,
        concurrency=options.concurrency or default,
        options=options,
    )


async def outcomes_in_order(batch: Batch, jobs: list[EmojiJob]) -> Outcomes:
    """Every job's outcome, in input order, with what the batch spent and the orphans it found."""
    outcomes: list[JobOutcome | None] = [None] * len(jobs)
    async with aclosing(batch.run(jobs)) as stream:
        async for index, outcome in stream:
            outcomes[index] = outcome
    done = (outcome for outcome in outcomes if outcome is not None)
    return Outcomes(
        done,
        spent=batch.ledger.spent,
        orphans=batch.orphans,
        preempt_cancels=batch.preempt_cancels,
    )

"""Jobs held against the service's own record: which image each task was made from, what billed.

Shared by the soak (outcomes of one run) and the crash run (a journal after
many killed runs): both keep a :class:`TaskRecord` of every task while they run
(the simulator, like the provider, forgets a task 24 h after its submission),
describe each job as a :class:`JobEnd`, and get an :class:`Audit` of what held
and what did not.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Literal, Self

import attrs

from emoji_async.testing import SimulatedTask, Simulator

__all__ = ["Audit", "JobEnd", "TaskRecord", "audit"]

_ENDED = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})


class TaskRecord:
    """Every task the simulator made, as it last stood, kept past the service's retention.

    Sampled every ``every`` real seconds while the block runs (far more often
    than a task is forgotten), and once more at its end.
    """

    def __init__(self, sim: Simulator, every: float = 1.0) -> None:
        self.sim = sim
        self.every = every
        self.tasks: dict[str, SimulatedTask] = {}
        self._sampler: asyncio.Task[None] | None = None

    def sample(self) -> None:
        for task in self.sim.tasks():
            self.tasks[task.task_id] = task

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.every)

    async def __aenter__(self) -> Self:
        self._sampler = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        self.sample()

    async def quiet(self, settle: float, limit: float) -> None:
        """Wait until late submits have been processed and every task has ended."""
        await asyncio.sleep(settle)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if all(task.status in _ENDED for task in self.sim.tasks()):
                break
            await asyncio.sleep(0.05)
        self.sample()


#: How a job ended, as the client says: a video, its task failed, uncertain, or no task.
Ending = Literal["succeeded", "task_failed", "uncertain", "failed"]


@attrs.frozen
class JobEnd:
    """One job as the client reports it."""

    key: str
    image: str
    task_id: str | None
    ending: Ending
    #: A video on disk (only asked of a job that succeeded).
    saved: bool = True


@attrs.frozen
class Audit:
    """What the service's record says of the jobs' outcomes."""

    #: Jobs holding a task made from another job's image.
    foreign: tuple[str, ...]
    #: Images with more than one SUCCEEDED task (only successful tasks are billed).
    paid_twice: tuple[str, ...]
    uncertain: tuple[str, ...]
    #: Jobs whose outcome is not the truth.
    wrong: tuple[str, ...]
    #: Tasks no job holds, by how they ended.
    unheld: dict[str, int]
    #: SUCCEEDED tasks no job holds.
    unheld_paid: tuple[str, ...]
    tasks_created: int

    def violations(self, jobs: int) -> list[str]:
        """The promises the jobs' outcomes broke; empty for a sound run."""
        found = [
            f"{len(items)} {what}: {', '.join(items[:5])}"
            for items, what in (
                (self.foreign, "jobs holding another job's task"),
                (self.paid_twice, "portraits billed twice"),
                (self.wrong, "jobs not in their true final state"),
            )
            if items
        ]
        if len(self.uncertain) > jobs / 1000:
            found.append(
                f"{len(self.uncertain)} jobs uncertain, more than 1 in 1,000:"
                f" {', '.join(self.uncertain[:5])}"
            )
        return found

    def rows(self, jobs: int) -> list[str]:
        """The audit's lines of a report's table."""
        return [
            f"{'tasks created':34}{self.tasks_created}"
            f" ({self.tasks_created / max(jobs, 1):.2f} per job)",
            "tasks no job holds, as they ended",
            *(f"  {state:32}{n}" for state, n in sorted(self.unheld.items())),
            f"{'jobs holding another job task':34}{len(self.foreign)}",
            f"{'portraits billed twice':34}{len(self.paid_twice)}",
            f"{'jobs uncertain':34}{len(self.uncertain)}"
            f" ({len(self.uncertain) / max(jobs, 1) * 1000:.1f} per 1,000)",
            f"{'jobs not in their true state':34}{len(self.wrong)}",
        ]


def audit(truth: Mapping[str, SimulatedTask], ends: Iterable[JobEnd], created: int) -> Audit:
    """Each job's outcome against the record of every task the service made."""
    succeeded = collections.Counter(
        task.image_url for task in truth.values() if task.status == "SUCCEEDED"
    )
    foreign: list[str] = []
    uncertain: list[str] = []
    wrong: list[str] = []
    held: set[str] = set()
    for end in ends:
        task = truth.get(end.task_id) if end.task_id else None
        if end.task_id:
            held.add(end.task_id)
        if task is not None and task.image_url != end.image:
            foreign.append(f"{end.key} holds {task.task_id} ({task.image_url})")
        status = None if task is None else task.status
        if end.ending == "uncertain":
            uncertain.append(end.key)
        elif end.ending == "succeeded":
            if status != "SUCCEEDED":
                wrong.append(f"{end.key}: succeeded, the service says {status}")
            elif not end.saved:
                wrong.append(f"{end.key}: succeeded without its video file")
        elif end.ending == "task_failed":
            if status != "FAILED":
                wrong.append(f"{end.key}: its task failed, the service says {status}")
        elif succeeded[end.image]:
            wrong.append(f"{end.key}: ended without a video, yet its image has one")
    unheld = {i: t for i, t in truth.items() if i not in held}
    return Audit(
        foreign=tuple(foreign),
        paid_twice=tuple(f"{image} x{n}" for image, n in succeeded.items() if n > 1),
        uncertain=tuple(uncertain),
        wrong=tuple(wrong),
        unheld=dict(collections.Counter(t.status for t in unheld.values())),
        unheld_paid=tuple(i for i, t in unheld.items() if t.status == "SUCCEEDED"),
        tasks_created=created,
    )

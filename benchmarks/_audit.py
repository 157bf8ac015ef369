"""Jobs held against the service's own record: which image each task was made from, what billed.

Shared by the soak (outcomes of one run) and the crash run (a journal after
many killed runs): both describe each job as a :class:`JobEnd` and get an
:class:`Audit` of what held and what did not.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Literal

import attrs

from emoji_async.testing import Simulator

__all__ = ["Audit", "JobEnd", "audit"]

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


def audit(sim: Simulator, ends: Iterable[JobEnd]) -> Audit:
    """Each job's outcome against the simulator's record of every task."""
    truth = {task.task_id: task for task in sim.tasks()}
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
        tasks_created=sim.stats.tasks_created,
    )

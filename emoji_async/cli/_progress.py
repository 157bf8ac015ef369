"""A batch's progress, told by its events: a tally per job, and a live bar drawn from it.

:class:`BatchTally` turns the batch's events into one line per job (its state,
task id, timings, file or error) and live counts; it draws nothing, so the
summary and any other display can read it. :class:`BatchProgress` wraps a tally
in a rich progress bar on stderr::

    with BatchProgress(len(jobs)) as progress:
        outcomes = await client.generate_many(jobs, on_event=progress)
    progress.tally.counts()

Events arrive in the event loop; rich redraws from its own thread, which only
reads the tally's counters (a dict whose keys never change) and numbers.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import attrs
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from .. import Spending, events

__all__ = ["BatchProgress", "BatchTally", "JobLine", "JobState", "one_line"]


class JobState(enum.StrEnum):
    """Where a job stands, as far as its events tell."""

    #: Not started: waiting for a place among the jobs in flight.
    WAITING = "waiting"
    #: Started: its face is being detected, or its submit is on the way.
    PREPARING = "preparing"
    #: The face was found; the paid submit is next.
    DETECTED = "detected"
    #: Submitted; PENDING behind other tasks of the account.
    QUEUED = "queued"
    RUNNING = "running"
    #: The video is made and is being saved.
    SAVING = "saving"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: Not started: the budget could not cover it.
    SKIPPED = "skipped"

    @property
    def is_done(self) -> bool:
        """Whether the job has ended, one way or the other."""
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.SKIPPED)


#: The journal's states of a job an earlier run finished (``Resumed.state``, any case).
#: A resumed SUCCEEDED job is not among them: its video is saved in this run.
_FINISHED_WORDS = ("downloaded", "failed", "canceled", "unknown", "rejected")


@attrs.define
class JobLine:
    """One job as the tally knows it."""

    key: str
    state: JobState = JobState.WAITING
    task_id: str | None = None
    first_at: float | None = None
    last_at: float | None = None
    path: Path | None = None
    error: str | None = None
    resumed: bool = False
    #: The job's lane, as its ``Started`` event said (``"interactive"`` or ``"bulk"``).
    lane: str | None = None
    #: An earlier run had already finished it: it took no time in this one.
    finished_before: bool = False

    @property
    def seconds(self) -> float | None:
        """From the job's first event to its end, once it has ended in this run."""
        if not self.state.is_done or self.finished_before or self.first_at is None:
            return None
        assert self.last_at is not None
        return self.last_at - self.first_at


class BatchTally:
    """Counts and per-job lines, kept up to date by the batch's events (call it with each).

    ``downloads`` says whether the batch saves its videos: if so, a job counts
    as succeeded once its file is written, not when its task succeeds.
    """

    def __init__(self, total: int, *, downloads: bool = True) -> None:
        self.total = total
        self.downloads = downloads
        self.started = time.monotonic()
        self.jobs: dict[str, JobLine] = {}
        self.retries = 0
        self.throttled = 0
        #: Tasks of the batch moved aside for interactive ones (each submitted again).
        self.preempted = 0
        #: What the batch was billed so far, as the last ``Billed`` event said.
        self.spent: Spending | None = None
        self._counts = dict.fromkeys(JobState, 0)
        self._counts[JobState.WAITING] = total
        # Jobs that ended in this run, for throughput: resumed finished ones took no time.
        self._ended_here = 0
        self._succeeded_here = 0
        #: Tasks no job holds that the client found, and tasks whose job stopped waiting.
        self.orphans: list[events.Orphaned] = []
        self.abandoned: list[events.Abandoned] = []

    def __call__(self, event: events.JobEvent) -> None:
        # Events about a task no job holds (or that its job left): no line of their own.
        if isinstance(event, events.Orphaned):
            self.orphans.append(event)
            return
        if isinstance(event, events.Abandoned):
            self.abandoned.append(event)
            return
        line = self.jobs.get(event.key)
        if line is None:
            line = self.jobs[event.key] = JobLine(event.key, first_at=event.at)
        line.last_at = event.at
        match event:
            case events.Retrying():
                self.retries += 1
            case events.Throttled():
                self.throttled += 1
            case events.Resumed(state=state, task_id=task_id):
                line.resumed = True
                line.task_id = task_id or line.task_id
                word = state.lower()
                line.finished_before = word in _FINISHED_WORDS
                # A job the journal has as saved (or made, when nothing is saved) gets
                # no other event; one that ended without a video still gets its Failed.
                if word == "downloaded" or (word == "succeeded" and not self.downloads):
                    self._move(line, JobState.SUCCEEDED)
                elif word == "succeeded":
                    self._move(line, JobState.SAVING)
                elif task_id is not None and not line.finished_before:
                    self._move(line, JobState.QUEUED)
            case events.Started(lane=lane):
                line.lane = lane
                self._move(line, JobState.PREPARING)
            case events.Preempted():
                # Cancelled while PENDING (free): the job is submitted again, behind.
                self.preempted += 1
                line.task_id = None
                self._move(line, JobState.DETECTED)
            case events.Detected():
                self._move(line, JobState.DETECTED)
            case events.Submitted(task_id=task_id) | events.Queued(task_id=task_id):
                line.task_id = task_id
                self._move(line, JobState.QUEUED)
            case events.Running(task_id=task_id):
                line.task_id = task_id
                self._move(line, JobState.RUNNING)
            case events.Succeeded(task_id=task_id):
                line.task_id = task_id
                self._move(line, JobState.SAVING if self.downloads else JobState.SUCCEEDED)
            case events.Downloaded(path=path):
                line.path = path
                self._move(line, JobState.SUCCEEDED)
            case events.Failed(error=error, task_id=task_id):
                line.task_id = task_id or line.task_id
                line.error = one_line(error)
                self._move(line, JobState.FAILED)
            case events.Skipped():
                self._move(line, JobState.SKIPPED)
            case events.Billed(spent=spent):
                self.spent = spent

    def _move(self, line: JobLine, state: JobState) -> None:
        if line.state.is_done and state is not JobState.FAILED:
            return  # an ended job only changes its mind to "failed" (a download that broke)
        if line.state is state:
            return
        before = line.state
        self._counts[before] -= 1
        self._counts[state] += 1
        line.state = state
        if line.finished_before:
            return
        if state.is_done and not before.is_done:
            self._ended_here += 1
        if state is JobState.SUCCEEDED:
            self._succeeded_here += 1
        elif before is JobState.SUCCEEDED:
            self._succeeded_here -= 1

    # --- what displays read -------------------------------------------------------

    def counts(self) -> dict[JobState, int]:
        """How many jobs are in each state (every state present)."""
        return dict(self._counts)

    @property
    def done(self) -> int:
        """How many jobs have ended."""
        return self._counts[JobState.SUCCEEDED] + self._counts[JobState.FAILED]

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the tally was created."""
        return (time.monotonic() if now is None else now) - self.started

    def videos_per_minute(self, now: float | None = None) -> float:
        """Videos made in this run per minute of it."""
        minutes = self.elapsed(now) / 60
        return self._succeeded_here / minutes if minutes > 0 else 0.0

    def eta(self, now: float | None = None) -> float | None:
        """Seconds until every job has ended at this run's pace; ``None`` until one has."""
        remaining = self.total - self.done
        if remaining <= 0:
            return 0.0
        if self._ended_here == 0:
            return None
        return remaining * self.elapsed(now) / self._ended_here


def one_line(error: BaseException) -> str:
    """An error as one line: its class and message."""
    text = " ".join(str(error).split()) or "(no message)"
    return f"{type(error).__name__}: {text}"


# --- the bar ------------------------------------------------------------------------

_STATE_STYLES = {
    JobState.WAITING: "dim",
    JobState.PREPARING: "cyan",
    JobState.DETECTED: "cyan",
    JobState.QUEUED: "yellow",
    JobState.RUNNING: "blue",
    JobState.SAVING: "blue",
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
    JobState.SKIPPED: "dim",
}


def _states(tally: BatchTally) -> Text:
    """``waiting 3 · queued 1 · running 1 · succeeded 2 · failed 0``: zero counts left out."""
    text = Text("  ")
    shown = False
    for state, count in tally.counts().items():
        if count or state in (JobState.SUCCEEDED, JobState.FAILED):
            if shown:
                text.append(" · ")
            text.append(f"{state.value} {count}", style=_STATE_STYLES[state])
            shown = True
    if tally.retries:
        text.append(f" · retries {tally.retries}", style="magenta")
    if tally.throttled:
        text.append(f" · throttled {tally.throttled}", style="magenta")
    return text


class _PaceColumn(ProgressColumn):
    def __init__(self, tally: BatchTally) -> None:
        super().__init__()
        self._tally = tally

    def render(self, task: object) -> Text:
        now = time.monotonic()
        eta = self._tally.eta(now)
        shown = "-:--:--" if eta is None else _clock(eta)
        return Text(
            f"{self._tally.videos_per_minute(now):.1f} videos/min · ETA {shown}",
            style="progress.remaining",
        )


class _Progress(Progress):
    """A bar line, and under it the count of jobs in each state."""

    def __init__(self, tally: BatchTally, *columns: str | ProgressColumn, **kwargs: Any) -> None:
        self._tally = tally  # before Progress.__init__, which renders once
        super().__init__(*columns, **kwargs)

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        yield _states(self._tally)


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class BatchProgress:
    """A live progress bar of a batch on ``console`` (stderr by default), fed by its events.

    Use it as a context manager, and pass it as ``on_event``. With
    ``show=False`` nothing is drawn but the tally is kept all the same.
    """

    def __init__(
        self,
        total: int,
        *,
        console: Console | None = None,
        show: bool = True,
        downloads: bool = True,
        description: str = "batch",
    ) -> None:
        self.tally = BatchTally(total, downloads=downloads)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if show:
            self._progress = _Progress(
                self.tally,
                TextColumn("[progress.description]{task.description}"),
                BarColumn(bar_width=30),
                MofNCompleteColumn(),
                _PaceColumn(self.tally),
                TimeElapsedColumn(),
                console=console or Console(stderr=True),
                redirect_stdout=False,
                redirect_stderr=False,
                refresh_per_second=4,
            )
            self._task = self._progress.add_task(description, total=total)

    def __call__(self, event: events.JobEvent) -> None:
        self.tally(event)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self.tally.done)

    def __enter__(self) -> Self:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.refresh()
            self._progress.stop()

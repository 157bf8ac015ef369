"""``emoji-async batch``: a jobs file in, videos and a summary out.

The jobs file is read and checked whole before anything is sent; the batch
itself (pacing, the journal, resuming, downloads, cleanup on interrupt) is
``EmojiClient.generate_many``. This module draws the progress from its events
and the summary from its outcomes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from .. import (
    AccountError,
    Budget,
    EmojiJob,
    JobOutcome,
    JournalError,
    Lane,
    Outcomes,
    Prices,
    Spending,
    SubmissionUncertainError,
    ValidationError,
    events,
)
from ._common import (
    ACCOUNT_REFUSED,
    INTERRUPTED,
    CommandError,
    counted,
    not_a_video,
    open_client,
)
from ._jobsfile import load_jobs
from ._progress import BatchProgress, BatchTally, JobLine, JobState, one_line

__all__ = ["cmd_batch", "print_summary", "progress_console"]

_STYLE = {JobState.SUCCEEDED: "green", JobState.FAILED: "red", JobState.SKIPPED: "dim"}


def progress_console(mode: str) -> Console | None:
    """The stderr console to draw progress on, or ``None`` when there is to be none.

    ``auto`` draws only on a terminal; ``always`` draws even into a pipe (with a
    terminal's escape codes), which is how the tests watch it.
    """
    if mode == "never":
        return None
    console = Console(stderr=True, force_terminal=True if mode == "always" else None)
    return console if console.is_terminal else None


#: Off a terminal, no line is folded: a table is as wide as its content.
_UNBOUNDED = 1_000_000


class _Stdout:
    """Prints to stdout: at the terminal's width on a terminal; into a pipe or a file, each
    line as long as its content (rich would otherwise fold at 80 columns, or pad every
    line to whatever fixed width it was given)."""

    def __init__(self) -> None:
        self._terminal = sys.stdout.isatty()
        self._console = Console(width=None if self._terminal else _UNBOUNDED)

    def print(self, renderable: RenderableType) -> None:
        """A table, or a line of text (never folded: the terminal wraps it)."""
        soft_wrap = isinstance(renderable, str)
        options: dict[str, Any] = {"highlight": False, "markup": False, "soft_wrap": soft_wrap}
        if self._terminal:
            self._console.print(renderable, **options)
            return
        with self._console.capture() as captured:
            self._console.print(renderable, **options)
        for line in captured.get().splitlines():
            print(line.rstrip())


def cmd_batch(args: argparse.Namespace) -> int:
    jobs = load_jobs(args.jobs_file)
    jobs_file = args.jobs_file.resolve()
    client = open_client(args)  # fails here, before any drawing, without a key
    console = progress_console(args.progress)
    progress = BatchProgress(len(jobs), console=console, show=console is not None)

    budget = None
    if args.budget_seconds is not None or args.budget_detections is not None:
        budget = Budget(video_seconds=args.budget_seconds, detections=args.budget_detections)
    prices = Prices(video_second=args.price_video, detection=args.price_detection)

    async def run() -> Outcomes:
        async with client:
            with contextlib.ExitStack() as drawing:
                return await client.generate_many(
                    jobs,
                    concurrency=args.concurrency,
                    journal=args.journal,
                    jobs_file=jobs_file,
                    download_to=args.out,
                    on_event=_drawn_from_the_first_event(progress, drawing),
                    cancel_pending=args.cancel_pending_on_interrupt,
                    timeout=args.timeout,
                    budget=budget,
                    lane=args.lane,
                )

    try:
        outcomes = asyncio.run(run())
    except ValidationError as exc:
        # Refused before anything was sent; said of the jobs file the user wrote.
        raise CommandError(_of_jobs_file(exc, jobs, args.jobs_file), status=2) from exc
    except JournalError as exc:
        if exc.jobs_file is None:  # not a refusal of this jobs file: a failed command
            raise
        # One journal records one jobs file's jobs: refused before anything was sent. Said
        # of "the journal" as the command said it, the error's own "journal 'path': " left out.
        reason = str(exc).removeprefix(f"journal {os.fspath(exc.path)!r}: ")
        raise CommandError(f"the journal {exc.path} {reason}", status=2) from exc
    except KeyboardInterrupt:
        _print_interrupted(jobs, progress.tally)
        cancelled = " (its PENDING tasks cancelled)" if args.cancel_pending_on_interrupt else ""
        print(
            f"emoji-async: interrupted{cancelled}; run the same command again to resume "
            f"from the journal {args.journal}",
            file=sys.stderr,
        )
        return INTERRUPTED
    print_summary(outcomes, progress.tally, args.out, spent=outcomes.spent, prices=prices)
    refusal = next((o.error for o in outcomes if isinstance(o.error, AccountError)), None)
    if refusal is not None:
        waiting = sum(o.not_started for o in outcomes)
        print(
            "emoji-async: error: the account was refused, so the batch stopped:"
            f" {one_line(refusal)}"
            f" ({counted(waiting, 'job')} not started; once the account is fixed, run the same"
            f" command again: they resume from the journal {args.journal})",
            file=sys.stderr,
        )
        return ACCOUNT_REFUSED
    billable = [o for o in outcomes.orphans if not o.cancelled]
    return 0 if all(o.ok or o.skipped for o in outcomes) and not billable else 1


def _drawn_from_the_first_event(
    progress: BatchProgress, drawing: contextlib.ExitStack
) -> events.EventHandler:
    """``progress`` as a batch's ``on_event``, its bar started by the first event.

    A batch refused before any job starts (a journal of another jobs file) then
    draws nothing: its one line of error is all there is on stderr.
    """
    started = False

    def on_event(event: events.JobEvent) -> None:
        nonlocal started
        if not started:
            started = True
            drawing.enter_context(progress)
        progress(event)

    return on_event


def _of_jobs_file(exc: ValidationError, jobs: Sequence[EmojiJob], path: Path) -> str:
    """The batch's refusal of ``jobs[i]``, as the job of the jobs file it is."""
    found = re.match(r"jobs\[(\d+)\]\.?(\w*)$", exc.field)
    if found is None or int(found[1]) >= len(jobs):
        return str(exc)
    job = jobs[int(found[1])]
    field = f" {found[2]}" if found[2] and found[2] != "key" else ""
    return f"{path}: job {job.resolved_key!r}{field}: expected {exc.allowed}"


# --- the summary --------------------------------------------------------------------


def _table(title: str) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("key", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("task id", no_wrap=True)
    table.add_column("seconds", justify="right", no_wrap=True)
    table.add_column("file or error", overflow="fold")
    return table


def _seconds(line: JobLine | None) -> str:
    seconds = None if line is None else line.seconds
    return "-" if seconds is None else f"{seconds:.1f}"


def print_summary(
    outcomes: Sequence[JobOutcome],
    tally: BatchTally,
    out: Path,
    *,
    spent: Spending | None = None,
    prices: Prices | None = None,
) -> None:
    """A table of the outcomes, one row per job, a line of totals, and what was billed."""
    table = _table("batch summary")
    not_videos = 0
    for outcome in outcomes:
        if outcome.skipped or outcome.not_started:
            state = JobState.SKIPPED
        else:
            state = JobState.SUCCEEDED if outcome.ok else JobState.FAILED
        word = "uncertain" if isinstance(outcome.error, SubmissionUncertainError) else state.value
        word = "not started" if outcome.not_started else word
        line = tally.jobs.get(outcome.key)
        shown = word + (" (resumed)" if outcome.resumed else "")
        if line is not None and line.lane == Lane.INTERACTIVE.value:
            shown += " (interactive)"
        if outcome.not_started:
            detail = "not started: the account was refused"
        elif outcome.skipped:
            detail = "not started: over the budget"
        elif outcome.ok and outcome.path is not None:
            problem = not_a_video(outcome.path)
            detail = outcome.path.name + ("" if problem is None else f" ({problem})")
            not_videos += problem is not None
            if outcome.moved_aside:
                detail += f" (moved aside {counted(outcome.moved_aside, 'time')})"
        elif outcome.ok:
            detail = "-"
        else:
            detail = one_line(outcome.error) if outcome.error is not None else "no video"
        table.add_row(
            Text(outcome.key),
            Text(shown, style=_STYLE[state]),
            outcome.task_id or "-",
            _seconds(tally.jobs.get(outcome.key)),
            Text(detail),  # as it is: brackets in a key or an error are no markup
        )
    succeeded = sum(outcome.ok for outcome in outcomes)
    skipped = sum(outcome.skipped for outcome in outcomes)
    waiting = sum(outcome.not_started for outcome in outcomes)
    uncertain = sum(isinstance(o.error, SubmissionUncertainError) for o in outcomes)
    failed = len(outcomes) - succeeded - skipped - waiting - uncertain
    resumed = sum(outcome.resumed for outcome in outcomes)
    seconds = sum(o.video.video_duration for o in outcomes if o.ok and o.video is not None)
    console = _Stdout()
    console.print(table)
    console.print(
        f"{counted(len(outcomes), 'job')}: {succeeded} succeeded, {failed} failed"
        + (f", {uncertain} uncertain" if uncertain else "")
        + (f", {skipped} skipped for the budget" if skipped else "")
        + (f", {waiting} not started (the account was refused)" if waiting else "")
        + (f", {resumed} resumed from the journal" if resumed else "")
        + f"; {seconds} s of video in {out}; {tally.elapsed():.1f} s"
    )
    if not_videos:
        console.print(f"warning: saved files that are not MP4 videos: {not_videos} (marked above)")
    preempted = sum(outcome.moved_aside for outcome in outcomes)
    cancels = getattr(outcomes, "preempt_cancels", 0)
    if cancels:
        console.print(
            f"moved aside for interactive jobs: {counted(preempted, 'task')}, each submitted"
            f" again behind them; {counted(cancels, 'cancel')} sent (free while PENDING)"
            + (
                f", {cancels - preempted} too late (the task had started)"
                if cancels > preempted
                else ""
            )
        )
    if uncertain:
        console.print(
            f"{uncertain} uncertain: a submit's answer was lost and a task appeared that it"
            " may have made, but another lost submit may have made it too; nothing was"
            " resent. The candidates are listed per job above: check them"
            " (emoji-async status ID), then rerun with the journal to settle again."
        )
    orphans = getattr(outcomes, "orphans", ())
    cancelled = [o for o in orphans if o.cancelled]
    billable = [o for o in orphans if not o.cancelled]
    if orphans:
        console.print(
            f"tasks no job holds: {len(cancelled)} cancelled while PENDING (free)"
            + (
                f", {len(billable)} not cancelled in time, billed on success: "
                + ", ".join(
                    f"{o.task_id} ({o.status.value}, from {'/'.join(o.owners)})" for o in billable
                )
                if billable
                else ""
            )
        )
    if spent is not None:
        console.print(_billed(spent, prices))


def _billed(spent: Spending, prices: Prices | None) -> str:
    """``billed: 42 s of video (12 videos), 14 detections; estimated cost 3.42``."""
    line = (
        f"billed: {spent.video_seconds} s of video ({counted(spent.videos, 'video')}),"
        f" {counted(spent.detections, 'detection')}"
    )
    if prices is None or (prices.video_second is None and prices.detection is None):
        return line + " (give --price-video and --price-detection for a cost estimate)"
    cost = spent.cost(prices)
    if cost is None:
        return line + "; no estimate: a price is missing for something billed"
    return line + f"; estimated cost {cost:.4f} at your prices"


def _print_interrupted(jobs: Sequence[EmojiJob], tally: BatchTally) -> None:
    table = _table("batch interrupted")
    for job in jobs:
        key = job.resolved_key
        line = tally.jobs.get(key)
        state = JobState.WAITING if line is None else line.state
        detail = "-"
        if line is not None and line.path is not None:
            detail = line.path.name
        elif line is not None and line.error is not None:
            detail = line.error
        table.add_row(
            Text(key),
            Text(state.value, style=_STYLE.get(state, "")),
            (line.task_id if line is not None else None) or "-",
            _seconds(line),
            Text(detail),
        )
    counts = tally.counts()
    console = _Stdout()
    console.print(table)
    console.print(
        f"{counted(len(jobs), 'job')}: "
        + ", ".join(f"{count} {state.value}" for state, count in counts.items() if count)
    )

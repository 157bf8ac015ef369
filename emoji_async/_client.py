"""EmojiClient, the public face: each verb delegates to the module named for its work."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncGenerator, Collection, Iterable, Sequence
from contextlib import aclosing
from pathlib import Path
from types import TracebackType
from typing import Self

from ._api import DETECT_MODEL, GENERATE_MODEL
from ._batch_options import BatchOptions
from ._budget import Budget
from ._client_batches import batch_for, outcomes_in_order
from ._client_lifetime import ClientLifetime
from ._downloads import download_video
from ._generating import generate_one
from ._jobs import EmojiJob, JobOutcome, Outcomes
from ._limits import RateLimits
from ._models import (
    AbandonedTask,
    BBox,
    FaceDetection,
    OrphanTask,
    TaskPage,
    TaskStatus,
    VideoResult,
    check_task_id,
)
from ._notify_policy import NotifyPolicy
from ._paid_requests import paid_request, submitted_task
from ._policy import PollPolicy, RetryPolicy
from ._shared_config import RedisPacing
from ._task import Task
from ._task_list_query import check_list_query
from ._templates import Template
from ._transport import MAX_VIDEO_BYTES, Session, Timeouts
from ._uploads import ImageSource
from ._urls import origin
from ._validation import check_boxes, check_driven_id, check_lane
from ._values import Lane
from .events import EventHandler

__all__ = ["EmojiClient"]


class EmojiClient:
    """A client of the DashScope Emoji service, for use in ``async with``.

    ``api_key`` defaults to ``DASHSCOPE_API_KEY``; ``base_url`` to ``DASHSCOPE_BASE_URL``, then the
    Beijing host. Both are resolved when the client opens, so a missing key fails there, not as an
    HTTP 401 later.

    The client owns one pooled ``aiohttp.ClientSession`` for its lifetime, or borrows ``session``
    and leaves it open. It cannot be reopened once closed. ``poll`` decides when tasks are polled,
    ``retry`` how transient failures of single requests are retried, ``timeouts`` how long one
    request may take, ``limits`` the account's rate limits the client keeps under (``None``: no
    pacing at all). ``extra_templates`` opts in to ``driven_id`` values the provider adds after
    this version.

    ``time_scale`` is for tests against a simulator whose clock runs faster (see
    :func:`emoji_async.testing.client_for`, which sets it): every duration of ``poll``, ``retry``
    and ``limits`` (and of a batch's ``poll``) is multiplied by it; per-call ``timeout=`` and
    ``timeouts`` stay real seconds, and a call's hard deadline is never under 10 real seconds (or
    the retry deadline, if shorter): the network does not run faster.

    ``pacing`` is where those limits are kept: in this process (``None``, the default), or shared
    by every process of the account through Redis (:class:`RedisPacing`): request pacing, the
    one-at-a-time submit lock and the count of tasks in flight. Redis is connected when the client
    opens; if it cannot be, :class:`SharedPacingError` is raised there.

    A paid task whose caller was cancelled after its submit left is recorded (:attr:`abandoned`)
    and goes on; ``cancel_abandoned=True`` cancels it while PENDING instead. ``on_event`` is told
    of such tasks, and of tasks no job holds that the client found (:attr:`orphans`), as
    :class:`~emoji_async.events.Abandoned` and :class:`~emoji_async.events.Orphaned`.
    ``notifications`` (a :class:`NotifyPolicy`): a waiter wakes on its task's event, delivered to
    :attr:`notices` (a :class:`Notices`), and confirms it with one query; polls are a safety net.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        workspace: str | None = None,
        session: Session | None = None,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        limits: RateLimits | None = RateLimits(),  # noqa: B008  (frozen, so sharing is safe)
        extra_templates: Collection[str] = (),
        allow_insecure_http: bool = False,
        pacing: RedisPacing | None = None,
        cancel_abandoned: bool = False,
        on_event: EventHandler | None = None,
        notifications: NotifyPolicy | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.poll = poll or PollPolicy()
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.limits = limits
        self.time_scale = time_scale
        self.pacing = pacing
        self.notifications = notifications
        self.extra_templates = frozenset(extra_templates)
        self.base_url: str | None = None
        self._life = ClientLifetime(
            self,
            api_key=api_key,
            base_url=base_url,
            workspace=workspace,
            session=session,
            allow_insecure_http=allow_insecure_http,
            cancel_abandoned=cancel_abandoned,
            on_event=on_event,
        )
        self.notices = self._life.notices

    def __repr__(self) -> str:
        where = self.base_url or origin(self._life.base_url_arg) or "(resolved on open)"
        return f"<EmojiClient {self._life.state.value} {where}>"

    async def open(self) -> None:
        """Resolve the key and URL and open the HTTP session (``async with`` does this)."""
        try:
            await self._life.open()
        finally:
            # Known once resolved, even when the pacing then fails to connect.
            self.base_url = self._life.base_url

    async def aclose(self) -> None:
        """Close the session if the client created it. Safe to call twice.

        A submit whose caller was cancelled is first let to settle (bounded
        by the retry deadline), so that its task is recorded (:attr:`abandoned`).
        Shared pacing then lets go of the leases it holds and disconnects.
        """
        await self._life.aclose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def detect(self, image_url: ImageSource) -> FaceDetection:
        """Find the face in a portrait: the boxes a submit needs.

        Raises :class:`FaceRejectedError` when the portrait does not qualify
        (the detection is billed all the same). ``image_url`` may also be a
        local file (a path or a ``file://`` URI): it is checked, then uploaded.
        """
        url = await self._life.service.uploads.url_for(image_url, DETECT_MODEL)
        return await self._life.service.detect(url)

    async def submit(
        self,
        image_url: ImageSource,
        driven_id: str | Template,
        *,
        face_bbox: BBox | Sequence[int],
        ext_bbox: BBox | Sequence[int],
        lane: Lane | str = Lane.INTERACTIVE,
    ) -> Task:
        """Start a paid generation task; returns its handle at once.

        A submit whose answer was lost is never simply resent: the client
        first watches the task list for the task it may have created, adopts
        it if it appears, and sends again only once the reconcile window has
        shown none (``RetryPolicy.reconcile_window``). When that cannot be
        settled it raises :class:`SubmissionUncertainError`. Submits of one
        client go one at a time. If the caller is cancelled meanwhile, the
        submit still settles, and a task it created is cancelled.
        A local file is uploaded for ``emoji-v1`` once the arguments are checked.

        ``lane``: an interactive submit (the default) goes ahead of waiting bulk
        ones, and a batch's bulk tasks queued ahead of its task are moved aside
        (cancelled while PENDING, free, and submitted again behind it).
        """
        template = check_driven_id(driven_id, extra=self.extra_templates)
        face, ext = check_boxes(face_bbox, ext_bbox)
        chosen = check_lane(lane)
        api = self._life.service
        request = await paid_request(api, image_url, template, face, ext, chosen)
        done = await self._life.submitter.submit(request)
        return submitted_task(api, done.snapshot, poll=self._life.poll, template=request.driven_id)

    def task(self, task_id: str) -> Task:
        """A handle on a task submitted earlier (by this process or another)."""
        return Task(self._life.service, check_task_id(task_id), poll=self._life.poll)

    async def generate(
        self,
        image_url: ImageSource,
        driven_id: str | Template,
        *,
        face: FaceDetection | None = None,
        timeout: float | None = None,
        lane: Lane | str = Lane.INTERACTIVE,
    ) -> VideoResult:
        """Detect, submit and wait: one portrait in, one video out.

        ``face`` is this portrait's detection, if :meth:`detect` was called
        already (to refuse a bad portrait early, say): its boxes are used and
        the portrait is not detected, and billed, a second time.
        ``timeout`` (seconds) bounds the whole call; without it, detection
        and submit are bounded by the retry policy and the wait for the task
        by the poll policy's deadline. When it passes during detection, the
        error is :class:`ResponseLostError`; during the submit,
        :class:`SubmissionUncertainError`: the submit still settles, and a
        task it made is recorded in :attr:`abandoned` (cancelled while
        PENDING with ``cancel_abandoned=True``); during the wait,
        :class:`WaitTimeoutError`, the task going on.
        A local file is read and checked once, then uploaded once per model.
        ``lane`` is the submit's (see :meth:`submit`): interactive by default.
        """
        return await generate_one(
            self, self._life, image_url, driven_id, face=face, timeout=timeout, lane=lane
        )

    @property
    def abandoned(self) -> tuple[AbandonedTask, ...]:
        """Paid tasks whose caller was cancelled after the submit left, oldest first.

        Each was also logged (a warning) and told to ``on_event``
        (:class:`~emoji_async.events.Abandoned`). With ``cancel_abandoned=True``
        the client cancels them while PENDING; otherwise they go on and bill if
        they succeed, and :meth:`cancel_abandoned_tasks` cancels those still PENDING.
        """
        return self._life.records.abandoned

    @property
    def orphans(self) -> tuple[OrphanTask, ...]:
        """Tasks no job holds that the client found in the task list, oldest first.

        A submit whose answer was lost may make its task late, after it was
        sent again, or a task may appear that it cannot be proved to have made:
        such a task is cancelled while PENDING (``cancelled``), and one already
        running or done is listed here with its id (it bills if it succeeds).
        """
        return self._life.records.orphans

    async def cancel_abandoned_tasks(self) -> list[str]:
        """Cancel every abandoned task still PENDING (free); the ids cancelled."""
        return await self._life.submitter.cancel_abandoned_tasks()

    async def generate_many(
        self,
        jobs: Iterable[EmojiJob],
        *,
        concurrency: int | None = None,
        journal: str | os.PathLike[str] | None = None,
        jobs_file: str | os.PathLike[str] | None = None,
        download_to: str | os.PathLike[str] | None = None,
        on_event: EventHandler | None = None,
        cancel_pending: bool = False,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        budget: Budget | None = None,
        lane: Lane | str = Lane.BULK,
    ) -> Outcomes:
        """Generate a video for every job; one :class:`JobOutcome` per job, in input order.

        Up to ``concurrency`` jobs are in flight at once (default: enough to
        keep the account's running slot busy, see the docs on pacing). A job's
        failure is its outcome and never stops another job. ``journal`` (a file path) makes the
        run resumable: rerun the same jobs with it after a crash and nothing is paid twice.
        ``jobs_file`` names the file the jobs were read from: the journal records it, and
        refuses another file with :class:`JournalError` before anything is sent (a file moved
        with all its jobs is the same file). ``download_to`` saves each video as
        ``<dir>/<key>.mp4`` as soon as its task succeeds. ``on_event`` receives each
        :mod:`event <emoji_async.events>`. ``timeout`` bounds each job's wait for its task.
        ``poll`` defaults to the client's policy made sparser for batches
        (:meth:`PollPolicy.for_batches`). Cancelling the call cancels every job at once; with
        ``cancel_pending`` the remote tasks still queued are cancelled too.

        The result's ``spent`` says what the batch was billed (with a journal,
        the earlier runs included). ``budget`` caps it: a job starts only if
        the most it can cost still fits, otherwise it and the jobs after it
        are skipped (``JobOutcome.skipped``), never failed.

        ``lane`` is each job's that names none (``EmojiJob.lane``): bulk by
        default, so an interactive submit goes first, and the batch's tasks queued
        ahead of its task are moved aside and submitted again (docs: lanes).

        Every job is checked before anything is sent: a bad one raises
        :class:`ValidationError` naming ``jobs[i]`` and its field.
        """
        job_list = list(jobs)
        options = BatchOptions(
            concurrency=concurrency,
            journal=journal,
            jobs_file=jobs_file,
            download_to=download_to,
            on_event=on_event,
            cancel_pending=cancel_pending,
            timeout=timeout,
            poll=poll,
            budget=budget,
            lane=lane,
        )
        return await outcomes_in_order(batch_for(self, self._life, options), job_list)

    async def as_completed(
        self,
        jobs: Iterable[EmojiJob],
        *,
        concurrency: int | None = None,
        journal: str | os.PathLike[str] | None = None,
        jobs_file: str | os.PathLike[str] | None = None,
        download_to: str | os.PathLike[str] | None = None,
        on_event: EventHandler | None = None,
        cancel_pending: bool = False,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        budget: Budget | None = None,
        lane: Lane | str = Lane.BULK,
    ) -> AsyncGenerator[JobOutcome, None]:
        """Like :meth:`generate_many`, yielding each outcome as its job ends.

        Leaving the loop early stops the remaining jobs once the generator is
        closed: wrap it in ``contextlib.aclosing`` to make that immediate.
        The running totals come with each :class:`~emoji_async.events.Billed` event.
        """
        options = BatchOptions(
            concurrency=concurrency,
            journal=journal,
            jobs_file=jobs_file,
            download_to=download_to,
            on_event=on_event,
            cancel_pending=cancel_pending,
            timeout=timeout,
            poll=poll,
            budget=budget,
            lane=lane,
        )
        batch = batch_for(self, self._life, options)
        async with aclosing(batch.run(list(jobs))) as stream:
            async for _, outcome in stream:
                yield outcome

    async def list_tasks(
        self,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        status: TaskStatus | None = None,
        model: str | None = GENERATE_MODEL,
        page: int = 1,
        page_size: int = 10,
    ) -> TaskPage:
        """One page of the account's tasks, newest first (the service's default: the last 24 h).

        ``start`` and ``end`` are timezone-aware and at most 24 h apart.
        """
        check_list_query(
            start=start, end=end, status=status, model=model, page=page, page_size=page_size
        )
        return await self._life.service.list_tasks(
            start=start, end=end, status=status, model=model, page=page, page_size=page_size
        )

    async def download(
        self,
        video: VideoResult | str,
        dest: str | os.PathLike[str],
        *,
        max_bytes: int = MAX_VIDEO_BYTES,
        overwrite: bool = False,
    ) -> Path:
        """Save a result video; returns the path of the file written.

        ``dest`` names a folder when it is an existing directory, or a string
        ending in a path separator (``"videos/"``): the folder is created if
        missing, and the video saved in it as ``<task_id>.mp4`` (which needs a
        :class:`VideoResult`, not a bare URL). Any other ``dest`` is the file's
        own path; its parent folders are created if missing.

        A video is never silently written over another: if the file exists,
        :class:`DownloadError` is raised before anything is fetched, and a
        file that appears there while the video downloads is left alone too.
        ``overwrite=True`` replaces it instead.

        The file appears only once complete and of the announced length;
        transient failures are retried. Result URLs expire 24 h after the
        task ended: download soon after :meth:`Task.wait` returns.
        """
        return await download_video(
            self._life, video, dest, max_bytes=max_bytes, overwrite=overwrite
        )

"""EmojiClient: the session's lifetime and the service's verbs."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import functools
import logging
import os
import re
import time
from collections.abc import AsyncGenerator, Callable, Collection, Iterable, Sequence
from contextlib import aclosing
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from ._api import DETECT_MODEL, GENERATE_MODEL, ServiceAPI
from ._attempts import label_for, owner_of
from ._batch import Batch
from ._batch_options import BatchOptions, default_concurrency
from ._budget import Budget
from ._config import resolve_api_key, resolve_base_url
from ._errors import (
    ClientStateError,
    ConfigurationError,
    DownloadError,
    EmojiError,
    ResponseLostError,
    SharedPacingError,
    SubmissionUncertainError,
    ValidationError,
    WaitTimeoutError,
)
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
from ._pacing import InProcess, Pacing, PacingBackend
from ._paid_request import PaidRequest
from ._policy import PollPolicy, RetryPolicy
from ._poll_placement import placement_for
from ._reconcile import Submitter
from ._reporting import tell
from ._shared_config import RedisPacing
from ._task import Task, check_timeout
from ._templates import Template
from ._transport import MAX_VIDEO_BYTES, Session, Timeouts, Transport, open_session
from ._uploads import ImageSource
from ._urls import origin
from ._validation import ImageFile, check_boxes, check_driven_id, is_finite_number
from ._values import Secret
from .events import EventHandler

__all__ = ["EmojiClient"]

log = logging.getLogger("emoji_async")

_T = TypeVar("_T")


class _Lifecycle(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class EmojiClient:
    """A client of the DashScope Emoji service, for use in ``async with``.

    ``api_key`` defaults to ``DASHSCOPE_API_KEY``; ``base_url`` to
    ``DASHSCOPE_BASE_URL``, then the Beijing host. Both are resolved when the
    client opens, so a missing key fails there, not as an HTTP 401 later.

    The client owns one pooled ``aiohttp.ClientSession`` for its lifetime, or
    borrows ``session`` and leaves it open. It cannot be reopened once closed.
    ``poll`` decides when tasks are polled, ``retry`` how transient failures
    of single requests are retried, ``timeouts`` how long one request may
    take, ``limits`` the account's rate limits the client keeps under
    (``None``: no pacing at all). ``extra_templates`` opts in to ``driven_id`` values the provider
    adds after this version.

    ``time_scale`` is for tests against a simulator whose clock runs faster
    (``SimulatorConfig(time_scale=0.01)``: a 60 s task in 0.6 s): pass the
    same factor and the client runs on that clock too, every duration of
    ``poll``, ``retry`` and ``limits`` (and of a batch's ``poll``) multiplied
    by it. The policies stay as given, in the service's seconds; per-call
    ``timeout=`` arguments and ``timeouts`` (the network's) are real seconds,
    and a call's retries stop on the faster clock but its hard deadline is
    never under 10 real seconds (or the retry deadline, if shorter): the
    network does not run faster.
    :func:`emoji_async.testing.client_for` sets it from the simulator.

    ``pacing`` is where those limits are kept: in this process (``None``, the
    default), or shared by every process of the account through Redis
    (:class:`RedisPacing`): request pacing, the one-at-a-time submit lock and
    the count of tasks in flight. Redis is connected when the client opens;
    if it cannot be, :class:`SharedPacingError` is raised there.

    A paid task whose caller was cancelled after its submit left is recorded
    (:attr:`abandoned`) and goes on; ``cancel_abandoned=True`` cancels it
    while PENDING instead. ``on_event`` is told of such tasks, and of tasks no
    job holds that the client found (:attr:`orphans`), as
    :class:`~emoji_async.events.Abandoned` and :class:`~emoji_async.events.Orphaned`.
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
        time_scale: float = 1.0,
    ) -> None:
        if pacing is not None and not isinstance(pacing, RedisPacing):
            raise ValidationError("pacing", "None (this process) or a RedisPacing", pacing)
        if not is_finite_number(time_scale) or not time_scale > 0:
            raise ValidationError(
                "time_scale", "a factor > 0 (0.01: a clock 100 times as fast)", time_scale
            )
        # Wrapped at once: the key must not sit in a plain attribute a debugger
        # or a careless repr could print.
        self._api_key = None if api_key is None else Secret(api_key)
        self._base_url_arg = base_url
        self._workspace = workspace
        self._borrowed = session
        self.poll = poll or PollPolicy()
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.limits = limits
        self.time_scale = time_scale
        # What the client runs on: the policies on its clock.
        self._poll = _on_clock(self.poll, time_scale)
        self._retry = _on_clock(self.retry, time_scale)
        self._limits = None if limits is None else _on_clock(limits, time_scale)
        self.pacing = pacing
        self.extra_templates = frozenset(extra_templates)
        self._allow_insecure_http = allow_insecure_http
        self._cancel_abandoned = cancel_abandoned
        self._on_event = on_event
        self._state = _Lifecycle.UNOPENED
        self._session: Session | None = None
        self._api: ServiceAPI | None = None
        self._submits: Submitter | None = None
        self.base_url: str | None = None

    def __repr__(self) -> str:
        where = self.base_url or origin(self._base_url_arg) or "(resolved on open)"
        return f"<EmojiClient {self._state.value} {where}>"

    # --- lifetime ------------------------------------------------------------

    async def open(self) -> None:
        """Resolve the key and URL and open the HTTP session (``async with`` does this)."""
        if self._state is _Lifecycle.CLOSED:
            raise ClientStateError("this EmojiClient is closed and cannot be reopened")
        if self._state is _Lifecycle.OPEN:
            return
        key = resolve_api_key(self._api_key)
        self.base_url = resolve_base_url(
            self._base_url_arg, allow_insecure_http=self._allow_insecure_http
        )
        backend = await self._open_pacing()
        session = self._borrowed or open_session()
        self._session = session
        transport = Transport(
            session,
            base_url=self.base_url,
            api_key=key,
            workspace=self._workspace,
            timeouts=self.timeouts,
        )
        self._api = ServiceAPI(
            transport,
            self._retry,
            Pacing(self._limits, backend),
            least_call_time=_least_call_time(self.retry, self.time_scale),
        )
        self._submits = Submitter(self._api, cancel_abandoned=self._cancel_abandoned)
        if self._on_event is not None:
            self._submits.subscribe(functools.partial(tell, self._on_event))
        self._state = _Lifecycle.OPEN

    async def _open_pacing(self) -> PacingBackend:
        """Where the limits are kept: this process, or Redis (connected and checked now)."""
        config = self.pacing
        if config is None:
            return InProcess(self._limits)
        try:
            from ._shared import RedisBackend
        except ImportError as exc:
            raise ConfigurationError(
                "shared pacing needs the redis extra: pip install 'emoji-async[redis]'"
            ) from exc
        backend = RedisBackend(config, self._limits)
        try:
            await backend.open()
        except SharedPacingError as exc:
            if not config.fallback:
                raise
            log.warning("%s; pacing in this process alone instead (fallback=True)", exc)
            return InProcess(self._limits)
        return backend

    async def aclose(self) -> None:
        """Close the session if the client created it. Safe to call twice.

        A submit whose caller was cancelled is first let to settle (bounded
        by the retry deadline), so that its task is recorded (:attr:`abandoned`).
        Shared pacing then lets go of the leases it holds and disconnects.
        """
        if self._submits is not None:
            await self._submits.aclose(self._retry.deadline)
        if self._api is not None:
            await self._api.pacing.backend.aclose()
        if self._state is _Lifecycle.OPEN and self._session is not self._borrowed:
            assert self._session is not None
            await self._session.close()
        self._session = None
        self._api = None
        # The submitter stays: its records (abandoned tasks, orphans) outlive the client.
        self._state = _Lifecycle.CLOSED

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

    @property
    def _service(self) -> ServiceAPI:
        if self._api is None:
            if self._state is _Lifecycle.CLOSED:
                raise ClientStateError("this EmojiClient is closed")
            raise ClientStateError("use EmojiClient inside 'async with', or await open() first")
        return self._api

    @property
    def _submitter(self) -> Submitter:
        self._service  # noqa: B018  (raises the lifecycle's error when not open)
        assert self._submits is not None
        return self._submits

    # --- the service ---------------------------------------------------------

    async def detect(self, image_url: ImageSource) -> FaceDetection:
        """Find the face in a portrait: the boxes a submit needs.

        Raises :class:`FaceRejectedError` when the portrait does not qualify
        (the detection is billed all the same). ``image_url`` may also be a
        local file (a path or a ``file://`` URI): it is checked, then uploaded.
        """
        url = await self._service.uploads.url_for(image_url, DETECT_MODEL)
        return await self._service.detect(url)

    async def submit(
        self,
        image_url: ImageSource,
        driven_id: str | Template,
        *,
        face_bbox: BBox | Sequence[int],
        ext_bbox: BBox | Sequence[int],
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
        """
        template = check_driven_id(driven_id, extra=self.extra_templates)
        face, ext = check_boxes(face_bbox, ext_bbox)
        api = self._service
        url = await api.uploads.url_for(image_url, GENERATE_MODEL)
        given = os.fspath(image_url) if isinstance(image_url, os.PathLike) else str(image_url)
        request = PaidRequest(
            image_url=url,
            driven_id=template,
            face=face,
            ext=ext,
            owner=owner_of(
                {
                    "image": given,
                    "driven_id": template,
                    "face_bbox": face.as_list(),
                    "ext_bbox": ext.as_list(),
                }
            ),
            label=label_for(given),
        )
        settled = await self._submitter.submit(request)
        snapshot = settled.snapshot
        return Task(
            api,
            snapshot.task_id,
            poll=self._poll,
            snapshot=snapshot,
            submitted_at=time.time(),
            template=template,
        )

    def task(self, task_id: str) -> Task:
        """A handle on a task submitted earlier (by this process or another)."""
        return Task(self._service, check_task_id(task_id), poll=self._poll)

    async def generate(
        self,
        image_url: ImageSource,
        driven_id: str | Template,
        *,
        face: FaceDetection | None = None,
        timeout: float | None = None,
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
        """
        check_timeout(timeout)
        if face is not None:
            if not isinstance(face, FaceDetection):
                raise ValidationError("face", "a FaceDetection from detect(), or None", face)
            check_boxes(face.face_bbox, face.ext_bbox, prefix="face.")
        loop = asyncio.get_running_loop()
        ends = None if timeout is None else loop.time() + timeout
        scope = asyncio.timeout_at(ends)
        submitting = False
        url: str | ImageFile = ""
        try:
            async with scope:
                url = await self._service.uploads.prepare(image_url)
                template = check_driven_id(driven_id, extra=self.extra_templates)
                if face is None:
                    face = await self.detect(url)
                submitting = True
                task = await self.submit(
                    url, template, face_bbox=face.face_bbox, ext_bbox=face.ext_bbox
                )
        except TimeoutError:
            if not scope.expired():
                raise
            raise self._late(timeout, url if submitting else None, driven_id, face) from None
        if ends is not None:
            timeout = ends - loop.time()
            if timeout <= 0:
                raise WaitTimeoutError(task_id=task.task_id, snapshot=task.last_snapshot, timeout=0)
        try:
            return await task.wait(timeout=timeout)
        except asyncio.CancelledError:
            # The caller went away (a web request timed out, say): the paid task goes
            # on, and is recorded so that it is never untracked.
            self._submitter.abandon(task.task_id, label_for(url))
            raise

    @staticmethod
    def _late(
        timeout: float | None,
        submitted: str | ImageFile | None,
        driven_id: str | Template,
        face: FaceDetection | None,
    ) -> EmojiError:
        """The error of a :meth:`generate` whose ``timeout`` passed before its task was known."""
        if submitted is None or face is None:
            return ResponseLostError(
                f"generate: no face detection within its timeout of {timeout:g} s"
            )
        return SubmissionUncertainError(
            sent_at=dt.datetime.now(dt.UTC),
            inputs={
                "image_url": label_for(submitted),
                "driven_id": str(driven_id),
                "face_bbox": face.face_bbox.as_list(),
                "ext_bbox": face.ext_bbox.as_list(),
            },
            reason=f"generate's timeout of {timeout:g} s passed before the submit was settled;"
            " it goes on settling, and a task it made is recorded in EmojiClient.abandoned",
        )

    @property
    def abandoned(self) -> tuple[AbandonedTask, ...]:
        """Paid tasks whose caller was cancelled after the submit left, oldest first.

        Each was also logged (a warning) and told to ``on_event``
        (:class:`~emoji_async.events.Abandoned`). With ``cancel_abandoned=True``
        the client cancels them while PENDING; otherwise they go on and bill if
        they succeed, and :meth:`cancel_abandoned_tasks` cancels those still PENDING.
        """
        return self._records().abandoned

    @property
    def orphans(self) -> tuple[OrphanTask, ...]:
        """Tasks no job holds that the client found in the task list, oldest first.

        A submit whose answer was lost may make its task late, after it was
        sent again, or a task may appear that it cannot be proved to have made:
        such a task is cancelled while PENDING (``cancelled``), and one already
        running or done is listed here with its id (it bills if it succeeds).
        """
        return self._records().orphans

    def _records(self) -> Submitter:
        submits = self._submits
        if submits is None:
            raise ClientStateError("use EmojiClient inside 'async with', or await open() first")
        return submits

    async def cancel_abandoned_tasks(self) -> list[str]:
        """Cancel every abandoned task still PENDING (free); the ids cancelled."""
        return await self._submitter.cancel_abandoned_tasks()

    def _batch(self, options: BatchOptions) -> Batch:
        slots = self.limits.running_tasks if self.limits is not None else 1
        policy = _on_clock(options.poll or self.poll.for_batches(), self.time_scale)
        placement = placement_for(policy)
        default = placement.concurrency(
            default_concurrency(slots), slots, self._service.pacing.durations
        )
        submitter = self._submitter
        cap = self._service.pacing.backend.batch_cap(default)
        if cap is not None:
            submitter = submitter.gated(cap)
        return Batch(
            self._service,
            submitter=submitter,
            poll=policy,
            extra_templates=self.extra_templates,
            concurrency=options.concurrency or default,
            options=options,
        )

    async def generate_many(
        self,
        jobs: Iterable[EmojiJob],
        *,
        concurrency: int | None = None,
        journal: str | os.PathLike[str] | None = None,
        download_to: str | os.PathLike[str] | None = None,
        on_event: EventHandler | None = None,
        cancel_pending: bool = False,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        budget: Budget | None = None,
    ) -> Outcomes:
        """Generate a video for every job; one :class:`JobOutcome` per job, in input order.

        Up to ``concurrency`` jobs are in flight at once (default: enough to
        keep the account's running slot busy, see the docs on pacing). A job's
        failure is its outcome and never stops another job. ``journal`` (a
        file path) makes the run resumable: rerun the same jobs with it after
        a crash and nothing is paid twice. ``download_to`` saves each video as
        ``<dir>/<key>.mp4`` as soon as its task succeeds. ``on_event`` receives
        each :mod:`event <emoji_async.events>`. ``timeout`` bounds each job's
        wait for its task. ``poll`` defaults to the client's policy made
        sparser for batches (:meth:`PollPolicy.for_batches`). Cancelling the
        call cancels every job at once; with ``cancel_pending`` the remote
        tasks still queued are cancelled too.

        The result's ``spent`` says what the batch was billed (with a journal,
        the earlier runs included). ``budget`` caps it: a job starts only if
        the most it can cost still fits, otherwise it and the jobs after it
        are skipped (``JobOutcome.skipped``), never failed.

        Every job is checked before anything is sent: a bad one raises
        :class:`ValidationError` naming ``jobs[i]`` and its field.
        """
        job_list = list(jobs)
        outcomes: list[JobOutcome | None] = [None] * len(job_list)
        options = BatchOptions(
            concurrency=concurrency,
            journal=journal,
            download_to=download_to,
            on_event=on_event,
            cancel_pending=cancel_pending,
            timeout=timeout,
            poll=poll,
            budget=budget,
        )
        batch = self._batch(options)
        async with aclosing(batch.run(job_list)) as stream:
            async for index, outcome in stream:
                outcomes[index] = outcome
        done = (outcome for outcome in outcomes if outcome is not None)
        return Outcomes(done, spent=batch.ledger.spent, orphans=batch.orphans)

    async def as_completed(
        self,
        jobs: Iterable[EmojiJob],
        *,
        concurrency: int | None = None,
        journal: str | os.PathLike[str] | None = None,
        download_to: str | os.PathLike[str] | None = None,
        on_event: EventHandler | None = None,
        cancel_pending: bool = False,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        budget: Budget | None = None,
    ) -> AsyncGenerator[JobOutcome, None]:
        """Like :meth:`generate_many`, yielding each outcome as its job ends.

        Leaving the loop early stops the remaining jobs once the generator is
        closed: wrap it in ``contextlib.aclosing`` to make that immediate.
        The running totals come with each :class:`~emoji_async.events.Billed` event.
        """
        options = BatchOptions(
            concurrency=concurrency,
            journal=journal,
            download_to=download_to,
            on_event=on_event,
            cancel_pending=cancel_pending,
            timeout=timeout,
            poll=poll,
            budget=budget,
        )
        batch = self._batch(options)
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
        for name, moment in (("start", start), ("end", end)):
            if moment is not None and moment.tzinfo is None:
                raise ValidationError(name, "a timezone-aware datetime", moment)
        if (
            start is not None
            and end is not None
            and not (dt.timedelta(0) <= end - start <= dt.timedelta(hours=24))
        ):
            raise ValidationError("end", "a time 0 to 24 h after start", end)
        if status is not None and (
            not isinstance(status, TaskStatus) or status is TaskStatus.OTHER
        ):
            raise ValidationError("status", "a TaskStatus other than OTHER", status)
        if model is not None and (not isinstance(model, str) or not model):
            raise ValidationError("model", "a model name such as 'emoji-v1'", model)
        if type(page) is not int or not 1 <= page <= _MAX_INT32:
            raise ValidationError("page", f"an int from 1 to {_MAX_INT32}", page)
        if type(page_size) is not int or not 1 <= page_size <= 100:
            raise ValidationError("page_size", "an int from 1 to 100", page_size)
        return await self._service.list_tasks(
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
        url = video.video_url if isinstance(video, VideoResult) else video
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValidationError("video", "a VideoResult or an http(s) video URL", url)
        if type(overwrite) is not bool:
            raise ValidationError("overwrite", "True or False", overwrite)
        if type(max_bytes) is not int or not 1 <= max_bytes <= _MAX_INT64:
            raise ValidationError("max_bytes", f"an int of bytes from 1 to {_MAX_INT64}", max_bytes)
        path = Path(dest)
        if _names_a_folder(dest) or await _on_disk(path, path.is_dir):
            if not isinstance(video, VideoResult):
                raise ValidationError("dest", "a file path when video is a bare URL", dest)
            # The id comes from the network: never let it name a path outside dest.
            safe = re.sub(r"[^A-Za-z0-9_-]", "_", video.task_id)[:128] or "video"
            path = path / f"{safe}.mp4"
        await _on_disk(path, lambda: path.parent.mkdir(parents=True, exist_ok=True))
        await self._service.download(url, path, max_bytes=max_bytes, replace=overwrite)
        return path


#: The largest page number and download cap taken: any real one is far below,
#: and a number past them (10**5000) could not even be written in a request or a message.
_MAX_INT32 = 2**31 - 1
_MAX_INT64 = 2**63 - 1

_Policy = TypeVar("_Policy", PollPolicy, RetryPolicy, RateLimits)


def _on_clock(policy: _Policy, time_scale: float) -> _Policy:
    """``policy`` on a clock ``1 / time_scale`` times as fast as the service's."""
    return policy if time_scale == 1 else policy.scaled(time_scale)


#: On a compressed clock, the least time a call is given before its hard deadline, in
#: real seconds: requests and answers take as long as on the real one.
LEAST_CALL_TIME = 10.0


def _least_call_time(retry: RetryPolicy, time_scale: float) -> float:
    """The shortest hard deadline of a call: none on the service's own clock.

    On a faster clock a call's retries stop on that clock, but it is never cut
    off sooner than :data:`LEAST_CALL_TIME` real seconds (or its own deadline,
    if that is shorter): a detection the simulator decodes an image for can
    take longer than 120 s x 0.002.
    """
    return 0.0 if time_scale >= 1 else min(retry.deadline, LEAST_CALL_TIME)


def _names_a_folder(dest: str | os.PathLike[str]) -> bool:
    """Whether ``dest`` is spelled as a folder: a string ending in a path separator.

    ``pathlib`` drops a trailing separator, so only the string says so.
    """
    text = os.fspath(dest)
    return isinstance(text, str) and text.endswith((os.sep, "/"))


async def _on_disk(path: Path, step: Callable[[], _T]) -> _T:
    """A file-system step for a download, off the loop; its failure a :class:`DownloadError`."""
    try:
        return await asyncio.to_thread(step)
    except (OSError, ValueError) as exc:  # a name too long, a file where a directory goes
        raise DownloadError(f"cannot save to {os.fspath(path)!r}: {exc}", transient=False) from exc

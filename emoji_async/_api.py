"""The service's endpoints: paths, bodies, and the rule each call is retried by.

Which failures each endpoint may retry, and the deadline that ends a call, are
:mod:`~emoji_async._calls`'s (its docstring says why each rule is safe for the
bill); :class:`ServiceAPI` sends each endpoint's request under its rule, in the
turn the account's pacing gives it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from ._calls import (
    DETECT_RESENDS,
    Exchange,
    Paced,
    detect_may_retry,
    download_may_retry,
    is_transient,
    on_retry,
    on_upload_retry,
    submit_may_retry,
    within,
)
from ._errors import (
    APIError,
    EmojiError,
    InvalidRequestError,
    RateLimitError,
    ResponseLostError,
    SubmissionUncertainError,
    TaskNotCancelableError,
    UnexpectedResponseError,
    ValidationError,
    proves_nothing_created,
)
from ._models import FaceDetection, TaskPage, TaskSnapshot, TaskStatus
from ._pacer import FREE
from ._pacing import Pacing
from ._paid_request import PaidRequest
from ._policy import RetryPolicy, retrying
from ._reporting import report
from ._transport import Transport
from ._uploads import TemporaryUploads, UploadPolicy
from ._urls import path_segment
from ._values import Endpoint
from ._wire import (
    format_list_time,
    parse_detection,
    parse_submit,
    parse_task,
    parse_task_page,
)
from .events import Throttled

# ``is_transient`` is named here too for the batch, which asks it of a job's failure.
__all__ = ["DETECT_MODEL", "GENERATE_MODEL", "ServiceAPI", "is_transient"]

DETECT_MODEL = "emoji-detect-v1"
GENERATE_MODEL = "emoji-v1"

_DETECT_PATH = "/services/aigc/image2video/face-detect"
_SUBMIT_PATH = "/services/aigc/image2video/video-synthesis"


def _oss_headers(image_url: str) -> dict[str, str]:
    if image_url.startswith("oss://"):
        return {"X-DashScope-OssResourceResolve": "enable"}
    return {}


def _task_path(task_id: str) -> str:
    if not isinstance(task_id, str) or not task_id.strip() or len(task_id) > 256:
        raise ValidationError("task_id", "a non-empty string of at most 256 characters", task_id)
    return "/tasks/" + path_segment(task_id)


_UNSET: Any = object()

_R = TypeVar("_R")


class ServiceAPI:
    """The endpoints of one account, with the pacing and retry rules of each."""

    def __init__(
        self,
        transport: Transport,
        retry: RetryPolicy,
        pacing: Pacing,
        *,
        least_call_time: float = 0.0,
    ) -> None:
        self.transport = transport
        self.retry = retry
        self.pacing = pacing
        #: The shortest hard deadline a call gets, in real seconds: on a compressed
        #: clock its retries stop on that clock, but the network does not compress.
        self.least_call_time = least_call_time
        # One retrying wrapper per rule, built once: building backoff's decorator
        # for every request was the largest cost the client added to a request.
        self._retriers: dict[tuple[Callable[[Exception], bool], float | None], Paced] = {}
        #: Local files turned into ``oss://`` URLs, one upload per (content, model).
        self.uploads = TemporaryUploads(self)
        # Its own retrier, so that the form POST's retries are reported as "upload".
        self._upload_retrier: Paced = retrying(
            retry, retry_on=is_transient, deadline=retry.deadline, on_retry=on_upload_retry
        )(self._paced)

    async def _call(
        self,
        endpoint: Endpoint | None,
        attempt: Callable[[], Awaitable[_R]],
        retry_on: Callable[[Exception], bool],
        deadline: float | None = _UNSET,
    ) -> _R:
        """Run ``attempt`` in its turn until it succeeds, ``retry_on`` says to stop, or
        ``deadline`` (seconds; the retry policy's by default, ``None``: the caller's) passes."""
        limit = self.retry.deadline if deadline is _UNSET else deadline
        retrier = self._retriers.get((retry_on, limit))
        if retrier is None:
            retrier = retrying(self.retry, retry_on=retry_on, deadline=limit, on_retry=on_retry)(
                self._paced
            )
            self._retriers[retry_on, limit] = retrier
        what = "download" if endpoint is None else endpoint.value
        bound = None if limit is None else max(limit, self.least_call_time)
        result: _R = await within(bound, retrier, endpoint, attempt, Exchange(what))
        return result

    async def _paced(
        self, endpoint: Endpoint | None, attempt: Callable[[], Awaitable[Any]], call: Exchange
    ) -> Any:
        """One attempt, in its turn; a 429 holds back every request of its group."""
        turn = FREE if endpoint is None else await self.pacing.acquire(endpoint)

        def went_out() -> None:
            call.went_out()
            turn.sent()  # the group's next request is spaced from now

        call.out = False
        try:
            # Out once its first bytes are, and still so if the deadline stops it then.
            with self.transport.noting_sent(went_out):
                result = await attempt()
        except EmojiError as exc:
            call.out = False
            call.last = exc
            if isinstance(exc, RateLimitError) and endpoint is not None:
                held = self.pacing.hold(endpoint, exc.retry_after)
                wait = held or exc.retry_after or 0.0
                report(lambda key: Throttled(key=key, endpoint=endpoint.value, wait=wait))
            raise
        finally:
            turn.end()  # a no-op once sent; else the group's next request need not wait
        call.out = False
        return result

    async def detect(
        self,
        image_url: str,
        *,
        before_send: Callable[[], Awaitable[None]] | None = None,
        on_billed: Callable[[int], None] | None = None,
    ) -> FaceDetection:
        """Run face detection; raise :class:`FaceRejectedError` if the image is rejected.

        ``before_send`` is awaited before each attempt leaves, once its turn has
        come: an error it raises stops the detection unsent. ``on_billed(1)``
        is called for each attempt that may have been billed without giving a
        detection (its answer lost, or unreadable); the detection returned (or
        rejected) says its own bill, ``image_count``.
        """
        body = {
            "model": DETECT_MODEL,
            "input": {"image_url": image_url},
            "parameters": {"ratio": "1:1"},
        }
        lost = 0

        def billed() -> None:
            if on_billed is not None:
                on_billed(1)

        async def attempt() -> FaceDetection:
            nonlocal lost
            if before_send is not None:
                await before_send()
            try:
                resp = await self.transport.send(
                    "POST",
                    _DETECT_PATH,
                    endpoint=Endpoint.DETECT,
                    json_body=body,
                    headers=_oss_headers(image_url),
                )
                return parse_detection(resp.body, http_status=resp.status)
            except ResponseLostError as exc:
                lost += 1
                exc.may_resend = lost <= DETECT_RESENDS
                billed()
                raise
            except UnexpectedResponseError:
                billed()  # an answer came (a 200 unread, a redirect...): it may be billed
                raise
            except asyncio.CancelledError:
                billed()  # stopped while out (its deadline, or the caller): it may be billed
                raise

        return await self._call(Endpoint.DETECT, attempt, detect_may_retry)

    async def submit(
        self,
        request: PaidRequest,
        *,
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> TaskSnapshot:
        """Create ``request``'s paid task; never resubmit one that may already exist.

        ``before_send`` is awaited once, after the request's turn has come and
        right before it first leaves: where a journal records its intent, so a
        crash while waiting for the turn leaves nothing uncertain.
        """
        inputs = request.inputs()
        body = {"model": GENERATE_MODEL, "input": inputs}
        headers = {"X-DashScope-Async": "enable", **_oss_headers(request.image_url)}
        sent_at = dt.datetime.now(dt.UTC)
        announce = before_send

        async def attempt() -> TaskSnapshot:
            nonlocal sent_at, announce
            if announce is not None:
                await announce()
                announce = None
            sent_at = dt.datetime.now(dt.UTC)
            resp = await self.transport.send(
                "POST", _SUBMIT_PATH, endpoint=Endpoint.SUBMIT, json_body=body, headers=headers
            )
            return parse_submit(resp.body, http_status=resp.status)

        try:
            snapshot = await self._call(Endpoint.SUBMIT, attempt, submit_may_retry)
        except EmojiError as exc:
            if proves_nothing_created(exc):
                raise  # it never left, or a documented refusal
            # A 5xx, a lost or damaged answer, a redirect, a 408: the task may exist.
            seen = exc if isinstance(exc, UnexpectedResponseError) else None
            raise SubmissionUncertainError(
                sent_at=sent_at,
                inputs=inputs,
                reason=f"{type(exc).__name__}: {exc}",
                task_id_seen=None if seen is None else seen.task_id_seen,
                task_id_complete=False if seen is None else seen.task_id_complete,
            ) from exc
        return snapshot

    async def get_task(self, task_id: str, *, deadline: float | None = _UNSET) -> TaskSnapshot:
        """One snapshot of a task (retried after transient failures)."""
        path = _task_path(task_id)

        async def attempt() -> TaskSnapshot:
            resp = await self.transport.send("GET", path, endpoint=Endpoint.QUERY)
            return parse_task(resp.body, http_status=resp.status)

        return await self._call(Endpoint.QUERY, attempt, is_transient, deadline)

    async def cancel(self, task_id: str) -> None:
        """Cancel a PENDING task; :class:`TaskNotCancelableError` if it is past that."""
        path = _task_path(task_id) + "/cancel"

        async def attempt() -> None:
            await self.transport.send("POST", path, endpoint=Endpoint.CANCEL)

        try:
            await self._call(Endpoint.CANCEL, attempt, is_transient)
        except InvalidRequestError as exc:
            if exc.code != "UnsupportedOperation":
                raise
            raise TaskNotCancelableError(
                exc.message,
                http_status=exc.http_status,
                code=exc.code,
                request_id=exc.request_id,
                task_id=task_id,
            ) from exc

    async def download(self, url: str, dest: Path, *, max_bytes: int, replace: bool) -> int:
        """Fetch a result video to ``dest``, retried while the failure may pass.

        An existing ``dest`` is written over only if ``replace``.
        """

        async def attempt() -> int:
            return await self.transport.download(url, dest, max_bytes=max_bytes, replace=replace)

        return await self._call(None, attempt, download_may_retry)

    async def upload_policy(self, model: str) -> UploadPolicy:
        """A signed policy for one temporary file bound to ``model``, paced, retried as a read."""
        params = {"action": "getPolicy", "model": model}

        async def attempt() -> UploadPolicy:
            resp = await self.transport.send(
                "GET", "/uploads", endpoint=Endpoint.UPLOAD_POLICY, params=params
            )
            return UploadPolicy.from_wire(
                resp.body, http_status=resp.status, request_id=resp.request_id
            )

        return await self._call(Endpoint.UPLOAD_POLICY, attempt, is_transient)

    async def upload_file(
        self, policy: UploadPolicy, key: str, data: bytes, content_type: str
    ) -> None:
        """Store ``data`` under ``key`` on the policy's upload host.

        Retried after transient failures under the same key: a 409
        ``FileAlreadyExists`` on a retry means an earlier attempt stored it.
        """
        fields = policy.form(key)
        name = key.rsplit("/", 1)[-1]
        attempts = 0

        async def attempt() -> None:
            nonlocal attempts
            attempts += 1
            try:
                await self.transport.upload(
                    policy.upload_host, fields, file_name=name, data=data, content_type=content_type
                )
            except APIError as exc:
                if not (attempts > 1 and exc.code == "FileAlreadyExists"):
                    raise

        bound = max(self.retry.deadline, self.least_call_time)
        await within(bound, self._upload_retrier, None, attempt, Exchange("upload"))

    async def list_tasks(
        self,
        *,
        page: int = 1,
        page_size: int = 10,
        model: str | None = None,
        status: TaskStatus | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        whole: bool = False,
    ) -> TaskPage:
        """One page of the task list, filtered by what is given (``None``: not filtered).

        ``start`` and ``end`` are timezone-aware (sent in the service's zone,
        Beijing time). The arguments are the caller's to check:
        :meth:`EmojiClient.list_tasks` does, with the errors a user is shown.
        A row that cannot be read is left out and counted on the page; with
        ``whole``, it makes the page unreadable, asked for again as any answer
        that breaks the protocol (settling reads the list so: a row left out
        could be the task it looks for).
        """
        params: dict[str, str] = {}
        if start is not None:
            params["start_time"] = format_list_time(start)
        if end is not None:
            params["end_time"] = format_list_time(end)
        if status is not None:
            params["status"] = status.value
        if model is not None:
            params["model_name"] = model
        params["page_no"] = str(page)
        params["page_size"] = str(page_size)

        async def attempt() -> TaskPage:
            resp = await self.transport.send("GET", "/tasks", endpoint=Endpoint.LIST, params=params)
            return parse_task_page(resp.body, http_status=resp.status, whole=whole)

        return await self._call(Endpoint.LIST, attempt, is_transient)

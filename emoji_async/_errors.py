"""Every error emoji_async raises, in one tree.

::

    EmojiError
    ├── ConfigurationError          no API key, a malformed base URL, plain http:// to a remote host
    ├── ClientStateError            the client is not open, or already closed (also RuntimeError)
    ├── ValidationError             an argument is out of range; nothing was sent (also ValueError)
    ├── APIError                    the service answered with an error status
    │   ├── InvalidRequestError     400: bad body, unknown template, boxes, moderation, URL
    │   │   └── TaskNotCancelableError   400 UnsupportedOperation: only PENDING tasks cancel
    │   ├── AccountError            the account itself is refused: every later request would be too
    │   │   ├── AuthenticationError     401: missing or invalid API key
    │   │   ├── PermissionDeniedError   403: no access to the model, workspace, or plan
    │   │   ├── BillingError            overdue, not purchased, free quota used up (400, 429)
    │   │   └── ModelOrWorkspaceNotFoundError  404: no such model or workspace (also NotFoundError)
    │   ├── NotFoundError           404: what the request names does not exist (a task, a path)
    │   ├── RateLimitError          429: throttled for the moment; retry_after when the service said
    │   └── ServerError             5xx: the service failed
    ├── TransportError              no HTTP answer arrived
    │   ├── ConnectError            the connection was never made: the request was not sent
    │   └── ResponseLostError       sent, but no answer came back: it may have been processed
    ├── UnexpectedResponseError     the answer was not what the protocol promises (or a 3xx, 408...)
    ├── DownloadError               a result video could not be fetched or saved
    ├── SharedPacingError           the shared pacing store (Redis) cannot be used
    ├── JournalError                the batch's journal refused its file, or a step out of order
    ├── NotificationRefusedError    a task-finished notification was refused: forged, stale...
    ├── FaceRejectedError           the detector rejected the portrait (billed, HTTP 200)
    ├── SubmissionUncertainError    a paid submit may have created a task we never heard of
    └── TaskError                   a task ended without a video, or could not be waited for
        ├── TaskFailedError         FAILED, with the provider's code and message
        ├── TaskCanceledError       CANCELED
        ├── TaskNotFoundError       UNKNOWN: the id never existed or is older than 24 h
        └── WaitTimeoutError        the deadline passed first (also TimeoutError)

Every error carries its context as attributes (HTTP status, provider ``code``, ``message``,
``request_id``; ``task_id`` and the last snapshot for task errors). None of them ever holds
the API key: they are built from the answer, never from the request headers.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._quoting import shown

if TYPE_CHECKING:
    from pathlib import Path

    from ._models import TaskSnapshot

__all__ = [
    "APIError",
    "AccountError",
    "AuthenticationError",
    "BillingError",
    "ClientStateError",
    "ConfigurationError",
    "ConnectError",
    "DownloadError",
    "EmojiError",
    "FaceRejectedError",
    "InvalidRequestError",
    "JournalError",
    "ModelOrWorkspaceNotFoundError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseLostError",
    "ServerError",
    "SharedPacingError",
    "SubmissionUncertainError",
    "TaskCanceledError",
    "TaskError",
    "TaskFailedError",
    "TaskNotCancelableError",
    "TaskNotFoundError",
    "TransportError",
    "UnexpectedResponseError",
    "ValidationError",
    "WaitTimeoutError",
    "proves_nothing_created",
]


class EmojiError(Exception):
    """The base of every error this library raises."""


class ConfigurationError(EmojiError):
    """The client cannot be set up as asked: no API key, a malformed base URL."""


class SharedPacingError(EmojiError):
    """The shared pacing store (Redis) could not be reached, or did not answer as expected."""


class JournalError(EmojiError):
    """A batch's journal refused its file (not a journal, another version, in use) or a step."""

    jobs_file: Path | None = None  #: The jobs file it belongs to, when it refused another.

    def __init__(self, message: str, *, path: Path, key: str | None = None) -> None:
        super().__init__(f"journal {os.fspath(path)!r}: {message}")
        #: The journal's file.
        self.path = path
        #: The job concerned, when one is.
        self.key = key


class ClientStateError(EmojiError, RuntimeError):
    """The client is used outside ``async with``, or after it was closed."""


class ValidationError(EmojiError, ValueError):
    """An argument is out of range; raised before anything is sent."""

    def __init__(self, field: str, allowed: str, value: object) -> None:
        super().__init__(f"{field}: expected {allowed}, got {shown(value)}")
        self.field = field
        self.allowed = allowed
        self.value = value


class APIError(EmojiError):
    """The service answered with an error status.

    ``retry_after`` is the wait in seconds a ``Retry-After`` header asked for
    (on a 429 or a 5xx), ``None`` when the service did not say.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        code: str | None,
        request_id: str | None,
        retry_after: float | None = None,
    ) -> None:
        head = f"HTTP {http_status}" + (f" {code}" if code else "")
        tail = f" (request_id={request_id})" if request_id else ""
        super().__init__(f"{head}: {message}{tail}")
        self.http_status = http_status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after


class InvalidRequestError(APIError):
    """400: the service refused the request's content."""


class TaskNotCancelableError(InvalidRequestError):
    """400 UnsupportedOperation: the task is no longer PENDING, so it cannot be cancelled."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        code: str | None,
        request_id: str | None,
        task_id: str,
    ) -> None:
        super().__init__(message, http_status=http_status, code=code, request_id=request_id)
        self.task_id = task_id


class AccountError(APIError):
    """The account (its key, its access, its bill) is refused, not this one request.

    Every later request of the account would get the same answer until the
    account is fixed, so it is never retried, and a batch stops at the first
    one. It proves that a refused submit created nothing.
    """


class AuthenticationError(AccountError):
    """401: the API key is missing or invalid (or from a region without Emoji)."""


class PermissionDeniedError(AccountError):
    """403: the key may not use this model, workspace, or calling mode."""


class BillingError(AccountError):
    """The account's bill or plan: overdue, not purchased, or its free quota used up.

    ``Arrearage`` (400), ``PrepaidBillOverdue``, ``PostpaidBillOverdue``,
    ``CommodityNotPurchased``, ``Throttling.AllocationQuota`` and
    ``AllocationQuota.FreeTierOnly`` (429): not throttling, however the
    status reads; waiting does not end them.
    """


class NotFoundError(APIError):
    """404: what the request names (a task, a path) does not exist."""


class ModelOrWorkspaceNotFoundError(AccountError, NotFoundError):
    """404 ``ModelNotFound``, ``Model.NotExist``, ``WorkSpaceNotFound``: the account's set-up."""


class RateLimitError(APIError):
    """429: throttled for the moment; ``retry_after`` says for how long, when the service said.

    A 429 whose code speaks of the account's bill or quota is a
    :class:`BillingError` instead.
    """


class ServerError(APIError):
    """5xx: the service failed."""


class TransportError(EmojiError):
    """No HTTP answer arrived."""


class ConnectError(TransportError):
    """The connection was never made, so the request was provably not sent."""


class ResponseLostError(TransportError):
    """The request was sent but no answer came back; the service may have processed it.

    ``may_resend`` is false when the client will not send the request again
    because of it: a detection is resent once after a lost answer, never
    twice, since each one the service processed is billed.
    """

    may_resend: bool = True


class UnexpectedResponseError(EmojiError):
    """The answer was not what the protocol promises: bad JSON, missing fields, or a status
    it never lists (a redirect, 408, 409...).

    ``task_id_seen`` is the task id a damaged submit answer still carried, or as
    much of it as arrived (``task_id_complete`` says which), for settling it.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
        task_id_seen: str | None = None,
        task_id_complete: bool = False,
    ) -> None:
        tail = f" (request_id={request_id})" if request_id else ""
        super().__init__(message + tail)
        self.http_status = http_status
        self.request_id = request_id
        self.task_id_seen = task_id_seen
        self.task_id_complete = task_id_complete


class DownloadError(EmojiError):
    """A result video could not be fetched (refused, 403 once expired; cut short; too big) or saved.

    ``transient`` overrides what the status says about fetching again: a
    video over the size cap, or a URL no client could fetch, stays so.
    """

    def __init__(
        self, message: str, *, http_status: int | None = None, transient: bool | None = None
    ) -> None:
        super().__init__(message if http_status is None else f"HTTP {http_status}: {message}")
        self.http_status = http_status
        self._transient = transient

    @property
    def is_transient(self) -> bool:
        """Whether fetching again may work (a 5xx, a 429, or a body cut short)."""
        if self._transient is not None:
            return self._transient
        return self.http_status is None or self.http_status == 429 or self.http_status >= 500


class FaceRejectedError(EmojiError):
    """The detector rejected the portrait (``InvalidFile.*``). The detection is still billed."""

    def __init__(
        self, code: str, message: str, *, request_id: str | None, image_count: int
    ) -> None:
        super().__init__(f"{code}: {message} (request_id={request_id})")
        self.code = code
        self.message = message
        self.request_id = request_id
        self.image_count = image_count


class SubmissionUncertainError(EmojiError):
    """A paid submit was sent but no usable answer came back.

    The service may have created (and will bill) a task that this client never
    learned the id of. Nothing was resubmitted, since the provider has no
    idempotency key. ``sent_at`` and ``inputs`` say what was sent, so the task
    can be found in the task list; ``__cause__`` says what went wrong. The
    client searches the task list itself first (``RetryPolicy.reconcile_window``);
    this error means that search could not settle it.
    """

    def __init__(
        self,
        *,
        sent_at: dt.datetime,
        inputs: Mapping[str, Any],
        reason: str,
        candidates: Sequence[str] = (),
        task_id_seen: str | None = None,
        task_id_complete: bool = False,
    ) -> None:
        super().__init__(
            f"the submit sent at {sent_at.isoformat()} may have created a task: {reason}; "
            "it was not resubmitted (look for it in the task list)"
            + (f"; candidates: {', '.join(candidates)}" if candidates else "")
        )
        self.sent_at = sent_at
        self.inputs = dict(inputs)
        self.reason = reason
        #: Tasks that appeared since, none of which could be told to be this one.
        self.candidates = tuple(candidates)
        #: The task id the damaged answer carried, or its first characters.
        self.task_id_seen = task_id_seen
        self.task_id_complete = task_id_complete


class TaskError(EmojiError):
    """A task ended without a video, or could not be waited for."""

    def __init__(self, message: str, *, task_id: str, snapshot: TaskSnapshot | None) -> None:
        request_id = snapshot.request_id if snapshot is not None else None
        tail = f" (request_id={request_id})" if request_id else ""
        super().__init__(f"task {task_id}: {message}{tail}")
        self.task_id = task_id
        self.snapshot = snapshot
        self.request_id = request_id


class TaskFailedError(TaskError):
    """The task ended FAILED; ``code`` and ``message`` are the provider's."""

    def __init__(self, snapshot: TaskSnapshot) -> None:
        self.code = snapshot.code
        self.message = snapshot.message
        super().__init__(
            f"failed: {snapshot.code}: {snapshot.message}",
            task_id=snapshot.task_id,
            snapshot=snapshot,
        )


class TaskCanceledError(TaskError):
    """The task ended CANCELED."""

    def __init__(self, snapshot: TaskSnapshot) -> None:
        super().__init__("was canceled", task_id=snapshot.task_id, snapshot=snapshot)


class TaskNotFoundError(TaskError):
    """The service reports the task UNKNOWN: it never existed, or is older than 24 h."""

    def __init__(self, snapshot: TaskSnapshot) -> None:
        super().__init__(
            "is unknown to the service (never existed, or older than 24 h)",
            task_id=snapshot.task_id,
            snapshot=snapshot,
        )


class WaitTimeoutError(TaskError, TimeoutError):
    """The wait's deadline passed before the task ended; the task itself goes on."""

    def __init__(self, *, task_id: str, snapshot: TaskSnapshot | None, timeout: float) -> None:
        state = f"still {snapshot.raw_status}" if snapshot is not None else "not yet observed"
        super().__init__(f"{state} after waiting {timeout:g} s", task_id=task_id, snapshot=snapshot)
        self.timeout = timeout


def proves_nothing_created(exc: EmojiError) -> bool:
    """Whether a submit's error proves that no task came of it.

    The request never left (no connection, a URL or an argument refused before
    sending), or it was answered with a documented 4xx error: one of the
    provider's error statuses with its error body (a ``code``), or any refusal
    of the account (a 401 or 403 is given at the door, body or not). Anything
    else that came back after the request left is a lost answer.
    """
    if isinstance(exc, ConnectError | ConfigurationError | ValidationError | AccountError):
        return True
    return isinstance(exc, APIError) and not isinstance(exc, ServerError) and bool(exc.code)

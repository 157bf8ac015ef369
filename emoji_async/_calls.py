"""How one call to the service is retried and ended: the rule each endpoint may retry by.

Reads (task query, list) and cancels are retried after any transient failure.
Detection is billed once its answer arrives, so it is sent again only when no
answer came back: any number of times when the connection was never made,
once when the answer was lost (it may have been processed and billed), and
after a 429 (throttling is not billed) or a 5xx (the provider bills only a
detection it answers). An answer that arrived but cannot be read is billed
all the same, and is not sent for again. The paid submit is different: the
provider has no idempotency key, so it is retried only when it provably
created nothing (the connection was never made, or the service throttled it).
Any other failure after it was sent (a 5xx, a lost or damaged answer, a status
the protocol never lists) becomes :class:`SubmissionUncertainError`: only a
documented 4xx error answer proves that no task was created.
A refusal of the account itself (:class:`AccountError`: a wrong key, no
access, an overdue bill) is never retried anywhere: every later request of
the account would get the same answer.
A temporary upload's policy is a read; its form POST is retried under the same
key, which the provider never overwrites (``_uploads`` says why that is safe).

Each call, its retries included, ends by one deadline (``RetryPolicy.deadline``
unless the caller gives its own), enforced by ``asyncio.timeout`` around the
whole call: a service that answers a byte at a time cannot hold it longer.
A call whose deadline passes while its request was out raises
:class:`ResponseLostError` (a download :class:`DownloadError`): it may have
been processed, so a submit is settled like any lost answer. One whose
request never left (it waited for its turn) raises the error that made it
wait, or :class:`ConnectError`: provably not sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ._errors import (
    AccountError,
    ConnectError,
    DownloadError,
    EmojiError,
    RateLimitError,
    ResponseLostError,
    ServerError,
    UnexpectedResponseError,
)
from ._reporting import report
from ._values import Endpoint
from .events import Retrying

__all__ = [
    "DETECT_RESENDS",
    "Exchange",
    "Paced",
    "detect_may_retry",
    "download_may_retry",
    "is_transient",
    "on_retry",
    "on_upload_retry",
    "submit_may_retry",
    "within",
]


def is_transient(exc: Exception) -> bool:
    """Whether a failed request may succeed if sent again.

    Throttling (:class:`RateLimitError`) passes; a 429 that refuses the account
    (:class:`BillingError`, an :class:`AccountError`) does not.
    """
    if isinstance(exc, AccountError):
        return False
    return isinstance(
        exc,
        RateLimitError | ServerError | ConnectError | ResponseLostError | UnexpectedResponseError,
    )


def submit_may_retry(exc: Exception) -> bool:
    # A 429 proves nothing was created only with the provider's error body; a
    # refusal of the account proves it too, but sending again cannot help.
    if isinstance(exc, AccountError):
        return False
    return isinstance(exc, ConnectError) or (isinstance(exc, RateLimitError) and bool(exc.code))


#: How many times a detection whose answer was lost is sent again: it may have
#: been processed, and every detection processed is billed.
DETECT_RESENDS = 1


def detect_may_retry(exc: Exception) -> bool:
    # Only when no billed answer can have come of it: never sent, throttled, a 5xx
    # (the provider bills a detection it answers), or lost while a resend is left.
    if isinstance(exc, ResponseLostError):
        return exc.may_resend
    if isinstance(exc, AccountError):
        return False
    return isinstance(exc, ConnectError | RateLimitError | ServerError)


def download_may_retry(exc: Exception) -> bool:
    return isinstance(exc, DownloadError) and exc.is_transient


class Exchange:
    """Where one call stands, for the error its deadline ends it with."""

    __slots__ = ("last", "out", "what")

    def __init__(self, what: str) -> None:
        self.what = what
        #: An attempt's request may be out (its headers were written): its answer
        #: is awaited.
        self.out = False
        #: The error of the latest attempt that failed.
        self.last: EmojiError | None = None

    def went_out(self) -> None:
        """The running attempt's request has left (or may have)."""
        self.out = True

    def expired(self, limit: float) -> EmojiError:
        """The error for a call whose deadline of ``limit`` seconds passed."""
        if not self.out and self.last is not None:
            return self.last  # it was waiting to send again: what made it wait
        if self.what == "download":
            return DownloadError(f"the download did not end within its deadline of {limit:g} s")
        if self.out:
            return ResponseLostError(
                f"no complete answer to {self.what} within its deadline of {limit:g} s"
            )
        return ConnectError(
            f"{self.what} was not sent: its deadline of {limit:g} s passed before it left"
        )


#: A paced, retried attempt: ``(endpoint, attempt, exchange) -> its result``.
Paced = Callable[[Endpoint | None, Callable[[], Awaitable[Any]], Exchange], Awaitable[Any]]


def on_retry(exc: Exception, wait: float, attempt_no: int, args: tuple[Any, ...]) -> None:
    endpoint = args[0] if args else None
    report(
        lambda key: Retrying(
            key=key,
            endpoint=endpoint.value if isinstance(endpoint, Endpoint) else "download",
            attempt=attempt_no,
            wait=wait,
            reason=f"{type(exc).__name__}: {exc}",
        )
    )


def on_upload_retry(exc: Exception, wait: float, attempt_no: int, args: tuple[Any, ...]) -> None:
    report(
        lambda key: Retrying(
            key=key,
            endpoint="upload",
            attempt=attempt_no,
            wait=wait,
            reason=f"{type(exc).__name__}: {exc}",
        )
    )


async def within(
    limit: float | None,
    retrier: Paced,
    endpoint: Endpoint | None,
    attempt: Callable[[], Awaitable[Any]],
    call: Exchange,
) -> Any:
    """``retrier``'s run of ``attempt``, ended by a hard deadline of ``limit`` seconds."""
    if limit is None:
        return await retrier(endpoint, attempt, call)
    scope = asyncio.timeout(limit)
    try:
        async with scope:
            return await retrier(endpoint, attempt, call)
    except TimeoutError:
        if not scope.expired():
            raise  # not this call's deadline
        error = call.expired(limit)
        # A new error stands alone; the one that made the call wait keeps its own cause.
        raise error from error.__cause__

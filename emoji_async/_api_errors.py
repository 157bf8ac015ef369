"""From an error answer to its error: the provider's statuses and codes, in one table.

:func:`api_error` is the one place that reads a non-2xx answer's status and
``code`` into the most specific class of the tree in :mod:`._errors`. The
object storage hosts answer with codes of their own, read apart.
"""

from __future__ import annotations

from ._errors import (
    AccountError,
    APIError,
    AuthenticationError,
    BillingError,
    InvalidRequestError,
    ModelOrWorkspaceNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)

__all__ = ["api_error"]


#: The error statuses the provider documents (docs/wire.md, "Errors"), and 5xx.
_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}

#: The provider's codes that refuse the account rather than the request, whatever
#: the status they come with (docs/wire.md, "Errors": not every 429 is throttling).
_ACCOUNT_CODES: dict[str, type[AccountError]] = {
    "InvalidApiKey": AuthenticationError,
    "AccessDenied": PermissionDeniedError,
    "AccessDenied.Unpurchased": PermissionDeniedError,
    "Model.AccessDenied": PermissionDeniedError,
    "Workspace.AccessDenied": PermissionDeniedError,
    "App.AccessDenied": PermissionDeniedError,
    "Arrearage": BillingError,
    "PrepaidBillOverdue": BillingError,
    "PostpaidBillOverdue": BillingError,
    "CommodityNotPurchased": BillingError,
    "Throttling.AllocationQuota": BillingError,
    "AllocationQuota.FreeTierOnly": BillingError,
    # A 404 that names the account's model or workspace, not one task: every later
    # request names the same. Still a NotFoundError, as it was before.
    "ModelNotFound": ModelOrWorkspaceNotFoundError,
    "Model.NotExist": ModelOrWorkspaceNotFoundError,
    "WorkSpaceNotFound": ModelOrWorkspaceNotFoundError,
}


def _class_for(http_status: int, code: str | None) -> type[APIError] | None:
    """The provider's ``code`` first, then the status; ``None`` for a status it never answers.

    A 401 or a 403 refuses the account whatever its code says, so it keeps its
    own class (an ``AccountError`` already): ``except PermissionDeniedError``
    still catches a 403 ``AllocationQuota.FreeTierOnly``.
    """
    if http_status >= 500:
        return ServerError
    by_status = _BY_STATUS.get(http_status)
    if by_status is None:
        return None  # not the provider's answer: its code is no one's word
    by_code = _ACCOUNT_CODES.get(code) if code else None
    if by_code is not None and not issubclass(by_status, AccountError):
        return by_code
    return by_status


def api_error(
    http_status: int,
    code: str | None,
    message: str,
    *,
    request_id: str | None,
    retry_after: float | None = None,
    storage: bool = False,
) -> APIError | UnexpectedResponseError:
    """The most specific error for a non-2xx answer: by the provider's ``code``, then the status.

    A code that refuses the account (an overdue bill, a quota used up, an
    invalid key) is an :class:`AccountError` whatever documented status it
    came with: a 429 ``PrepaidBillOverdue`` is no throttling. A status the
    provider never documents (a redirect, 408, 409, 413...) is an
    :class:`UnexpectedResponseError` whatever its body says: it says nothing of what the service did
    with the request, so it is retried like a lost answer, and a paid submit
    answered so is settled through the task list. The object storage hosts
    (``storage``) have statuses of their own: any 4xx of theirs is a refusal.
    """
    if storage:
        # The storage hosts' codes are their own: an OSS 403 AccessDenied is an
        # expired signature, not the account. Any 4xx of theirs refuses the file.
        cls: type[APIError] | None = ServerError if http_status >= 500 else None
        if 400 <= http_status < 500:
            cls = RateLimitError if http_status == 429 else InvalidRequestError
    else:
        cls = _class_for(http_status, code)
    if cls is None:
        return UnexpectedResponseError(
            f"HTTP {http_status}, which the protocol never answers: {message}",
            http_status=http_status,
            request_id=request_id,
        )
    return cls(
        message, http_status=http_status, code=code, request_id=request_id, retry_after=retry_after
    )

"""The provider's answers as values: bodies, error envelopes and their messages.

Service logic returns or raises these; only the aiohttp layer turns them into
responses. Keeping the texts in one table keeps them identical everywhere the
same condition can arise (a detection rejection and the submit that reuses the
rejected image answer the same message).

Where the provider's pages quote a message, it is used here word for word
(the docs page "The wire protocol", ``docs/wire.md``, lists them); the others
are plausible texts in the same style.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from xml.sax.saxutils import escape

import attrs

__all__ = [
    "ASYNC_HEADER_REQUIRED",
    "BILLING_CODES",
    "BODY_INVALID",
    "DETECT_MODEL",
    "FAILURE_MESSAGES",
    "FREE_QUOTA_EXCEEDED",
    "INVALID_FILE_MESSAGES",
    "MODERATION_MESSAGE",
    "NO_API_KEY",
    "RATE_LIMITED",
    "SUBMIT_MODEL",
    "UNSUPPORTED_CANCEL",
    "WRONG_API_KEY",
    "OssError",
    "Reply",
    "ServiceError",
    "error_body",
    "error_reply",
    "fault_message",
    "json_reply",
    "new_request_id",
    "oss_error_reply",
]

#: The models a request names: detection's and video synthesis's.
DETECT_MODEL = "emoji-detect-v1"
SUBMIT_MODEL = "emoji-v1"

# Documented word for word.
NO_API_KEY = "No API-key provided."
WRONG_API_KEY = "Invalid API-key provided."
ASYNC_HEADER_REQUIRED = "current user api does not support synchronous calls"
UNSUPPORTED_CANCEL = "Failed to cancel the task, please confirm if the task is in PENDING status."
BODY_INVALID = "Required body invalid, please check the request body format."
FREE_QUOTA_EXCEEDED = "Free allocated quota exceeded"
# Not documented: plausible texts.
RATE_LIMITED = "Requests rate limit exceeded, please try again later."
MODERATION_MESSAGE = "Input data may contain inappropriate content."

#: The detection rejections, each with the provider's message where it quotes one
#: (NoHuman's; FacePose's opening words), else a plausible one.
INVALID_FILE_MESSAGES: dict[str, str] = {
    "InvalidFile.NoHuman": (
        "The input image has no human body. Please upload other image with single person."
    ),
    "InvalidFile.MultiHuman": (
        "More than one person is detected in the image, please upload a single portrait."
    ),
    "InvalidFile.FacePose": (
        "The pose of the detected face is invalid, please upload a frontal face "
        "without excessive head tilt."
    ),
    "InvalidFile.FullFace": (
        "The face is incomplete or occluded, please upload an image with the whole "
        "face visible and unoccluded."
    ),
    "InvalidFile.BodyProportion": (
        "The proportion of the face in the image is invalid, please upload a "
        "head-and-shoulders portrait."
    ),
    "InvalidFile.Resolution": (
        "The image resolution is invalid, each side must be between 400 and 7000 pixels."
    ),
    "InvalidFile.Value": "The image is too dark, please upload a brighter image.",
    "InvalidFile.Format": (
        "The image format is invalid, only JPEG, JPG, PNG, BMP and WEBP are supported."
    ),
    # Inferred: the provider lists the family but names no member for the 10 MB limit.
    "InvalidFile.Size": "The image file is too large, it must be at most 10 MB.",
}

#: Messages of task failures (``sim_fail``), and of scripted ``status`` faults.
FAILURE_MESSAGES: dict[str, str] = {
    **INVALID_FILE_MESSAGES,
    "InternalError": (
        "An internal error has occured, please try again later or contact service support."
    ),
    "InternalError.Algo": "An error occurred in the algorithm, please try again later.",
    "InternalError.Timeout": "The task timed out after 3 hours without a result.",
    "SystemError": "A system error occurred, please try again later.",
    "RequestTimeOut": "The request timed out, please try again later.",
    "ModelServingError": "The model service failed to answer, please try again later.",
    "ModelUnavailable": "The model is temporarily unavailable, please try again later.",
    "ServiceUnavailable": "The service is temporarily unavailable, please try again later.",
    "InvalidParameter": "The size is not match the template, please check the input image.",
    "DataInspectionFailed": MODERATION_MESSAGE,
    "Throttling": RATE_LIMITED,
    "Throttling.RateQuota": RATE_LIMITED,
    "Throttling.BurstRate": "Request rate increased too quickly, please try again later.",
    "Throttling.AllocationQuota": FREE_QUOTA_EXCEEDED,
    "AllocationQuota.FreeTierOnly": FREE_QUOTA_EXCEEDED,
    "Arrearage": "Access denied, please make sure your account is in good standing.",
    # The 429s that are the account's, not the moment's (docs/wire.md, "Errors"):
    # the provider names the codes but quotes no message for them.
    "PrepaidBillOverdue": "The prepaid bill of the account is overdue, please top it up.",
    "PostpaidBillOverdue": "The postpaid bill of the account is overdue, please pay it.",
    "CommodityNotPurchased": "The model service has not been purchased for this account.",
}

#: The codes that refuse the account, not the request: its bill or its quota.
#: Every later request of the account gets the same answer.
BILLING_CODES: frozenset[str] = frozenset(
    {
        "PrepaidBillOverdue",
        "PostpaidBillOverdue",
        "CommodityNotPurchased",
        "Throttling.AllocationQuota",
        "AllocationQuota.FreeTierOnly",
        "Arrearage",
    }
)


def fault_message(code: str) -> str:
    """The message that goes with ``code``: the table's, or a generic one."""
    return FAILURE_MESSAGES.get(code, f"The request failed with {code}, please try again later.")


def new_request_id() -> str:
    """A fresh request id; every answer carries a new one."""
    return str(uuid.uuid4())


class _ErrorAnswer(Exception):
    """An error answer to raise: its HTTP ``status``, ``code`` and ``message``.

    Only its two kinds are raised, each caught on its own: they are written
    differently on the wire.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class ServiceError(_ErrorAnswer):
    """A provider error answer: HTTP ``status`` with ``{request_id, code, message}``."""


class OssError(_ErrorAnswer):
    """An object-storage error answer (upload host, result videos): XML, not JSON."""


@attrs.frozen
class Reply:
    """One HTTP answer, independent of the web framework that sends it."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    def with_headers(self, *headers: tuple[str, str]) -> Reply:
        """The same answer with more headers."""
        return attrs.evolve(self, headers=self.headers + headers)

    def json_object(self) -> dict[str, Any] | None:
        """The body read as a JSON object; ``None`` if the answer is not one."""
        if not self.content_type.endswith("json"):
            return None
        try:
            payload = json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        return payload if isinstance(payload, dict) else None

    def with_json(self, payload: dict[str, Any]) -> Reply:
        """The same answer carrying ``payload`` as its body, written as ``json_reply`` writes it."""
        return attrs.evolve(self, body=json.dumps(payload, ensure_ascii=False).encode())


def json_reply(payload: dict[str, Any], status: int = 200) -> Reply:
    """``payload`` as a JSON answer."""
    return Reply(status, json.dumps(payload, ensure_ascii=False).encode())


def error_body(code: str, message: str) -> dict[str, Any]:
    """The provider's error envelope, with a fresh request id."""
    return {"request_id": new_request_id(), "code": code, "message": message}


def error_reply(status: int, code: str, message: str) -> Reply:
    """A provider error answer."""
    return json_reply(error_body(code, message), status)


def oss_error_reply(status: int, code: str, message: str) -> Reply:
    """An object-storage error answer, XML as OSS writes it."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error>\n"
        f"  <Code>{escape(code)}</Code>\n"
        f"  <Message>{escape(message)}</Message>\n"
        f"  <RequestId>{new_request_id().replace('-', '').upper()[:24]}</RequestId>\n"
        "  <HostId>emoji-simulator</HostId>\n"
        "</Error>\n"
    )
    return Reply(status, body.encode(), content_type="application/xml")

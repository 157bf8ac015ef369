"""Temporary uploads: the policy the API hands out, the form POST, and ``oss://`` URLs.

The simulator plays both sides of the upload flow (docs/wire.md, "Local
files"): ``GET /uploads`` issues a signed policy whose ``upload_host`` is the
simulator's own upload route, the multipart POST to that route stores the file
under its ``key`` (only its ``ImageFacts`` are kept here: digest, size, and
what decoding found; the bytes go to the simulator's bounded ``ImageBank``),
and ``oss://<key>`` resolves for the model the policy was issued for, for 48 h
(scaled).

An uploaded image goes through the same checks as a fetched one (``examine``:
size, format, resolution), by the application's upload route; a file that
fails them is stored all the same, as OSS would, and refused when a detection
or a submit resolves it. ``UploadStore.stored_by_model`` counts the files
stored, per model, so tests can say how many uploads a client made.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections import deque
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs

from ._clock import Clock
from ._config import POLICY_LIFETIME, UPLOAD_LIFETIME
from ._images import ImageFacts
from ._wire import OssError, ServiceError

__all__ = ["ACCESS_KEY_ID", "MAX_FILE_SIZE_MB", "StoredFile", "UploadPolicy", "UploadStore"]

#: The access key id the policies name; uploads must send it back.
ACCESS_KEY_ID = "LTAI5tEmojiSimulator"
MAX_FILE_SIZE_MB = 100
CAPACITY_LIMIT_MB = 999_999_999


@attrs.frozen
class UploadPolicy:
    """One issued upload policy."""

    policy: str
    signature: str
    upload_dir: str
    model: str
    expires_at: float

    def wire(self, upload_host: str) -> dict[str, object]:
        """The ``data`` object of a getPolicy answer."""
        return {
            "policy": self.policy,
            "signature": self.signature,
            "upload_dir": self.upload_dir,
            "upload_host": upload_host,
            "expire_in_seconds": POLICY_LIFETIME,
            "max_file_size_mb": MAX_FILE_SIZE_MB,
            "capacity_limit_mb": CAPACITY_LIMIT_MB,
            "oss_access_key_id": ACCESS_KEY_ID,
            "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true",
        }


@attrs.frozen
class StoredFile:
    """One uploaded file: where it lives, for which model, and what it was."""

    key: str
    model: str
    facts: ImageFacts
    expires_at: float


def oss_key(url: str) -> str:
    """The object key of an ``oss://`` URL (its query string, if any, is not part of it)."""
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


class UploadStore:
    """Issued policies and stored files, and how many were stored for each model."""

    def __init__(self, clock: Clock, secret: bytes) -> None:
        self._clock = clock
        self._secret = secret
        self._policies: dict[str, UploadPolicy] = {}
        self._policy_order: deque[UploadPolicy] = deque()
        self._files: dict[str, StoredFile] = {}
        self._file_order: deque[StoredFile] = deque()
        #: Files stored so far, by the model their policy named (refused forms not counted).
        self.stored_by_model: dict[str, int] = {}

    def _sign(self, policy: str) -> str:
        mac = hmac.new(self._secret, policy.encode(), hashlib.sha1)
        return base64.b64encode(mac.digest()).decode()

    def _prune(self, now: float) -> None:
        while self._policy_order and self._policy_order[0].expires_at <= now:
            self._policies.pop(self._policy_order.popleft().policy, None)
        while self._file_order and self._file_order[0].expires_at <= now:
            gone = self._file_order.popleft()
            if self._files.get(gone.key) is gone:
                del self._files[gone.key]

    def issue(self, model: str, now: float) -> UploadPolicy:
        """A fresh policy for uploads bound to ``model``."""
        self._prune(now)
        day = dt.datetime.fromtimestamp(self._clock.wall(now), dt.UTC)
        upload_dir = f"dashscope-instant/emoji-simulator/{day:%Y-%m-%d}/{uuid.uuid4().hex}"
        expiration = day + dt.timedelta(seconds=POLICY_LIFETIME)
        document = {
            "expiration": f"{expiration:%Y-%m-%dT%H:%M:%S.000Z}",
            "conditions": [
                ["content-length-range", 0, MAX_FILE_SIZE_MB * 1024 * 1024],
                ["starts-with", "$key", upload_dir],
                {"bucket": "dashscope-file-mgr"},
                {"x-oss-object-acl": "private"},
                {"x-oss-forbid-overwrite": "true"},
            ],
        }
        text = base64.b64encode(json.dumps(document).encode()).decode()
        policy = UploadPolicy(text, self._sign(text), upload_dir, model, now + POLICY_LIFETIME)
        self._policies[text] = policy
        self._policy_order.append(policy)
        return policy

    def store(self, fields: Mapping[str, str], facts: ImageFacts, now: float) -> StoredFile:
        """Accept a form upload (its fields, and what its file is) or raise OssError."""
        self._prune(now)
        for name in ("OSSAccessKeyId", "Signature", "policy", "key"):
            if not fields.get(name):
                raise OssError(400, "InvalidArgument", f"The form field {name} is required.")
        if fields["OSSAccessKeyId"] != ACCESS_KEY_ID:
            raise OssError(
                403,
                "InvalidAccessKeyId",
                "The OSS Access Key Id you provided does not exist in our records.",
            )
        text = fields["policy"]
        if not hmac.compare_digest(self._sign(text), fields["Signature"]):
            raise OssError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        policy = self._policies.get(text)
        if policy is None:
            raise OssError(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        key = fields["key"]
        if not key.startswith(policy.upload_dir + "/") or key == policy.upload_dir + "/":
            raise OssError(
                403,
                "AccessDenied",
                f'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", '
                f'"{policy.upload_dir}"]',
            )
        if facts.size > MAX_FILE_SIZE_MB * 1024 * 1024:
            raise OssError(
                400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size."
            )
        if key in self._files:
            raise OssError(
                409,
                "FileAlreadyExists",
                "The object you specified already exists and can not be overwritten.",
            )
        stored = StoredFile(key, policy.model, facts, now + self._clock.scaled(UPLOAD_LIFETIME))
        self._files[key] = stored
        self._file_order.append(stored)
        self.stored_by_model[policy.model] = self.stored_by_model.get(policy.model, 0) + 1
        return stored

    def find(self, url: str, now: float) -> StoredFile | None:
        """The live file behind an ``oss://`` URL, if any."""
        self._prune(now)
        return self._files.get(oss_key(url))

    def resolve(self, url: str, model: str, now: float) -> StoredFile:
        """The file behind ``url`` for a request to ``model``, or a 400 ``InvalidURL``."""
        stored = self.find(url, now)
        if stored is None:
            raise ServiceError(
                400,
                "InvalidURL",
                f"The temporary file {url} does not exist or has expired, please upload it again.",
            )
        if stored.model != model:
            raise ServiceError(
                400,
                "InvalidURL",
                f"The temporary file {url} was uploaded for model {stored.model}, "
                f"it cannot be used with model {model}.",
            )
        return stored

"""Result videos: signed, expiring URLs, and the objects behind them.

A succeeded task leaves an object that outlives the task record: the task
answers ``UNKNOWN`` 24 h after its submission, its video URL works until 24 h
after it *ended* (both scaled). The URL carries ``Expires`` (whole epoch
seconds, rounded up) and an HMAC ``Signature`` over it, so a client can neither
forge one nor stretch its life.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections import deque
from urllib.parse import urlencode

import attrs

from ._clock import Clock
from ._config import VIDEO_URL_LIFETIME
from ._tasks import SimulatedTask
from ._uploads import ACCESS_KEY_ID
from ._wire import OssError

__all__ = ["RESULTS_PATH", "ResultObject", "ResultStore"]

#: Where result videos are served, outside the API prefix like a storage bucket.
RESULTS_PATH = "/results"


@attrs.frozen
class ResultObject:
    """The video of one succeeded task."""

    task_id: str
    driven_id: str
    video_seconds: int
    expires_at: float
    expires: int  # the URL's Expires: epoch seconds


class ResultStore:
    """Objects of succeeded tasks, and the signatures of their URLs."""

    def __init__(self, clock: Clock, secret: bytes) -> None:
        self._clock = clock
        self._secret = secret
        self._objects: dict[str, ResultObject] = {}
        self._order: deque[ResultObject] = deque()

    def _signature(self, task_id: str, expires: str) -> str:
        text = f"GET\n{expires}\n{RESULTS_PATH}/{task_id}.mp4"
        mac = hmac.new(self._secret, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def _prune(self, now: float) -> None:
        wall = self._clock.wall(now)
        while self._order and self._order[0].expires < wall:
            gone = self._order.popleft()
            self._objects.pop(gone.task_id, None)

    def add(self, task: SimulatedTask) -> None:
        """Keep the video of a task that has just succeeded."""
        assert task.ended_at is not None
        expires_at = task.ended_at + self._clock.scaled(VIDEO_URL_LIFETIME)
        expires = math.ceil(self._clock.wall(expires_at))
        result = ResultObject(task.task_id, task.driven_id, task.video_seconds, expires_at, expires)
        self._objects[task.task_id] = result
        self._order.append(result)

    def url(self, task_id: str, origin: str) -> str:
        """The signed ``video_url`` of a succeeded task, as served from ``origin``."""
        result = self._objects[task_id]
        expires = str(result.expires)
        query = urlencode(
            {
                "Expires": expires,
                "OSSAccessKeyId": ACCESS_KEY_ID,
                "Signature": self._signature(task_id, expires),
            }
        )
        return f"{origin}{RESULTS_PATH}/{task_id}.mp4?{query}"

    def open(self, task_id: str, expires: str, signature: str, now: float) -> ResultObject:
        """The object a signed URL points at, or OssError 403 (bad or expired) / 404."""
        self._prune(now)
        if not hmac.compare_digest(self._signature(task_id, expires), signature):
            raise OssError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        result = self._objects.get(task_id)
        expired = OssError(403, "AccessDenied", "Request has expired.")
        if result is None:
            if expires.isdigit() and int(expires) < self._clock.wall(now):
                raise expired
            raise OssError(404, "NoSuchKey", "The specified key does not exist.")
        if now >= result.expires_at:
            raise expired
        return result

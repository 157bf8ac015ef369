"""Local files as images: the provider's temporary uploads, once per content and model.

Wherever an image URL goes, a local file may go instead: a path (``str`` or
``os.PathLike``) or a ``file://`` URI. The file is checked on this machine
first (:func:`~emoji_async._validation.read_image_file`, in a worker thread:
the event loop never reads or hashes a file), then uploaded the way
docs/wire.md describes ("Local files: temporary uploads"):

1. ``GET {base}/uploads?action=getPolicy&model=<model>`` hands out a signed
   policy. It is paced under the upload-policy limit (100/s) and retried
   after transient failures like any read: asking twice costs nothing.
2. A multipart form POST to the policy's ``upload_host`` stores the file. The
   form's signature is the credential there: the API key (and the
   workspace) never goes to that host.
3. The image is then ``oss://<key>``; ``ServiceAPI`` sends any ``oss://``
   input with ``X-DashScope-OssResourceResolve: enable``.

A temporary file is bound to the model its policy names, so detection
(``emoji-detect-v1``) and generation (``emoji-v1``) each need their own upload
of the same image. Uploads are remembered per (SHA-256 of the content, model)
for ``lifetime - margin`` seconds after the upload started (48 h - 1 h by
default), at most ``max_entries`` of them, the least recently used dropped
first: a batch that animates one portrait many times uploads it once per
model. Concurrent requests for the same content and model share one upload in
flight, which is cancelled only once every one of them has been.

Retrying the form POST. Each upload picks its key once,
``<upload_dir>/<digest prefix>-<random><ext>``, and keeps it across attempts;
the provider's policies forbid overwriting (``x-oss-forbid-overwrite: true``).
A connection refused, a lost answer, a 429 or a 5xx is retried under the same
key. If the attempt whose answer was lost had in fact stored the file, the
retry is answered 409 ``FileAlreadyExists``, which proves the object is there
with these bytes (no one else knows the random key), and counts as success.
So a retry never stores a second copy; under a policy that allows
overwriting, it is a plain, idempotent overwrite.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import attrs

from ._checks import count, in_range, positive
from ._errors import UnexpectedResponseError, ValidationError
from ._urls import http_hostname
from ._validation import ImageFile, check_image_url, local_image_path, read_image_file

__all__ = [
    "UPLOAD_LIFETIME",
    "ImageSource",
    "TemporaryUploads",
    "UploadEndpoints",
    "UploadPolicy",
]

log = logging.getLogger("emoji_async")

#: What may stand for an image: a URL, or a local file's path (``str``, path-like, ``file://``).
ImageSource = str | os.PathLike[str]

#: How long the provider keeps a temporary file (docs/wire.md, "Local files").
UPLOAD_LIFETIME = 48 * 3600.0


def _text(data: dict[str, Any], name: str, bad: Callable[[str], Exception]) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise bad(f"the upload policy has no {name!r}")
    return value


def _http_url(host: str, bad: Callable[[str], Exception]) -> str:
    """``host`` if it is an http(s) URL with a well-formed host and port."""
    try:
        hostname = http_hostname(host)
    except ValueError:  # a malformed IPv6 host or port
        raise bad(f"the upload host is not a valid URL: {host!r}") from None
    if hostname is None:
        raise bad(f"the upload host is not an http(s) URL: {host!r}")
    return host


def _size_limit(value: object, bad: Callable[[str], Exception]) -> int | None:
    """``max_file_size_mb`` as whole bytes; ``None`` when the answer gives no number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    size = value * 1024 * 1024  # an int stays one, however large; a float may overflow
    if (isinstance(size, float) and not math.isfinite(size)) or size < 1:
        raise bad(f"the upload policy's max_file_size_mb is not a finite size > 0: {value!r}")
    return int(size)


def _flag(value: object, default: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) and value else default


@attrs.frozen(kw_only=True)
class UploadPolicy:
    """One signed upload policy: where to POST the file and the form fields that allow it.

    The policy document, its signature and the storage access key id stay out
    of the repr: they are credentials for the upload host.
    """

    upload_host: str
    upload_dir: str
    policy: str = attrs.field(repr=False)
    signature: str = attrs.field(repr=False)
    access_key_id: str = attrs.field(repr=False)
    object_acl: str = "private"
    forbid_overwrite: str = "true"
    max_file_bytes: int | None = None

    @classmethod
    def from_wire(cls, body: Any, *, http_status: int, request_id: str | None) -> UploadPolicy:
        """The policy in a getPolicy answer, or :class:`UnexpectedResponseError`."""

        def bad(message: str) -> UnexpectedResponseError:
            return UnexpectedResponseError(message, http_status=http_status, request_id=request_id)

        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise bad("the upload policy answer has no 'data' object")
        return cls(
            upload_host=_http_url(_text(data, "upload_host", bad), bad),
            upload_dir=_text(data, "upload_dir", bad).rstrip("/"),
            policy=_text(data, "policy", bad),
            signature=_text(data, "signature", bad),
            access_key_id=_text(data, "oss_access_key_id", bad),
            object_acl=_flag(data.get("x_oss_object_acl"), "private"),
            forbid_overwrite=_flag(data.get("x_oss_forbid_overwrite"), "true"),
            max_file_bytes=_size_limit(data.get("max_file_size_mb"), bad),
        )

    def form(self, key: str) -> list[tuple[str, str]]:
        """The form fields, in the order the upload host expects them (``file`` goes last)."""
        return [
            ("OSSAccessKeyId", self.access_key_id),
            ("Signature", self.signature),
            ("policy", self.policy),
            ("key", key),
            ("x-oss-object-acl", self.object_acl),
            ("x-oss-forbid-overwrite", self.forbid_overwrite),
            ("success_action_status", "200"),
        ]


class UploadEndpoints(Protocol):
    """The two requests of an upload (``ServiceAPI`` has them, with their pacing and retries)."""

    async def upload_policy(self, model: str) -> UploadPolicy:
        """A fresh policy for one file bound to ``model``."""
        ...

    async def upload_file(
        self, policy: UploadPolicy, key: str, data: bytes, content_type: str
    ) -> None:
        """Store ``data`` under ``key`` on the policy's upload host."""
        ...


_LIFETIME = positive("a number of seconds > 0")
_ENTRIES = count(1)


@attrs.define
class _Flight:
    """An upload in progress and how many callers wait for it."""

    task: asyncio.Task[str]
    waiters: int = 0


class TemporaryUploads:
    """Turns local files into ``oss://`` URLs: one upload per (content, model), shared, remembered.

    ``lifetime`` is how long the provider keeps a file (seconds); an upload is
    reused until ``margin`` seconds before that, so the request that uses it
    has time to arrive. At most ``max_entries`` uploads are remembered.
    """

    def __init__(
        self,
        endpoints: UploadEndpoints,
        *,
        lifetime: float = UPLOAD_LIFETIME,
        margin: float = 3600.0,
        max_entries: int = 1024,
    ) -> None:
        _LIFETIME.validate(lifetime, field="lifetime")
        margins = in_range(
            0, lifetime, f"a number of seconds from 0 to {lifetime:g}", high_open=True
        )
        margins.validate(margin, field="margin")
        _ENTRIES.validate(max_entries, field="max_entries")
        self._endpoints = endpoints
        self.lifetime = float(lifetime)
        self.margin = float(margin)
        self.max_entries = max_entries
        #: Uploads this object has made (each stored file once, whatever the retries).
        self.uploaded = 0
        self._done: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._flights: dict[tuple[str, str], _Flight] = {}

    def __repr__(self) -> str:
        return f"<TemporaryUploads {len(self._done)} remembered, {len(self._flights)} in flight>"

    async def prepare(self, image: ImageSource, *, field: str = "image_url") -> str | ImageFile:
        """``image`` checked before anything is sent: a URL as given, a file as :class:`ImageFile`.

        The file is read, checked and hashed in a worker thread. The
        :class:`ImageFile` stands for exactly those bytes: :meth:`url_for`
        uploads them, or fails if the file has changed since.
        """
        if isinstance(image, ImageFile):
            return image
        text = check_image_url(image, field=field)
        path = local_image_path(text)
        if path is None:
            return text
        checked, _ = await asyncio.to_thread(read_image_file, path, field=field)
        return checked

    async def url_for(
        self, image: ImageSource | ImageFile, model: str, *, field: str = "image_url"
    ) -> str:
        """The URL to send to ``model`` for ``image``: a URL as given, a local file as ``oss://``.

        A local file is checked before any request (:class:`ValidationError`
        naming ``field``), then uploaded unless an upload of the same bytes for
        ``model`` is remembered or already under way.
        """
        known: ImageFile | None = None
        if isinstance(image, ImageFile):
            known = image
            path = image.path
            url = self._remembered((image.digest, model))
            if url is not None:
                return url
        else:
            text = check_image_url(image, field=field)
            local = local_image_path(text)
            if local is None:
                return text
            path = local
        checked, data = await asyncio.to_thread(read_image_file, path, field=field)
        if known is not None and checked.digest != known.digest:
            raise ValidationError(
                field, "a file that does not change while it is in use", str(path)
            )
        key = (checked.digest, model)
        url = self._remembered(key)
        if url is not None:
            return url
        return await self._shared(key, checked, data, field)

    def _remembered(self, key: tuple[str, str]) -> str | None:
        entry = self._done.get(key)
        if entry is None:
            return None
        url, good_until = entry
        if good_until <= time.monotonic():
            del self._done[key]
            return None
        self._done.move_to_end(key)
        return url

    def _remember(self, key: tuple[str, str], url: str, good_until: float) -> None:
        self._done[key] = (url, good_until)
        self._done.move_to_end(key)
        while len(self._done) > self.max_entries:
            self._done.popitem(last=False)

    async def _shared(self, key: tuple[str, str], image: ImageFile, data: bytes, field: str) -> str:
        flight = self._flights.get(key)
        if flight is None:
            task = asyncio.create_task(
                self._upload(key, image, data, field),
                name=f"emoji-upload-{key[1]}-{image.digest[:12]}",
            )
            flight = _Flight(task)
            self._flights[key] = flight
            task.add_done_callback(functools.partial(self._landed, key, flight))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.waiters == 1 and not flight.task.done():
                # The last one waiting gave up: nobody wants the upload any more.
                flight.task.cancel()
                await asyncio.wait([flight.task])
            raise
        finally:
            flight.waiters -= 1

    def _landed(self, key: tuple[str, str], flight: _Flight, task: asyncio.Task[str]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]

    async def _upload(self, key: tuple[str, str], image: ImageFile, data: bytes, field: str) -> str:
        digest, model = key
        started = time.monotonic()
        policy = await self._endpoints.upload_policy(model)
        if policy.max_file_bytes is not None and image.size > policy.max_file_bytes:
            raise ValidationError(
                field,
                f"a file of at most {policy.max_file_bytes} bytes (the upload policy's limit)",
                image.size,
            )
        name = f"{digest[:16]}-{secrets.token_hex(8)}{image.suffix}"
        object_key = f"{policy.upload_dir}/{name}"
        await self._endpoints.upload_file(policy, object_key, data, image.content_type)
        url = f"oss://{object_key}"
        self._remember(key, url, started + self.lifetime - self.margin)
        self.uploaded += 1
        log.debug("uploaded %d bytes for %s as %s", image.size, model, url)
        return url

"""Checks on what callers pass, made before anything is sent.

Each failure is a :class:`ValidationError` that names the field and what it
allows, so a bad argument costs neither a request nor money.

The checks are composed of the building blocks in :mod:`~emoji_async._checks`.

An image is given as a URL (``http://``, ``https://``, ``oss://``) or as a
local file: a path (``str`` or ``os.PathLike``) or a ``file://`` URI. A local
file is checked here as the provider would check the image (docs/wire.md,
"Video generation"): at most 10 MiB, PNG, JPEG, BMP or WEBP, each side 400 to 7000 px.
The size is read from the image's header, not by decoding it, so no imaging
library is needed; whether the rest of the file decodes is the provider's to say.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import urllib.parse
import urllib.request
from collections.abc import Collection, Sequence
from pathlib import Path

import attrs

from ._errors import ValidationError
from ._image_headers import image_format, image_size
from ._models import BBox
from ._templates import Template, template_info
from ._values import Lane

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_SIDE",
    "MIN_SIDE",
    "ImageFile",
    "check_boxes",
    "check_driven_id",
    "check_image",
    "check_image_url",
    "check_lane",
    "local_image_path",
    "read_image_file",
]

_IMAGE_SCHEMES = ("http", "https", "oss")
#: White space as ``str.isspace`` knows it (the same 29 characters), found in one scan.
_SPACE = re.compile(r"\s")
_MAX_URL_LENGTH = 4096
_IMAGE_SOURCES = "an http://, https:// or oss:// URL, a file:// URI or a local file path"

#: The largest input image, in bytes: "at most 10 MB", read as MiB (inferred).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
#: Each side of an input image, in pixels, from ``MIN_SIDE`` to ``MAX_SIDE``.
MIN_SIDE = 400
MAX_SIDE = 7000
_FORMATS = "a PNG, JPEG, BMP or WEBP image"


def check_image_url(value: object, *, field: str = "image_url") -> str:
    """An image URL (http(s) with a host, or ``oss://``) or a local file's path, as a string.

    A local path is only checked for its form here; :func:`read_image_file`
    checks the file itself.
    """
    allowed = _IMAGE_SOURCES
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value or len(value) > _MAX_URL_LENGTH:
        raise ValidationError(field, f"{allowed} of at most {_MAX_URL_LENGTH} characters", value)
    if local_image_path(value) is not None:
        return value
    if _SPACE.search(value):
        raise ValidationError(field, f"{allowed} without white space", value)
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:  # a malformed IPv6 host, say
        raise ValidationError(field, allowed, value) from None
    if parts.scheme.lower() not in _IMAGE_SCHEMES:
        raise ValidationError(field, allowed, value)
    if not parts.netloc and not (parts.scheme.lower() == "oss" and parts.path.strip("/")):
        raise ValidationError(field, f"{allowed} with a host", value)
    return value


def check_driven_id(value: object, *, extra: Collection[str] = (), field: str = "driven_id") -> str:
    """One of the 20 templates, or an id the caller opted in to with ``extra_templates``."""
    if isinstance(value, Template):
        return value.value
    if isinstance(value, str) and (template_info(value) is not None or value in extra):
        return value
    raise ValidationError(
        field,
        "one of the 20 templates (emoji_async.templates() lists them), "
        "or an id named in extra_templates",
        value,
    )


_LANES = "Lane.INTERACTIVE or Lane.BULK (or 'interactive', 'bulk')"


def check_lane(value: object, *, field: str = "lane") -> Lane:
    """A :class:`Lane`, or the text of one (``"interactive"``, ``"bulk"``)."""
    if isinstance(value, Lane):
        return value
    for lane in Lane:
        if value == lane.value:
            return lane
    raise ValidationError(field, _LANES, value)


def check_boxes(
    face_bbox: BBox | Sequence[int], ext_bbox: BBox | Sequence[int], *, prefix: str = ""
) -> tuple[BBox, BBox]:
    """Both boxes well formed (whole pixels >= 0, ``x1 < x2``, ``y1 < y2``).

    They need not nest: the provider never promises that the extended box
    contains the face box, and a detection whose boxes do not is passed on as
    it came. ``prefix`` goes before the field names in errors (``jobs[3].``).
    """
    face = BBox.parse(face_bbox, field=f"{prefix}face_bbox")
    ext = BBox.parse(ext_bbox, field=f"{prefix}ext_bbox")
    return face, ext


def local_image_path(value: str) -> Path | None:
    """The local file ``value`` names (a plain path or a ``file://`` URI), or ``None``.

    ``None`` means ``value`` is meant as a URL: it has a scheme of its own.
    """
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:  # a malformed IPv6 host: a URL, if a broken one
        return None
    scheme = parts.scheme.lower()
    if scheme == "file" and parts.netloc in ("", "localhost") and parts.path:
        return Path(urllib.request.url2pathname(parts.path))
    if not scheme or (os.name == "nt" and len(scheme) == 1):  # a Windows drive letter
        return Path(value)
    return None


@attrs.frozen
class ImageFile:
    """A local image, checked: where it is, its SHA-256, size in bytes, format and size in px.

    It is a path-like object (``os.fspath`` gives its path), so it goes
    wherever an image is accepted, and stands for exactly these bytes.
    """

    path: Path
    digest: str
    size: int
    format: str
    width: int
    height: int

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    @property
    def content_type(self) -> str:
        """The media type to upload the file with."""
        return f"image/{self.format.lower()}"

    @property
    def suffix(self) -> str:
        """The file-name extension of the format (``.png``)."""
        return "." + ("jpg" if self.format == "JPEG" else self.format.lower())


def read_image_file(path: Path, *, field: str = "image_url") -> tuple[ImageFile, bytes]:
    """Read and check a local image; return what it is and its bytes.

    Blocking (a ``stat``, one read of at most 10 MiB, a hash): call it in a
    worker thread. Each problem is a :class:`ValidationError` on ``field``.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ValidationError(field, "the path of an existing file", str(path)) from None
    except OSError as exc:
        raise ValidationError(
            field, f"a file that can be read ({exc.strerror})", str(path)
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise ValidationError(field, "a file, not a directory", str(path))
    if not stat.S_ISREG(info.st_mode):
        raise ValidationError(field, "a regular file (not a device, pipe or socket)", str(path))
    if info.st_size > MAX_IMAGE_BYTES:
        raise ValidationError(field, f"a file of at most {MAX_IMAGE_BYTES} bytes", info.st_size)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise ValidationError(
            field, f"a file that can be read ({exc.strerror})", str(path)
        ) from None
    if len(data) > MAX_IMAGE_BYTES:  # it grew since the stat
        raise ValidationError(field, f"a file of at most {MAX_IMAGE_BYTES} bytes", len(data))
    kind = image_format(data)
    if kind is None:
        raise ValidationError(field, f"{_FORMATS} (judged by its first bytes)", str(path))
    if kind not in ("PNG", "JPEG", "BMP", "WEBP"):
        raise ValidationError(field, _FORMATS, kind)
    dimensions = image_size(data)
    if dimensions is None:
        raise ValidationError(field, f"a {kind} whose header gives its width and height", str(path))
    width, height = dimensions
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise ValidationError(
            field,
            f"an image {MIN_SIDE} to {MAX_SIDE} px on each side, as (width, height)",
            dimensions,
        )
    digest = hashlib.sha256(data).hexdigest()
    return ImageFile(path, digest, len(data), kind, width, height), data


def check_image(
    value: object,
    *,
    field: str = "image_url",
    relative_to: str | os.PathLike[str] | None = None,
) -> str:
    """An image checked as a submit would check it, before anything is sent: the value to pass on.

    An ``http://``, ``https://`` or ``oss://`` URL is checked for its form (as
    :func:`check_image_url` does) and returned as given. A local file (a path or a
    ``file://`` URI; a relative path is taken from ``relative_to``, by default the
    working directory) is read and checked too, as the provider would check the
    image: at most 10 MiB, a PNG, JPEG, BMP or WEBP image, 400 to 7000 px on each
    side. Its absolute path is returned. Each problem is a :class:`ValidationError`
    on ``field``. A local file is read at once (blocking): from async code, call
    it in a worker thread.
    """
    image = check_image_url(value, field=field)
    local = local_image_path(image)
    if local is None:
        return image
    where = os.path.abspath(local if relative_to is None else Path(relative_to) / local)
    read_image_file(Path(where), field=field)
    return where

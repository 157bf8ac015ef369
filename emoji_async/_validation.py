"""Checks on what callers pass, made before anything is sent.

Each failure is a :class:`ValidationError` that names the field and what it
allows, so a bad argument costs neither a request nor money.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Collection, Sequence

from ._errors import ValidationError
from ._models import BBox
from ._templates import Template, template_info

__all__ = ["check_boxes", "check_driven_id", "check_image_url"]

_IMAGE_SCHEMES = ("http", "https", "oss")
_MAX_URL_LENGTH = 4096


def check_image_url(value: object, *, field: str = "image_url") -> str:
    """An http(s) URL with a host, or an ``oss://`` temporary-upload URL."""
    allowed = "an http://, https:// or oss:// URL"
    if not isinstance(value, str) or not value or len(value) > _MAX_URL_LENGTH:
        raise ValidationError(field, f"{allowed} of at most {_MAX_URL_LENGTH} characters", value)
    if any(ch.isspace() for ch in value):
        raise ValidationError(field, f"{allowed} without white space", value)
    parts = urllib.parse.urlsplit(value)
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


def check_boxes(
    face_bbox: BBox | Sequence[int], ext_bbox: BBox | Sequence[int], *, prefix: str = ""
) -> tuple[BBox, BBox]:
    """Both boxes well formed, the extended one containing the face.

    ``prefix`` goes before the field names in errors (``jobs[3].``).
    """
    face = BBox.parse(face_bbox, field=f"{prefix}face_bbox")
    ext = BBox.parse(ext_bbox, field=f"{prefix}ext_bbox")
    if not ext.contains(face):
        raise ValidationError(
            f"{prefix}ext_bbox", f"a box containing face_bbox {face.as_list()}", ext.as_list()
        )
    return face, ext

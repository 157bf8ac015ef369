"""What "detection" sees in an image: face boxes from a digest, and test triggers.

There is no face detector. Boxes are a pure function of a digest: of the image
bytes when the simulator has them (an upload, or an image fetched from a
loopback URL), else of the URL itself (a URL it never fetches stands for its
image). When the image was decoded, the boxes are placed inside its real
dimensions, where a head-and-shoulders portrait has its face
(``boxes_in_image``); otherwise they describe an imagined image of 600 to
1800 px a side (``boxes_from_digest``). One URL is an exception: the example
image of the provider's own pages detects as the boxes those pages show
(``DOCUMENTED_EXAMPLES``), so the documented request, sent as written, is
accepted. Either way they are deterministic across runs, the same photo
uploaded once per model detects the same, and a submit can check that its
boxes are exactly the ones detection returned.

Test triggers ride on the image URL's query string (see the package docstring):
``sim_reject``, ``sim_fail``, ``sim_moderation``, ``sim_duration`` and
``sim_echo_key``.
"""

from __future__ import annotations

import hashlib
import math
from urllib.parse import parse_qs, unquote, urlsplit

import attrs

from ._wire import ServiceError

__all__ = [
    "DOCUMENTED_EXAMPLES",
    "Boxes",
    "Triggers",
    "boxes_from_digest",
    "boxes_in_image",
    "boxes_of_url",
    "digest_of",
    "triggers_of",
]

#: ``(face_bbox, ext_bbox)``, each ``[x1, y1, x2, y2]`` in pixels.
Boxes = tuple[list[int], list[int]]

#: The images the provider's pages show detected, with the boxes they show for them.
#: The video-synthesis page's example request sends this image with these boxes
#: without a detection first; the face-detect page answers them for it.
DOCUMENTED_EXAMPLES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20250912/uopnly/"
    "emoji-%E5%9B%BE%E5%83%8F%E6%A3%80%E6%B5%8B.png": ((212, 194, 460, 441), (63, 30, 609, 575)),
}


def _where(url: str) -> str:
    """A URL's scheme, host and path, percent-decoded: the same image whatever its spelling."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{unquote(parts.path)}"


_DOCUMENTED = {_where(url): boxes for url, boxes in DOCUMENTED_EXAMPLES.items()}


def digest_of(data: bytes | str) -> bytes:
    """The digest boxes are drawn from."""
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).digest()


def _unit(digest: bytes, index: int) -> float:
    """A number in ``[0, 1)`` read from two bytes of ``digest``."""
    return int.from_bytes(digest[2 * index : 2 * index + 2], "big") / 65536.0


def boxes_from_digest(digest: bytes) -> Boxes:
    """Plausible boxes for an image: a face, and a square around it with some shoulders.

    The image is 600 to 1800 px a side. The face takes 20 to 35 % of the short
    side; the extended box is about 2.2 times the face, square, inside the image,
    and contains the face with more room below it than above (the shoulders).
    """
    width = 600 + int(_unit(digest, 0) * 1200)
    height = 600 + int(_unit(digest, 1) * 1200)
    short = min(width, height)
    face_w = int(short * (0.20 + 0.15 * _unit(digest, 2)))
    face_h = int(face_w * (1.0 + 0.12 * _unit(digest, 3)))
    ext = min(short, math.ceil(max(face_w, face_h) * 2.2))
    ex1 = int(_unit(digest, 4) * (width - ext))
    ey1 = int(_unit(digest, 5) * (height - ext))
    fx1 = ex1 + (ext - face_w) // 2 + int((_unit(digest, 6) - 0.5) * 0.2 * (ext - face_w))
    fy1 = ey1 + int((ext - face_h) * (0.30 + 0.1 * _unit(digest, 7)))
    face = [fx1, fy1, fx1 + face_w, fy1 + face_h]
    return face, [ex1, ey1, ex1 + ext, ey1 + ext]


def boxes_of_url(image_url: str) -> Boxes:
    """The boxes of an image the simulator never fetches, which only its URL stands for.

    The provider's documented example image (with or without a query string,
    its path percent-encoded or not) detects as the documented boxes; any other
    URL as ``boxes_from_digest`` of the URL.
    """
    try:
        documented = _DOCUMENTED.get(_where(image_url))
    except ValueError:  # a malformed URL stands for an image all the same
        documented = None
    if documented is not None:
        face, ext = documented
        return list(face), list(ext)
    return boxes_from_digest(digest_of(image_url))


def _place(low: int, high: int, side: int, limit: int, wanted: float) -> int:
    """Where a span of ``side`` starts: near ``wanted``, over ``[low, high)``, inside ``limit``."""
    first = max(0, high - side)
    last = min(low, limit - side)
    return max(first, min(last, round(wanted)))


def boxes_in_image(digest: bytes, width: int, height: int) -> Boxes:
    """Plausible boxes inside a ``width`` x ``height`` image, where a portrait has its face.

    The face is centred horizontally (within 4 % of the width) and its centre
    sits at 42 % (+-3 %) of the height; it is 26 to 34 % of the short side
    wide and 1.12 to 1.22 times as tall. The extended box is a square 2 to 2.3
    times the face's larger side (at most the short side), takes the face in
    with about a third of the room above it and the rest below (the
    shoulders), and is shifted, never cut, to stay inside the image.
    """
    width, height = max(1, width), max(1, height)
    short = min(width, height)
    face_w = max(1, round(short * (0.26 + 0.08 * _unit(digest, 0))))
    face_h = min(height, max(1, round(face_w * (1.12 + 0.10 * _unit(digest, 1)))))
    face_w = min(face_w, width)
    cx = width * (0.5 + 0.08 * (_unit(digest, 2) - 0.5))
    cy = height * (0.42 + 0.06 * (_unit(digest, 3) - 0.5))
    fx1 = min(max(0, round(cx - face_w / 2)), width - face_w)
    fy1 = min(max(0, round(cy - face_h / 2)), height - face_h)
    ext = min(short, math.ceil(max(face_w, face_h) * (2.0 + 0.3 * _unit(digest, 4))))
    above = (ext - face_h) * (0.30 + 0.08 * _unit(digest, 5))
    ex1 = _place(fx1, fx1 + face_w, ext, width, fx1 + face_w / 2 - ext / 2)
    ey1 = _place(fy1, fy1 + face_h, ext, height, fy1 - above)
    face = [fx1, fy1, fx1 + face_w, fy1 + face_h]
    return face, [ex1, ey1, ex1 + ext, ey1 + ext]


@attrs.frozen
class Triggers:
    """The test triggers found on one image URL."""

    reject: str | None = None
    fail: str | None = None
    moderation: bool = False
    duration: float | None = None
    echo_key: bool = False


def triggers_of(image_url: str) -> Triggers:
    """Read the ``sim_*`` query parameters of ``image_url``."""
    query = parse_qs(urlsplit(image_url).query)

    def last(name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None

    duration_text = last("sim_duration")
    duration: float | None = None
    if duration_text is not None:
        try:
            duration = float(duration_text)
        except ValueError:
            duration = -1.0
        if not (duration >= 0 and math.isfinite(duration)):
            raise ServiceError(
                400,
                "InvalidParameter",
                f"sim_duration must be a non-negative number of seconds, got {duration_text!r}.",
            )
    moderation = (last("sim_moderation") or "").lower() in ("1", "true", "yes")
    echo_key = (last("sim_echo_key") or "").lower() in ("1", "true", "yes")
    return Triggers(
        last("sim_reject") or None, last("sim_fail") or None, moderation, duration, echo_key
    )

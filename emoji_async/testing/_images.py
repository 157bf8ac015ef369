"""Input images: the checks the provider makes on them, and the ones the simulator keeps.

``examine`` looks at an image's bytes the way the provider's pages say it
does (docs/wire.md), in this order (the order is inferred):

1. at most ``MAX_IMAGE_BYTES`` (10 MiB), else ``InvalidFile.Size`` (inferred: the
   protocol lists the ``InvalidFile.*`` family without a size member);
2. JPEG, PNG, BMP or WEBP that decodes, else ``InvalidFile.Format``;
3. each side ``MIN_SIDE`` to ``MAX_SIDE`` (400 to 7000) px, else
   ``InvalidFile.Resolution``.

Checks 2 and 3 decode the image with PyAV (``emoji-async[video]``). Without
it the file's header stands in for decoding: it must be one of the four
formats and announce its dimensions (``header_size``), which are checked and
place the boxes, but the pixels themselves are never looked at, so a file
damaged past its header passes. Either way a passing image's dimensions are
known and its boxes lie inside it.
Decoding is blocking: callers run ``examine`` in a worker thread.

An ``ImageBank`` keeps what the simulator learnt: the facts of each fetched
URL (small; by URL) and the bytes of recent images (by digest, bounded by count
and total size), which the result video animates.
"""

from __future__ import annotations

import hashlib
import io
import struct
from collections import OrderedDict
from typing import TYPE_CHECKING

import attrs

from ._faces import Boxes, boxes_from_digest, boxes_in_image
from ._optional import has_av

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "ALLOWED_FORMATS",
    "MAX_IMAGE_BYTES",
    "MAX_SIDE",
    "MIN_SIDE",
    "ImageBank",
    "ImageFacts",
    "Portrait",
    "decode_rgb",
    "examine",
    "header_size",
]

#: The largest input image, in bytes: "at most 10 MB" (read as MiB: inferred).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIN_SIDE = 400
MAX_SIDE = 7000
#: PyAV's names for the containers of the accepted formats.
ALLOWED_FORMATS = frozenset({"png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe"})


@attrs.frozen
class ImageFacts:
    """What the simulator knows of one image: its digest and size, and if known, its size in px.

    ``problem`` is the ``InvalidFile.*`` code detection answers for it, or ``None``.
    """

    digest: bytes
    size: int
    width: int | None = None
    height: int | None = None
    problem: str | None = None

    def boxes(self) -> Boxes:
        """``(face_bbox, ext_bbox)`` for this image: inside it when its dimensions are known."""
        if self.width is None or self.height is None:
            return boxes_from_digest(self.digest)
        return boxes_in_image(self.digest, self.width, self.height)


@attrs.frozen
class Portrait:
    """The source of a result video: an image's bytes and the extended box to animate."""

    image: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    digest: bytes
    ext_box: tuple[int, int, int, int]


#: JPEG's start-of-frame markers (the ones that carry the picture's dimensions).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a JPEG's first start-of-frame segment."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte
            at += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length, no payload
            at += 2
            continue
        if marker in (0xD9, 0xDA):  # the end, or the picture data, before any frame
            return None
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _JPEG_FRAMES:
            if length < 7 or at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return int(width), int(height)
        at += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a WEBP's first chunk (lossy, lossless or extended)."""
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a" and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20:21] == b"\x2f" and len(data) >= 25:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height as a PNG, JPEG, BMP or WEBP header announces them, without decoding.

    ``None`` when ``data`` does not start like one of those formats, or its
    header does not say.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if data[12:16] != b"IHDR" or len(data) < 24:
            return None
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg_size(data)
    if data[:2] == b"BM" and len(data) >= 26:
        (header,) = struct.unpack("<I", data[14:18])
        if header == 12:  # the old OS/2 header: 16-bit dimensions
            core_width, core_height = struct.unpack("<HH", data[18:22])
            return int(core_width), int(core_height)
        width, height = struct.unpack("<ii", data[18:26])
        return abs(int(width)), abs(int(height))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def _fits(width: int, height: int) -> bool:
    return MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE


def examine(data: bytes | None, size: int | None = None) -> ImageFacts:
    """The facts of an image (blocking: run it in a worker thread).

    ``data`` is ``None`` when the image was too large to keep; ``size`` is its
    size in bytes when that is more than ``len(data)`` says.
    """
    raw = data if data is not None else b""
    size = len(raw) if size is None else size
    digest = hashlib.sha256(raw).digest()
    if data is None or size > MAX_IMAGE_BYTES:
        return ImageFacts(digest, size, problem="InvalidFile.Size")
    announced = header_size(data)
    if not has_av():
        # Nothing to decode with: the header is all there is to go by.
        if announced is None:
            return ImageFacts(digest, size, problem="InvalidFile.Format")
        problem = None if _fits(*announced) else "InvalidFile.Resolution"
        return ImageFacts(digest, size, *announced, problem=problem)
    # A header that announces absurd dimensions is refused before any decoding.
    if announced is not None and not _fits(*announced):
        return ImageFacts(digest, size, *announced, problem="InvalidFile.Resolution")
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if container.format.name not in ALLOWED_FORMATS or not container.streams.video:
                return ImageFacts(digest, size, problem="InvalidFile.Format")
            frame = next(container.decode(container.streams.video[0]), None)
    except (av.FFmpegError, ValueError, OSError):
        return ImageFacts(digest, size, problem="InvalidFile.Format")
    if frame is None:
        return ImageFacts(digest, size, problem="InvalidFile.Format")
    width, height = int(frame.width), int(frame.height)
    problem = None if _fits(width, height) else "InvalidFile.Resolution"
    return ImageFacts(digest, size, width, height, problem)


def decode_rgb(data: bytes) -> npt.NDArray[np.uint8]:
    """The first picture of an image as an RGB array, height x width x 3 (needs PyAV, numpy)."""
    import av
    import numpy

    with av.open(io.BytesIO(data), mode="r") as container:
        frame = next(container.decode(container.streams.video[0]))
        rgb = frame.to_ndarray(format="rgb24")
    return rgb.astype(numpy.uint8, copy=False)


class ImageBank:
    """What the simulator keeps of the images it has seen, bounded.

    Facts by URL (``max_urls`` entries) and bytes by digest (``max_images``
    entries and ``max_bytes`` in all), each dropping the least recently used.
    """

    def __init__(
        self, *, max_urls: int = 1024, max_images: int = 64, max_bytes: int = 256 * 1024 * 1024
    ) -> None:
        self._max_urls = max_urls
        self._max_images = max_images
        self._max_bytes = max_bytes
        self._facts: OrderedDict[str, ImageFacts] = OrderedDict()
        self._pixels: OrderedDict[bytes, bytes] = OrderedDict()
        self._bytes = 0

    def learn(self, url: str, facts: ImageFacts, data: bytes | None) -> None:
        """Remember what ``url`` served (and its bytes, when they are worth keeping)."""
        self._facts[url] = facts
        self._facts.move_to_end(url)
        while len(self._facts) > self._max_urls:
            self._facts.popitem(last=False)
        if data is not None and facts.problem is None:
            self.keep(facts.digest, data)

    def facts(self, url: str) -> ImageFacts | None:
        """What ``url`` served when it was fetched, if that is still remembered."""
        facts = self._facts.get(url)
        if facts is not None:
            self._facts.move_to_end(url)
        return facts

    def keep(self, digest: bytes, data: bytes) -> None:
        """Keep the bytes of an image, dropping the least recently used beyond the bounds."""
        if len(data) > self._max_bytes:
            return
        old = self._pixels.pop(digest, None)
        if old is not None:
            self._bytes -= len(old)
        self._pixels[digest] = data
        self._bytes += len(data)
        while len(self._pixels) > self._max_images or self._bytes > self._max_bytes:
            _, gone = self._pixels.popitem(last=False)
            self._bytes -= len(gone)

    def pixels(self, digest: bytes) -> bytes | None:
        """The bytes of the image with ``digest``, if still kept."""
        data = self._pixels.get(digest)
        if data is not None:
            self._pixels.move_to_end(digest)
        return data

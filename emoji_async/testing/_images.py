"""Input images: the checks the provider makes on them, and the ones the simulator keeps.

``examine`` looks at an image's bytes the way PROTOCOL.md says the provider
does, in this order (the order is inferred):

1. at most ``MAX_IMAGE_BYTES`` (10 MiB), else ``InvalidFile.Size`` (inferred: the
   protocol lists the ``InvalidFile.*`` family without a size member);
2. JPEG, PNG, BMP or WEBP that decodes, else ``InvalidFile.Format``;
3. each side ``MIN_SIDE`` to ``MAX_SIDE`` (400 to 7000) px, else
   ``InvalidFile.Resolution``.

Checks 2 and 3 need PyAV (``emoji-async[video]``). Without it only the size is
checked and the dimensions stay unknown, so boxes come from the digest alone.
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
]

#: The largest input image, in bytes: "at most 10 MB" (read as MiB: inferred).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIN_SIDE = 400
MAX_SIDE = 7000
#: PyAV's names for the containers of the accepted formats.
ALLOWED_FORMATS = frozenset({"png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe"})


@attrs.frozen
class ImageFacts:
    """What the simulator knows of one image: its digest and size, and if decoded, its size in px.

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


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height read from a PNG or BMP header, without decoding anything."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:2] == b"BM" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(int(width)), abs(int(height))
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
    if not has_av():
        return ImageFacts(digest, size)
    # A header that announces absurd dimensions is refused before any decoding.
    announced = _header_size(data)
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

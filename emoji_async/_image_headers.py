"""What an image's first bytes say: its format and its size in pixels, without decoding it.

Enough of each header (PNG, JPEG, BMP, WEBP) is read for the checks of a
local file made before it is uploaded (:mod:`emoji_async._validation`), so no
imaging library is needed; whether the rest of the file decodes is the
provider's to say.
"""

from __future__ import annotations

import struct

__all__ = ["image_format", "image_size"]

#: Magic numbers of formats the service refuses, to name them in the error.
_OTHER_FORMATS = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
)


def image_format(data: bytes) -> str | None:
    """The format the first bytes announce (``PNG``, ``JPEG``, ``GIF``...), or ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"avif"):
        return "HEIF/AVIF"
    for magic, name in _OTHER_FORMATS:
        if data.startswith(magic):
            return name
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` in px from the header of a PNG, JPEG, BMP or WEBP; None if unreadable."""
    match image_format(data):
        case "PNG":
            return _png_size(data)
        case "JPEG":
            return _jpeg_size(data)
        case "BMP":
            return _bmp_size(data)
        case "WEBP":
            return _webp_size(data)
        case _:
            return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    # The first chunk is IHDR: length, type, then width and height (big-endian).
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


#: Start-of-frame markers (baseline, progressive, lossless...); C4, C8 and CC are not frames.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: Markers without a length: TEM, RST0-7, SOI.
_STANDALONE = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # Walk the marker segments until a start of frame: FF xx, a 2-byte length, the body.
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        if marker == 0xDA:  # start of scan: no frame header came first
            return None
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _SOF:
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return int(width), int(height)
        at += 2 + length
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 26:
        return None
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:  # BITMAPCOREHEADER: unsigned 16-bit sides
        width, height = struct.unpack("<HH", data[18:22])
        return int(width), int(height)
    width, height = struct.unpack("<ii", data[18:26])
    return abs(int(width)), abs(int(height))  # a negative height means top-down rows


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None

"""Animating a real portrait: the extended box of the source image, moved per template.

This is not the provider's model, only something that plainly comes from the
submitted picture and plainly differs per template. The region of the
extended box (plus a margin of a quarter of its size on each side, so motion
never shows an empty border) is scaled once to a square ``BASE`` px base. Each
frame maps the 512 x 512 output back onto that base through one affine
transform (scale, rotation about a pivot near the neck, shift) and samples it
bilinearly. A ``Motion`` is a handful of periodic or eased movements, each
zero at t = 0, so every video opens on the still, unmoved crop of the ext box.

Needs numpy and PyAV (for the one high-quality rescale); blocking, so it runs in
a worker thread like every render.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import attrs
import av
import numpy as np
import numpy.typing as npt

from ._images import decode_rgb

__all__ = ["BASE", "MARGIN", "MOTIONS", "Motion", "Pose", "motion_for", "portrait_frames"]

#: The side of the square the ext box (with its margins) is scaled to, once per video.
BASE = 768
#: The margin taken around the ext box, as a fraction of its side.
MARGIN = 0.25

RGB = npt.NDArray[np.uint8]
#: float32 at run time (numpy keeps an array's precision when a Python float joins in).
Floats = npt.NDArray[np.floating[Any]]


@attrs.frozen
class Pose:
    """Where the portrait is at one instant; all zero (scales one) is the still crop.

    ``dx``/``dy`` are fractions of the frame; ``angle`` is in degrees, clockwise;
    the scales and the rotation act about the pivot ``(0.5, pivot)``.
    """

    scale_x: float = 1.0
    scale_y: float = 1.0
    angle: float = 0.0
    dx: float = 0.0
    dy: float = 0.0
    pivot: float = 0.8


def _wave(t: float, hertz: float) -> float:
    return math.sin(2 * math.pi * hertz * t)


def _rise(t: float, hertz: float) -> float:
    """0 at t = 0, up to 1 and back, ``hertz`` times a second."""
    return (1 - math.cos(2 * math.pi * hertz * t)) / 2


def _ease(fraction: float) -> float:
    """Smoothstep from 0 to 1 as ``fraction`` goes from 0 to 1."""
    x = min(1.0, max(0.0, fraction))
    return x * x * (3 - 2 * x)


@attrs.frozen(kw_only=True)
class Motion:
    """One template's movement: each part is ``(amplitude, hertz)`` or eased over the video.

    ``pulse`` zooms in and out; ``bounce`` hops up (a fraction of the height);
    ``sway`` rocks (degrees); ``nod`` dips the head down; ``squash`` widens
    while flattening; ``shake`` jitters sideways. ``drift`` is eased in over the
    first ``settle`` fraction of the video and held: ``(dx, dy, degrees, zoom)``,
    for a droop, a lean in, a turn away.
    """

    pulse: tuple[float, float] = (0.0, 1.0)
    bounce: tuple[float, float] = (0.0, 1.0)
    sway: tuple[float, float] = (0.0, 1.0)
    nod: tuple[float, float] = (0.0, 1.0)
    squash: tuple[float, float] = (0.0, 1.0)
    shake: tuple[float, float] = (0.0, 1.0)
    drift: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    settle: float = 0.8
    pivot: float = 0.8

    def at(self, t: float, length: float) -> Pose:
        """The pose ``t`` seconds into a video of ``length`` seconds."""
        eased = _ease(t / (self.settle * length)) if length > 0 else 0.0
        drift_x, drift_y, drift_angle, drift_zoom = self.drift
        zoom = 1 + self.pulse[0] * _rise(t, self.pulse[1]) + drift_zoom * eased
        squash = self.squash[0] * _wave(t, self.squash[1])
        nod = self.nod[0] * _rise(t, self.nod[1])
        return Pose(
            scale_x=zoom * (1 + squash),
            scale_y=zoom * (1 - squash) * (1 - nod / 2),
            angle=self.sway[0] * _wave(t, self.sway[1]) + drift_angle * eased,
            dx=self.shake[0] * _wave(t, self.shake[1]) + drift_x * eased,
            dy=-self.bounce[0] * abs(_wave(t, self.bounce[1] / 2)) + nod + drift_y * eased,
            pivot=self.pivot,
        )


#: Each template's movement, after its gloss (deterministic, and each one different).
MOTIONS: dict[str, Motion] = {
    "mengwa_kaixin": Motion(bounce=(0.05, 1.5), pulse=(0.04, 1.5)),
    "mengwa_dengyan": Motion(drift=(0.0, 0.02, 0.0, 0.18), settle=0.3, shake=(0.006, 7.0)),
    "mengwa_gandong": Motion(drift=(0.0, 0.0, 0.0, 0.08), sway=(3.0, 0.5), nod=(0.02, 0.5)),
    "mengwa_renzhen_1": Motion(nod=(0.04, 1.2)),
    "mengwa_jidong": Motion(squash=(0.09, 2.5), bounce=(0.05, 2.5), pivot=0.95),
    "mengwa_kun_1": Motion(drift=(0.0, 0.08, 9.0, 0.0), sway=(1.5, 0.3), pulse=(0.02, 0.25)),
    "mengwa_jiaoxie": Motion(sway=(6.0, 0.8), shake=(0.03, 0.8)),
    "dagong_kaixin": Motion(bounce=(0.03, 2.0), sway=(4.0, 1.0)),
    "dagong_yangwang": Motion(drift=(0.0, -0.06, 0.0, 0.05), nod=(-0.02, 0.7)),
    "dagong_kunhuo": Motion(sway=(10.0, 0.6)),
    "dagong_zhuakuang": Motion(shake=(0.035, 5.0), sway=(5.0, 4.0), pulse=(0.05, 3.0)),
    "dagong_wunai": Motion(squash=(0.05, 0.5), drift=(0.0, 0.04, 4.0, 0.0), pivot=0.95),
    "dagong_weixiao": Motion(pulse=(0.05, 1.0)),
    "dagong_ganji": Motion(nod=(0.08, 0.9)),
    "jingdian_tiaopi": Motion(sway=(8.0, 2.0), bounce=(0.02, 2.0)),
    "jingdian_deyi_1": Motion(drift=(0.0, -0.02, -5.0, 0.06), sway=(2.0, 0.5)),
    "jingdian_qidai": Motion(drift=(0.0, 0.0, 0.0, 0.12), bounce=(0.015, 3.0)),
    "jingdian_landuo_1": Motion(
        drift=(0.0, 0.05, -7.0, 0.0), sway=(2.0, 0.25), squash=(0.03, 0.3), settle=1.0
    ),
    "jingdian_xianqi": Motion(drift=(0.06, 0.0, 4.0, -0.04), squash=(-0.03, 0.4), settle=0.5),
    "jingdian_lei": Motion(drift=(0.0, 0.07, 3.0, 0.0), squash=(0.04, 0.4), settle=1.0),
}

_DEFAULT = Motion(pulse=(0.04, 1.0))


def motion_for(driven_id: str) -> Motion:
    """The movement of a template (a gentle zoom pulse for one the table does not know)."""
    return MOTIONS.get(driven_id, _DEFAULT)


def _base(rgb: RGB, ext_box: tuple[int, int, int, int]) -> RGB:
    """The ext box with its margins, ``BASE`` px square, edges repeated past the image."""
    height, width = rgb.shape[:2]
    x1, y1, x2, y2 = ext_box
    box_w, box_h = max(1, x2 - x1), max(1, y2 - y1)
    left, top = x1 - MARGIN * box_w, y1 - MARGIN * box_h
    span_w, span_h = box_w * (1 + 2 * MARGIN), box_h * (1 + 2 * MARGIN)
    kx, ky = BASE / span_w, BASE / span_h
    cx0, cy0 = max(0, math.floor(left)), max(0, math.floor(top))
    cx1, cy1 = min(width, math.ceil(left + span_w)), min(height, math.ceil(top + span_h))
    if cx1 <= cx0 or cy1 <= cy0:  # the box lies outside the image: use the whole image
        cx0, cy0, cx1, cy1 = 0, 0, width, height
        left, top, kx, ky = 0.0, 0.0, BASE / width, BASE / height
    sub = np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1])
    out_w = max(1, round((cx1 - cx0) * kx))
    out_h = max(1, round((cy1 - cy0) * ky))
    shrinking = out_w < sub.shape[1]
    scaled = (
        av.VideoFrame.from_ndarray(sub, format="rgb24")
        .reformat(width=out_w, height=out_h, interpolation="AREA" if shrinking else "BICUBIC")
        .to_ndarray(format="rgb24")
    )
    pad_left = min(BASE, max(0, round((cx0 - left) * kx)))
    pad_top = min(BASE, max(0, round((cy0 - top) * ky)))
    pad_right = max(0, BASE - pad_left - out_w)
    pad_bottom = max(0, BASE - pad_top - out_h)
    padding = ((pad_top, pad_bottom), (pad_left, pad_right), (0, 0))
    padded: RGB = np.pad(scaled, padding, mode="edge")
    return padded[:BASE, :BASE]


class _Warper:
    """Samples the base through one pose at a time, bilinearly, edges clamped."""

    def __init__(self, base: RGB, size: int) -> None:
        # One flat float plane per channel: gathering scalars is several times
        # faster than gathering RGB triples.
        self._planes = [base[..., c].astype(np.float32).ravel() for c in range(3)]
        centres = (np.arange(size, dtype=np.float32) + 0.5) / size
        self._u, self._v = np.meshgrid(centres, centres)
        self._size = size
        self._k = BASE / (1 + 2 * MARGIN)

    def frame(self, pose: Pose) -> RGB:
        # Output point o = P + d + R S (p - P), inverted: p = P + S^-1 R^-1 (o - P - d).
        theta = math.radians(pose.angle)
        cos, sin = math.cos(theta), math.sin(theta)
        a00, a01 = cos / pose.scale_x, sin / pose.scale_x
        a10, a11 = -sin / pose.scale_y, cos / pose.scale_y
        px, py = 0.5, pose.pivot
        ox, oy = px + pose.dx, py + pose.dy
        k, c = self._k, self._k * MARGIN - 0.5
        x = k * (a00 * (self._u - ox) + a01 * (self._v - oy) + px) + c
        y = k * (a10 * (self._u - ox) + a11 * (self._v - oy) + py) + c
        return self._sample(x, y)

    def _sample(self, x: Floats, y: Floats) -> RGB:
        edge = BASE - 1.001  # so that x0 + 1 stays inside
        x = np.clip(x, 0, edge)
        y = np.clip(y, 0, edge)
        x0 = x.astype(np.int32)
        y0 = y.astype(np.int32)
        fx, fy = x - x0, y - y0
        weights = ((1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy)
        first = y0 * BASE + x0
        corners = (first, first + 1, first + BASE, first + BASE + 1)
        out: RGB = np.empty((self._size, self._size, 3), dtype=np.uint8)
        for channel, plane in enumerate(self._planes):
            value = np.full(first.shape, 0.5, dtype=np.float32)
            for corner, weight in zip(corners, weights, strict=True):
                value += plane.take(corner) * weight
            out[..., channel] = value
        return out


def portrait_frames(
    image: bytes,
    ext_box: tuple[int, int, int, int],
    driven_id: str,
    frames: int,
    fps: int,
    size: int,
) -> Iterator[RGB]:
    """``frames`` RGB frames, ``size`` px square, of the portrait moving as ``driven_id`` says."""
    warper = _Warper(_base(decode_rgb(image), ext_box), size)
    motion = motion_for(driven_id)
    length = frames / fps
    for index in range(frames):
        yield warper.frame(motion.at(index / fps, length))

"""Drawing the sample portraits with numpy: flat cartoon faces, head and shoulders.

Each portrait is a ``Look``: background, skin, hair (colour and style), eyes
(shape and iris colour), mouth, shirt, and optionally glasses, a beard or
blush. Shapes are filled ellipses, rings and rectangles painted at twice the
final size and averaged down, so edges are smooth. Everything is
deterministic: the same look always gives the same pixels.

The face sits where ``boxes_in_image`` expects a portrait's face: centred
horizontally, its centre at about 42 % of the height, about a third of the
width wide.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

__all__ = ["LOOKS", "SIZE", "Look", "draw"]

#: Side of a sample portrait, in px.
SIZE = 640
_SUPER = 2  # painted at twice the size, then averaged down

Color = tuple[int, int, int]
Floats = npt.NDArray[np.floating[Any]]


@attrs.frozen(kw_only=True)
class Look:
    """Everything that tells one sample portrait from another."""

    sky: Color  # background, top
    ground: Color  # background, bottom
    skin: Color
    hair: Color
    hair_style: str  # short, long, bob, bun, curly, bald, spiky
    eyes: str  # round, almond, narrow
    iris: Color
    mouth: str  # smile, grin, open, flat, smirk
    shirt: Color
    glasses: Color | None = None
    beard: bool = False
    blush: bool = False


#: The dozen sample portraits, by name.
LOOKS: dict[str, Look] = {
    "ada": Look(
        sky=(196, 221, 245),
        ground=(150, 185, 225),
        skin=(246, 214, 190),
        hair=(92, 58, 36),
        hair_style="bun",
        eyes="almond",
        iris=(70, 110, 60),
        mouth="smile",
        shirt=(128, 40, 64),
        blush=True,
    ),
    "grace": Look(
        sky=(250, 232, 200),
        ground=(230, 190, 140),
        skin=(236, 196, 164),
        hair=(200, 200, 205),
        hair_style="bob",
        eyes="round",
        iris=(60, 90, 140),
        mouth="grin",
        shirt=(30, 50, 110),
        glasses=(40, 40, 40),
    ),
    "alan": Look(
        sky=(210, 235, 210),
        ground=(150, 190, 150),
        skin=(240, 205, 178),
        hair=(60, 40, 30),
        hair_style="short",
        eyes="narrow",
        iris=(90, 70, 40),
        mouth="flat",
        shirt=(120, 120, 130),
    ),
    "edsger": Look(
        sky=(235, 235, 235),
        ground=(190, 190, 200),
        skin=(232, 190, 160),
        hair=(170, 170, 170),
        hair_style="bald",
        eyes="round",
        iris=(80, 110, 150),
        mouth="smirk",
        shirt=(40, 40, 50),
        glasses=(120, 80, 30),
        beard=True,
    ),
    "barbara": Look(
        sky=(255, 220, 225),
        ground=(230, 160, 180),
        skin=(198, 140, 100),
        hair=(40, 26, 20),
        hair_style="curly",
        eyes="almond",
        iris=(60, 40, 25),
        mouth="open",
        shirt=(240, 200, 60),
    ),
    "donald": Look(
        sky=(220, 210, 250),
        ground=(170, 150, 220),
        skin=(250, 220, 200),
        hair=(235, 225, 215),
        hair_style="short",
        eyes="narrow",
        iris=(70, 100, 130),
        mouth="smile",
        shirt=(60, 120, 70),
        glasses=(20, 20, 20),
        beard=True,
    ),
    "margaret": Look(
        sky=(200, 240, 240),
        ground=(120, 190, 200),
        skin=(224, 176, 140),
        hair=(150, 80, 40),
        hair_style="long",
        eyes="round",
        iris=(50, 120, 90),
        mouth="grin",
        shirt=(200, 80, 60),
        blush=True,
    ),
    "linus": Look(
        sky=(255, 245, 210),
        ground=(240, 215, 150),
        skin=(245, 210, 185),
        hair=(210, 170, 90),
        hair_style="spiky",
        eyes="round",
        iris=(90, 140, 200),
        mouth="open",
        shirt=(50, 50, 60),
    ),
    "frances": Look(
        sky=(230, 215, 200),
        ground=(190, 160, 135),
        skin=(141, 94, 64),
        hair=(25, 20, 18),
        hair_style="bun",
        eyes="almond",
        iris=(50, 30, 20),
        mouth="smirk",
        shirt=(90, 40, 120),
        glasses=(170, 30, 40),
    ),
    "ken": Look(
        sky=(205, 225, 255),
        ground=(100, 140, 200),
        skin=(212, 160, 120),
        hair=(30, 30, 35),
        hair_style="short",
        eyes="narrow",
        iris=(45, 35, 30),
        mouth="flat",
        shirt=(200, 200, 205),
        beard=True,
    ),
    "radia": Look(
        sky=(245, 225, 255),
        ground=(200, 170, 230),
        skin=(110, 72, 50),
        hair=(20, 16, 14),
        hair_style="long",
        eyes="round",
        iris=(40, 28, 20),
        mouth="smile",
        shirt=(20, 140, 140),
    ),
    "dennis": Look(
        sky=(225, 240, 220),
        ground=(170, 200, 150),
        skin=(190, 130, 95),
        hair=(70, 50, 40),
        hair_style="curly",
        eyes="almond",
        iris=(60, 45, 30),
        mouth="grin",
        shirt=(150, 60, 40),
        glasses=(30, 30, 30),
        beard=True,
    ),
}


def _shade(color: Color, factor: float) -> Color:
    r, g, b = (min(255, max(0, round(v * factor))) for v in color)
    return r, g, b


def _reach(xs: Floats, ys: Floats, cx: float, cy: float, rx: float, ry: float) -> Floats:
    """Where each pixel centre lies against an ellipse: under 1 inside, 1 on its edge."""
    reach: Floats = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2
    return reach


class _Canvas:
    """An RGB picture painted in output coordinates, held at ``_SUPER`` times the size."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.px = np.zeros((size * _SUPER, size * _SUPER, 3), dtype=np.float32)

    def gradient(self, top: Color, bottom: Color) -> None:
        t = np.linspace(0.0, 1.0, self.px.shape[0], dtype=np.float32)[:, None, None]
        self.px[:] = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)

    def _region(
        self, x0: float, y0: float, x1: float, y1: float
    ) -> tuple[slice, slice, Floats, Floats] | None:
        """The pixel slices covering a box, and the centres of those pixels, in output units."""
        top = self.px.shape[0]
        sx0, sy0 = max(0, int(x0 * _SUPER)), max(0, int(y0 * _SUPER))
        sx1, sy1 = min(top, int(x1 * _SUPER) + 2), min(top, int(y1 * _SUPER) + 2)
        if sx1 <= sx0 or sy1 <= sy0:
            return None
        xs = ((np.arange(sx0, sx1, dtype=np.float32) + 0.5) / _SUPER)[None, :]
        ys = ((np.arange(sy0, sy1, dtype=np.float32) + 0.5) / _SUPER)[:, None]
        return slice(sy0, sy1), slice(sx0, sx1), xs, ys

    def _fill(
        self, rows: slice, cols: slice, mask: npt.NDArray[np.bool_], color: Color, alpha: float
    ) -> None:
        patch = self.px[rows, cols]
        paint = np.array(color, dtype=np.float32)
        patch[mask] = patch[mask] * (1 - alpha) + paint * alpha

    def ellipse(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        color: Color,
        *,
        alpha: float = 1.0,
        lower: bool = False,
        upper: bool = False,
    ) -> None:
        """A filled ellipse (only its lower or upper half when asked)."""
        region = self._region(cx - rx, cy - ry, cx + rx, cy + ry)
        if region is None:
            return
        rows, cols, xs, ys = region
        mask = _reach(xs, ys, cx, cy, rx, ry) <= 1.0
        if lower:
            mask &= ys >= cy
        if upper:
            mask &= ys <= cy
        self._fill(rows, cols, mask, color, alpha)

    def ring(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        width: float,
        color: Color,
        *,
        lower: bool = False,
    ) -> None:
        """An elliptical outline ``width`` thick (only its lower half when asked)."""
        region = self._region(cx - rx - width, cy - ry - width, cx + rx + width, cy + ry + width)
        if region is None:
            return
        rows, cols, xs, ys = region
        outer = _reach(xs, ys, cx, cy, rx + width / 2, ry + width / 2) <= 1.0
        inner = _reach(xs, ys, cx, cy, rx - width / 2, ry - width / 2) < 1.0
        mask = outer & ~inner
        if lower:
            mask &= ys >= cy
        self._fill(rows, cols, mask, color, 1.0)

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: Color) -> None:
        """A filled axis-aligned rectangle."""
        region = self._region(x0, y0, x1, y1)
        if region is None:
            return
        rows, cols, xs, ys = region
        mask = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
        self._fill(rows, cols, mask, color, 1.0)

    def finish(self) -> npt.NDArray[np.uint8]:
        """The picture at its final size, each pixel the mean of its painted block."""
        blocks = self.px.reshape(self.size, _SUPER, self.size, _SUPER, 3).mean(axis=(1, 3))
        out: npt.NDArray[np.uint8] = np.clip(blocks + 0.5, 0, 255).astype(np.uint8)
        return out


def _hair_back(c: _Canvas, look: Look, cx: float, cy: float) -> None:
    style, hair = look.hair_style, look.hair
    if style == "long":
        c.ellipse(cx, cy + 60, 150, 210, hair)
    elif style == "bob":
        c.ellipse(cx, cy + 10, 150, 160, hair)
        c.rect(cx - 150, cy, cx + 150, cy + 100, hair)
    elif style == "curly":
        for dx, dy in ((-120, -60), (120, -60), (-90, -125), (90, -125), (0, -150), (-135, 10),
                       (135, 10), (-45, -155), (45, -155)):  # fmt: skip
            c.ellipse(cx + dx, cy + dy, 62, 62, hair)
    elif style == "bun":
        c.ellipse(cx, cy - 160, 60, 52, hair)


def _hair_front(c: _Canvas, look: Look, cx: float, cy: float) -> None:
    style, hair = look.hair_style, look.hair
    if style == "bald":
        for side in (-1, 1):
            c.ellipse(cx + side * 108, cy - 20, 22, 55, hair)
        return
    if style == "spiky":
        for dx in range(-100, 101, 40):
            c.ellipse(cx + dx, cy - 128, 24, 48, hair)
    c.ellipse(cx, cy - 75, 118, 78, hair, upper=True)
    if style in ("short", "spiky"):
        c.ellipse(cx, cy - 80, 112, 40, hair, lower=True)
    elif style in ("bob", "long", "bun"):
        c.ellipse(cx - 40, cy - 82, 80, 38, hair, lower=True)
        c.ellipse(cx + 60, cy - 86, 62, 30, hair, lower=True)
    elif style == "curly":
        for dx in (-70, -25, 25, 70):
            c.ellipse(cx + dx, cy - 100, 34, 34, hair)


def _eyes(c: _Canvas, look: Look, cx: float, cy: float) -> None:
    rx, ry = {"round": (22, 20), "almond": (26, 14), "narrow": (24, 9)}[look.eyes]
    brow = _shade(look.hair, 0.8) if look.hair_style != "bald" else _shade(look.skin, 0.6)
    for side in (-1, 1):
        ex, ey = cx + side * 46, cy - 10
        c.ellipse(ex, ey, rx, ry, (250, 250, 248))
        iris = min(ry, 12)
        c.ellipse(ex, ey + 1, iris, iris, look.iris)
        c.ellipse(ex, ey + 1, iris * 0.5, iris * 0.5, (15, 15, 20))
        c.ellipse(ex + 4, ey - 3, 3, 3, (255, 255, 255))
        c.ellipse(ex, ey - ry - 14, 28, 6, brow)
        if look.glasses is not None:
            c.ring(ex, ey, 36, 30, 6, look.glasses)
    if look.glasses is not None:
        c.rect(cx - 12, cy - 14, cx + 12, cy - 9, look.glasses)


def _mouth(c: _Canvas, look: Look, cx: float, cy: float) -> None:
    lips, dark = (170, 60, 70), (90, 20, 30)
    my = cy + 70
    if look.beard:
        c.ellipse(cx, cy + 85, 92, 70, look.hair, lower=True)
        c.ellipse(cx, my + 4, 50, 22, look.hair)
    if look.mouth == "smile":
        c.ring(cx, my - 8, 38, 22, 7, lips, lower=True)
    elif look.mouth == "grin":
        c.ellipse(cx, my - 4, 40, 26, dark, lower=True)
        c.rect(cx - 30, my - 4, cx + 30, my + 5, (250, 250, 245))
    elif look.mouth == "open":
        c.ellipse(cx, my + 4, 20, 16, dark)
        c.ellipse(cx, my + 12, 12, 6, (200, 90, 100))
    elif look.mouth == "smirk":
        c.ring(cx + 14, my - 10, 28, 14, 6, lips, lower=True)
    else:  # flat
        c.rect(cx - 28, my - 2, cx + 28, my + 4, lips)


def draw(look: Look) -> npt.NDArray[np.uint8]:
    """The portrait of ``look``, ``SIZE`` px square, RGB."""
    c = _Canvas(SIZE)
    c.gradient(look.sky, look.ground)
    cx, cy = SIZE / 2, SIZE * 0.43  # the face centre
    _hair_back(c, look, cx, cy)
    c.ellipse(cx, SIZE + 40, 250, 210, look.shirt)  # shoulders
    c.ellipse(cx, SIZE - 160, 70, 30, _shade(look.shirt, 0.8), lower=True)  # collar shadow
    c.rect(cx - 42, cy + 90, cx + 42, SIZE - 165, _shade(look.skin, 0.88))  # neck
    c.ellipse(cx, SIZE - 168, 42, 18, _shade(look.skin, 0.88))
    for side in (-1, 1):
        c.ellipse(cx + side * 108, cy + 5, 20, 30, _shade(look.skin, 0.94))  # ears
    c.ellipse(cx, cy, 108, 132, look.skin)  # head
    _hair_front(c, look, cx, cy)
    _eyes(c, look, cx, cy)
    c.ellipse(cx, cy + 28, 11, 20, _shade(look.skin, 0.86))  # nose
    if look.blush:
        for side in (-1, 1):
            c.ellipse(cx + side * 62, cy + 40, 20, 12, (240, 120, 130), alpha=0.35)
    _mouth(c, look, cx, cy)
    return c.finish()

"""Result videos: a real, small H.264 MP4 per task, or a labelled placeholder.

With PyAV (``pip install emoji-async[video]``) and ``render_videos=True``, a
task's video is a silent H.264 MP4, yuv420p, 512x512 at 15 fps, exactly its
template's ``video_seconds`` long, as the provider's are. What it shows:

- the submitted portrait, when the simulator has its pixels (an upload, or an
  image fetched from a loopback URL) and numpy is installed too: the extended
  box, scaled to 512x512 and moved as the template says (``_animate``). Two
  tasks on the same image and template get the same video, rendered once;
- otherwise a cartoon face whose colours, rhythm and expression follow the
  template (with a slight tint per task).

Encoding uses libx264 ``ultrafast`` and runs in a worker thread, never on the
event loop, once per video; the last few videos are cached.

Without PyAV, or with ``render_videos=False``, the body is a short text
placeholder served as ``application/octet-stream`` with the header
``X-Emoji-Simulator: placeholder``, so nobody mistakes it for a video.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import TYPE_CHECKING

import attrs

from ._images import Portrait
from ._optional import has_av, has_numpy

if TYPE_CHECKING:
    import av

__all__ = [
    "FPS",
    "PLACEHOLDER_HEADER",
    "SIZE",
    "Video",
    "VideoStore",
    "render_mp4",
    "render_portrait_mp4",
]

SIZE = 512
FPS = 15
#: Names a placeholder answer: ``(header, value)``.
PLACEHOLDER_HEADER = ("X-Emoji-Simulator", "placeholder")


@attrs.frozen
class Video:
    """The body of one result download."""

    body: bytes
    content_type: str
    placeholder: bool


@attrs.frozen
class _Look:
    """What differs between templates (and, slightly, between tasks)."""

    background: tuple[int, int, int]  # Y, U, V
    skin: tuple[int, int, int]
    feature: int  # luma of eyes and mouth
    speed: float  # expression cycles per second
    eye_open: float  # 1 wide open .. 0.3 sleepy
    mouth: float  # how far the mouth opens


def _look(driven_id: str, task_id: str) -> _Look:
    h = hashlib.sha256(driven_id.encode()).digest()
    tint = hashlib.sha256(task_id.encode()).digest()[0] % 16 - 8
    series = driven_id.split("_", 1)[0]
    skin_y = {"mengwa": 190, "dagong": 170, "jingdian": 180}.get(series, 180)
    return _Look(
        background=(60 + h[0] % 120, 64 + h[1] % 128, 64 + (h[2] + tint) % 128),
        skin=(skin_y + tint, 108 + h[3] % 12, 150 + h[4] % 16),
        feature=20 + h[5] % 30,
        speed=0.5 + (h[6] % 6) / 4,
        eye_open=0.3 + (h[7] % 8) / 10,
        mouth=0.2 + (h[8] % 9) / 10,
    )


def _ellipse(
    plane: bytearray, width: int, cx: float, cy: float, rx: float, ry: float, value: int
) -> None:
    """Paint a filled ellipse into one plane of ``width`` x ``width`` bytes."""
    if rx <= 0 or ry <= 0:
        return
    row = bytes([max(0, min(255, value))]) * width
    for y in range(max(0, math.ceil(cy - ry)), min(width, math.floor(cy + ry) + 1)):
        dy = (y - cy) / ry
        half = rx * math.sqrt(max(0.0, 1.0 - dy * dy))
        x0, x1 = max(0, int(cx - half)), min(width, int(cx + half) + 1)
        if x1 > x0:
            plane[y * width + x0 : y * width + x1] = row[: x1 - x0]


def _planes(look: _Look, index: int) -> tuple[bytes, bytes, bytes]:
    """The Y, U and V planes of frame ``index``."""
    t = index / FPS
    phase = 2 * math.pi * look.speed * t
    half = SIZE // 2
    luma = bytearray(bytes([look.background[0]]) * (SIZE * SIZE))
    u = bytearray(bytes([look.background[1]]) * (half * half))
    v = bytearray(bytes([look.background[2]]) * (half * half))
    cx, cy = SIZE / 2, 240 + 12 * math.sin(phase)
    _ellipse(luma, SIZE, cx, cy, 150, 175, look.skin[0])
    _ellipse(u, half, cx / 2, cy / 2, 75, 87.5, look.skin[1])
    _ellipse(v, half, cx / 2, cy / 2, 75, 87.5, look.skin[2])
    blink = index % (2 * FPS) in (0, 1)
    eye_ry = 20 * (0.15 if blink else look.eye_open)
    for side in (-1, 1):
        _ellipse(luma, SIZE, cx + side * 58, cy - 40, 20, eye_ry, look.feature)
    mouth_ry = 4 + 30 * look.mouth * (0.5 + 0.5 * math.sin(2 * phase))
    _ellipse(luma, SIZE, cx, cy + 75, 45 + 15 * look.mouth, mouth_ry, look.feature)
    return bytes(luma), bytes(u), bytes(v)


def _cartoon(driven_id: str, seconds: int, task_id: str) -> Iterable[av.VideoFrame]:
    import av

    look = _look(driven_id, task_id)
    for index in range(seconds * FPS):
        frame = av.VideoFrame(SIZE, SIZE, "yuv420p")
        for plane, data in zip(frame.planes, _planes(look, index), strict=True):
            plane.update(data)
        yield frame


def _encode(frames: Iterable[av.VideoFrame]) -> bytes:
    """The frames as a silent H.264 MP4, yuv420p, ``SIZE`` px square at ``FPS``."""
    import av

    codec = "libx264" if "libx264" in av.codecs_available else "h264"
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=FPS)
        if not isinstance(stream, av.VideoStream):  # pragma: no cover - a codec mix-up
            raise TypeError(f"{codec} did not open a video stream")
        stream.width = SIZE
        stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        for index, frame in enumerate(frames):
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def render_mp4(driven_id: str, seconds: int, task_id: str) -> bytes:
    """Encode the cartoon video of one task (blocking: run it in a worker thread)."""
    return _encode(_cartoon(driven_id, seconds, task_id))


def render_portrait_mp4(portrait: Portrait, driven_id: str, seconds: int) -> bytes:
    """Encode the video of a real portrait moving per template (blocking; needs numpy)."""
    import av

    from ._animate import portrait_frames

    frames = portrait_frames(portrait.image, portrait.ext_box, driven_id, seconds * FPS, FPS, SIZE)
    return _encode(
        av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p") for rgb in frames
    )


def _placeholder(task_id: str, driven_id: str, seconds: int) -> Video:
    text = (
        f"emoji-async simulator placeholder: task {task_id}, template {driven_id}, "
        f"{seconds} s. Install PyAV (emoji-async[video]) for a real MP4.\n"
    )
    return Video(text.encode(), "application/octet-stream", placeholder=True)


class VideoStore:
    """Renders each video once, off the event loop, and keeps the last few."""

    def __init__(self, *, render: bool, capacity: int = 32) -> None:
        self.real = render and has_av()
        self.animates = self.real and has_numpy()
        self._capacity = capacity
        self._cache: OrderedDict[str, Video] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[bytes]] = {}

    async def get(
        self, task_id: str, driven_id: str, seconds: int, portrait: Portrait | None = None
    ) -> Video:
        """The video of a succeeded task: its portrait moving when given, else the cartoon."""
        if not self.real:
            return _placeholder(task_id, driven_id, seconds)
        render: Callable[[], bytes]
        if portrait is not None and self.animates:
            x1, y1, x2, y2 = portrait.ext_box
            key = f"portrait:{portrait.digest.hex()}:{x1},{y1},{x2},{y2}:{driven_id}:{seconds}"
            render = functools.partial(render_portrait_mp4, portrait, driven_id, seconds)
        else:
            key = f"cartoon:{task_id}"
            render = functools.partial(render_mp4, driven_id, seconds, task_id)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(asyncio.to_thread(render))
            self._inflight[key] = future
            future.add_done_callback(functools.partial(self._settle, key))
        # Shielded: a client that hangs up must not cancel a render others wait for.
        return Video(await asyncio.shield(future), "video/mp4", placeholder=False)

    def _settle(self, key: str, future: asyncio.Future[bytes]) -> None:
        self._inflight.pop(key, None)
        if future.cancelled() or future.exception() is not None:
            return
        self._cache[key] = Video(future.result(), "video/mp4", placeholder=False)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)

    async def aclose(self) -> None:
        """Wait for renders still running, so none outlives the server."""
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)

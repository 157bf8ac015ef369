"""Result videos: a real, small H.264 MP4 per task, or a labelled placeholder.

With PyAV (``pip install emoji-async[video]``) and ``render_videos=True``, a
task's video is a silent H.264 MP4, yuv420p, 512x512 at 15 fps, exactly its
template's ``video_seconds`` long, as the provider's are. The picture is a
cartoon face whose colours, rhythm and expression follow the template (with a
slight tint per task), cheap enough to encode in tens of milliseconds with
libx264 ``ultrafast``. Encoding runs in a worker thread, never on the event
loop, once per task; the last few videos are cached.

Without PyAV, or with ``render_videos=False``, the body is a short text
placeholder served as ``application/octet-stream`` with the header
``X-Emoji-Simulator: placeholder``, so nobody mistakes it for a video.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib.util
import io
import math
from collections import OrderedDict
from fractions import Fraction

import attrs

__all__ = [
    "FPS",
    "PLACEHOLDER_HEADER",
    "SIZE",
    "Video",
    "VideoStore",
    "render_mp4",
    "video_available",
]

SIZE = 512
FPS = 15
#: Names a placeholder answer: ``(header, value)``.
PLACEHOLDER_HEADER = ("X-Emoji-Simulator", "placeholder")


@functools.cache
def video_available() -> bool:
    """Whether PyAV can be imported here (checked once)."""
    if importlib.util.find_spec("av") is None:
        return False
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


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


def render_mp4(driven_id: str, seconds: int, task_id: str) -> bytes:
    """Encode the video of one task (blocking: run it in a worker thread)."""
    import av

    look = _look(driven_id, task_id)
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
        for index in range(seconds * FPS):
            frame = av.VideoFrame(SIZE, SIZE, "yuv420p")
            for plane, data in zip(frame.planes, _planes(look, index), strict=True):
                plane.update(data)
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def _placeholder(task_id: str, driven_id: str, seconds: int) -> Video:
    text = (
        f"emoji-async simulator placeholder: task {task_id}, template {driven_id}, "
        f"{seconds} s. Install PyAV (emoji-async[video]) for a real MP4.\n"
    )
    return Video(text.encode(), "application/octet-stream", placeholder=True)


class VideoStore:
    """Renders each task's video once, off the event loop, and keeps the last few."""

    def __init__(self, *, render: bool, capacity: int = 32) -> None:
        self.real = render and video_available()
        self._capacity = capacity
        self._cache: OrderedDict[str, Video] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[bytes]] = {}

    async def get(self, task_id: str, driven_id: str, seconds: int) -> Video:
        """The video of a succeeded task."""
        if not self.real:
            return _placeholder(task_id, driven_id, seconds)
        cached = self._cache.get(task_id)
        if cached is not None:
            self._cache.move_to_end(task_id)
            return cached
        future = self._inflight.get(task_id)
        if future is None:
            future = asyncio.ensure_future(
                asyncio.to_thread(render_mp4, driven_id, seconds, task_id)
            )
            self._inflight[task_id] = future
            future.add_done_callback(functools.partial(self._settle, task_id))
        # Shielded: a client that hangs up must not cancel a render others wait for.
        return Video(await asyncio.shield(future), "video/mp4", placeholder=False)

    def _settle(self, task_id: str, future: asyncio.Future[bytes]) -> None:
        self._inflight.pop(task_id, None)
        if future.cancelled() or future.exception() is not None:
            return
        self._cache[task_id] = Video(future.result(), "video/mp4", placeholder=False)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)

    async def aclose(self) -> None:
        """Wait for renders still running, so none outlives the server."""
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)

"""The simulator looks at images as the provider does: loopback fetches, checks, real portraits.

Everything runs over real loopback HTTP with a plain ``aiohttp.ClientSession``
(no client code of ours, no mocks): the simulator, and where a test needs an
image host that misbehaves, a small aiohttp server of the test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

import emoji_async.testing
from emoji_async._templates import template_info
from emoji_async.testing import (
    SAMPLE_PORTRAITS,
    SimulatorConfig,
    fixed_duration,
    sample_portrait,
    serve,
)
from emoji_async.testing._fetch import is_loopback

from .simhttp import DETECT, SUBMIT, UNTHROTTLED, Answer, RawApi

RESOLVE = {"X-DashScope-OssResourceResolve": "enable"}
FAST = SimulatorConfig(
    time_scale=0.001,
    limits=attrs.evolve(UNTHROTTLED, running_tasks=None),
    durations=fixed_duration(1.0),
    fetch_timeout=0.5,
)
Box = list[int]


class Api(RawApi):
    """The simulator's endpoints, spoken in plain HTTP."""

    async def detect(self, image_url: str, headers: Mapping[str, str] | None = None) -> Answer:
        body = {
            "model": "emoji-detect-v1",
            "input": {"image_url": image_url},
            "parameters": {"ratio": "1:1"},
        }
        return await self.call("POST", DETECT, json=body, headers=headers)

    async def boxes(self, image_url: str, headers: Mapping[str, str] | None = None) -> Box:
        """Detect ``image_url`` and return its ext box (asserting the detection passed)."""
        answer = await self.detect(image_url, headers)
        assert answer.status == 200, answer.body
        ext: Box = answer.body["output"]["ext_bbox_face"]
        return ext

    async def submit(
        self,
        image_url: str,
        driven_id: str = "dagong_weixiao",
        *,
        boxes: tuple[Box, Box] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        face, ext = boxes if boxes is not None else self.sim.boxes_for(image_url)
        body = {
            "model": "emoji-v1",
            "input": {
                "image_url": image_url,
                "driven_id": driven_id,
                "face_bbox": face,
                "ext_bbox": ext,
            },
        }
        sent = {"X-DashScope-Async": "enable", **(headers or {})}
        return await self.call("POST", SUBMIT, json=body, headers=sent)

    async def video(
        self,
        image_url: str,
        driven_id: str = "dagong_weixiao",
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """Submit ``image_url`` (already detected), wait for success, download the video."""
        answer = await self.submit(image_url, driven_id, headers=headers)
        assert answer.status == 200, answer.body
        output = await self.ended(answer.body["output"]["task_id"])
        assert output["task_status"] == "SUCCEEDED", output
        download = await self.call("GET", output["video_url"], key=None)
        assert download.status == 200
        assert download.headers["Content-Type"] == "video/mp4"
        body: bytes = download.body
        return body

    async def ended(self, task_id: str) -> dict[str, Any]:
        """The task's ``output`` once it has ended (polled on the compressed clock)."""
        async with asyncio.timeout(10):
            while True:
                answer = await self.call("GET", f"/tasks/{task_id}")
                output: dict[str, Any] = answer.body["output"]
                if output["task_status"] not in ("PENDING", "RUNNING"):
                    return output
                await asyncio.sleep(0.005)

    async def upload(self, model: str, content: bytes, name: str) -> str:
        policy = await self.call("GET", "/uploads", params={"action": "getPolicy", "model": model})
        data = policy.body["data"]
        form = aiohttp.FormData()
        key = f"{data['upload_dir']}/{name}"
        for field, value in (
            ("OSSAccessKeyId", data["oss_access_key_id"]),
            ("Signature", data["signature"]),
            ("policy", data["policy"]),
            ("key", key),
            ("success_action_status", "200"),
        ):
            form.add_field(field, value)
        # As a stream: aiohttp warns (an error here) about bodies over 1 MiB given as bytes.
        form.add_field("file", io.BytesIO(content), filename=name)
        answer = await self.call("POST", data["upload_host"], data=form, key=None)
        assert answer.status == 200, answer.body
        return f"oss://{key}"

    def sample_fetches(self) -> int:
        return sum(1 for record in self.sim.requests if record.endpoint == "sample")


Start = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Starts simulators on loopback; all are stopped, and the session closed, at teardown."""
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())

        async def factory(config: SimulatorConfig = FAST) -> Api:
            return Api(await stack.enter_async_context(serve(config)), session)

        yield factory


# -- pictures, made and read with PyAV and numpy ------------------------------------------


def needs_pictures() -> None:
    """Skip unless sample portraits can be drawn and videos decoded (``emoji-async[video]``)."""
    pytest.importorskip("av")
    pytest.importorskip("numpy")


def _png(width: int, height: int, rgb: tuple[int, int, int] = (200, 150, 120)) -> bytes:
    av = pytest.importorskip("av")
    np = pytest.importorskip("numpy")
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "rgb24"
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:] = rgb
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
    return b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode(None)])


def _rgb(image: bytes) -> Any:
    av = pytest.importorskip("av")
    with av.open(io.BytesIO(image)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24").astype("float32")


@attrs.frozen
class _Stream:
    """What a video stream says of itself."""

    codec: str
    pix_fmt: str
    size: tuple[int, int]
    fps: float
    seconds: float


def _frames(video: bytes) -> tuple[_Stream, list[Any]]:
    """The video stream's description and its frames as float RGB arrays."""
    av = pytest.importorskip("av")
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24").astype("float32") for f in container.decode(stream)]
        # Read while the container is open: PyAV 19 refuses a closed container's stream.
        return _Stream(
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt,
            size=(stream.width, stream.height),
            fps=float(stream.average_rate),
            seconds=float(stream.duration * stream.time_base),
        ), frames


def _crop(image: bytes, ext: Box) -> Any:
    x1, y1, x2, y2 = ext
    return _rgb(image)[y1:y2, x1:x2]


def _shift(before: Any, after: Any, reach: int = 60) -> tuple[int, int]:
    """How far the picture moved between two frames, in px: ``(right, down)``.

    Each axis on its own: the shift that best lines up the mean brightness of
    the columns (for ``right``) or of the rows (for ``down``).
    """

    def best(old: Any, new: Any) -> int:
        def cost(shift: int) -> float:
            if shift >= 0:
                return float(abs(new[shift:] - old[: len(old) - shift]).mean())
            return float(abs(new[:shift] - old[-shift:]).mean())

        return min(range(-reach, reach + 1), key=cost)

    return (
        best(before.mean(axis=(0, 2)), after.mean(axis=(0, 2))),
        best(before.mean(axis=(1, 2)), after.mean(axis=(1, 2))),
    )


def _difference(a: Any, b: Any) -> float:
    """Mean absolute difference of two pictures of one size, in levels (0..255)."""
    return float(abs(a - b).mean())


# -- sample portraits ---------------------------------------------------------------------


def test_samples_are_a_dozen_distinct_pngs_of_at_least_400_px_and_cached() -> None:
    needs_pictures()
    assert {"SAMPLE_PORTRAITS", "sample_portrait"} <= set(emoji_async.testing.__all__)
    assert len(SAMPLE_PORTRAITS) == 12
    assert len(set(SAMPLE_PORTRAITS)) == 12
    images = [sample_portrait(name) for name in SAMPLE_PORTRAITS]
    assert all(image.startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    assert len({hashlib.sha256(image).digest() for image in images}) == 12
    pictures = [_rgb(image) for image in images]
    assert all(p.shape[0] >= 400 and p.shape[1] >= 400 and p.shape[2] == 3 for p in pictures)
    for index, picture in enumerate(pictures):  # different pictures, not only different bytes
        others = pictures[index + 1 :]
        assert all(_difference(picture, other) > 10 for other in others)
    assert sample_portrait("ada") is images[0]
    with pytest.raises(ValueError, match="unknown sample portrait"):
        sample_portrait("nobody")


async def test_the_simulator_serves_each_sample_at_its_url_without_a_key(start: Start) -> None:
    needs_pictures()
    api = await start()
    for name in SAMPLE_PORTRAITS:
        url = api.server.sample_url(name)
        assert url == f"{api.server.origin}/samples/{name}.png"
        answer = await api.call("GET", url, key=None)
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "image/png"
        assert answer.body == sample_portrait(name)
    missing = await api.call("GET", f"{api.server.origin}/samples/nobody.png", key=None)
    assert missing.status == 404
    assert b"NoSuchKey" in missing.body
    with pytest.raises(ValueError, match="unknown sample portrait"):
        api.server.sample_url("nobody")


# -- detection on fetched images ---------------------------------------------------------


async def test_detecting_a_sample_url_fetches_it_once_and_boxes_lie_inside_the_image(
    start: Start,
) -> None:
    needs_pictures()
    api = await start()
    url = api.server.sample_url("grace")
    with pytest.raises(LookupError, match="has not fetched"):
        api.sim.boxes_for(url)
    answer = await api.detect(url)
    assert answer.status == 200
    assert answer.body["usage"] == {"image_count": 1}
    face, ext = answer.body["output"]["bbox_face"], answer.body["output"]["ext_bbox_face"]
    assert 0 <= ext[0] <= face[0] < face[2] <= ext[2] <= 640
    assert 0 <= ext[1] <= face[1] < face[3] <= ext[3] <= 640
    assert ext[2] - ext[0] == ext[3] - ext[1]  # square, and not cut by the image edge
    assert 0.2 * 640 <= face[2] - face[0] <= 0.4 * 640  # a face, not a freckle
    assert ext[2] - ext[0] >= 2 * (face[3] - face[1])  # with room for the shoulders
    assert api.sim.boxes_for(url) == (face, ext)
    again = await api.detect(url)
    assert again.body["output"] == answer.body["output"]
    assert api.sample_fetches() == 1  # remembered by URL
    assert api.sim.stats.detections_billed == 2


async def test_boxes_of_a_fetched_image_follow_its_bytes_and_dimensions(start: Start) -> None:
    needs_pictures()
    api = await start()
    grace = await api.boxes(api.server.sample_url("grace"))
    ada = await api.boxes(api.server.sample_url("ada"))
    assert grace != ada
    wide = _png(1600, 900)
    async with image_host({"/wide.png": wide}) as host:
        ext = await api.boxes(f"{host}/wide.png")
    assert 0 <= ext[0] < ext[2] <= 1600
    assert 0 <= ext[1] < ext[3] <= 900


@contextlib.asynccontextmanager
async def image_host(
    routes: Mapping[str, bytes | int], *, slow: float = 0.0, hits: list[str] | None = None
) -> AsyncIterator[str]:
    """A test's own image host on loopback: a path serves bytes (200) or a bare status.

    ``/slow`` answers after ``slow`` seconds (cut short when the host stops);
    ``hits`` collects every path asked for.
    """
    stopping = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if hits is not None:
            hits.append(request.path)
        if request.path == "/slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), slow)
        served = routes.get(request.path, 404)
        if isinstance(served, int):
            return web.Response(status=served, text=f"status {served}")
        return web.Response(body=served, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        stopping.set()
        await runner.cleanup()


def _closed_port() -> int:
    """A loopback port nobody listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/page.html", "InvalidFile.Format"),
        ("/small.png", "InvalidFile.Resolution"),
        ("/huge.png", "InvalidFile.Resolution"),
        ("/big.png", "InvalidFile.Size"),
    ],
)
async def test_a_fetched_image_that_fails_the_checks_is_rejected_billed_and_refused_at_submit(
    start: Start, path: str, code: str
) -> None:
    pytest.importorskip("av")
    api = await start()
    routes: dict[str, bytes | int] = {
        "/page.html": b"<html><body>Not a portrait</body></html>",
        "/small.png": _png(399, 640),
        "/huge.png": _png(7001, 8),
        "/big.png": b"\x89PNG\r\n\x1a\n" + bytes(10 * 1024 * 1024),
    }
    async with image_host(routes) as host:
        url = f"{host}{path}"
        answer = await api.detect(url)
        assert answer.status == 200
        assert answer.body["output"]["code"] == code
        assert len(answer.body["output"]["message"]) > 20
        assert answer.body["usage"] == {"image_count": 1}
        submit = await api.submit(url)
        assert (submit.status, submit.body["code"]) == (400, code)
        assert submit.body["message"] == answer.body["output"]["message"]
    assert api.sim.stats.detections_billed == 1
    assert api.sim.tasks_created == 0


@pytest.mark.parametrize(
    ("where", "code"),
    [
        ("missing", "InvalidURL"),
        ("forbidden", "InvalidURL"),
        ("redirect", "InvalidURL"),
        ("slow", "InvalidURL.Timeout"),
        ("closed", "InvalidURL.ConnectionRefused"),
    ],
)
async def test_a_loopback_image_that_cannot_be_fetched_is_a_400_with_the_provider_code(
    start: Start, where: str, code: str
) -> None:
    api = await start(attrs.evolve(FAST, fetch_timeout=0.2))
    routes: dict[str, bytes | int] = {"/forbidden": 403, "/redirect": 302}
    hits: list[str] = []
    async with image_host(routes, slow=5.0, hits=hits) as host:
        url = {
            "missing": f"{host}/missing.png",
            "forbidden": f"{host}/forbidden",
            "redirect": f"{host}/redirect",
            "slow": f"{host}/slow",
            "closed": f"http://127.0.0.1:{_closed_port()}/portrait.png",
        }[where]
        answer = await api.detect(url)
        assert answer.status == 400
        assert answer.body["code"] == code
        assert answer.body["message"].startswith("Failed to download the input file")
        submit = await api.submit(url, boxes=([1, 1, 2, 2], [0, 0, 3, 3]))
        assert (submit.status, submit.body["code"]) == (400, code)
    assert api.sim.stats.detections_billed == 0  # a 400 is not billed
    assert api.sim.tasks_created == 0
    assert len(hits) == (0 if where == "closed" else 2)  # failures are not remembered
    with pytest.raises(LookupError):
        api.sim.boxes_for(url)


@pytest.mark.parametrize("url", ["http://[not-an-address/a.png", "http://127.0.0.1:99999/a.png"])
async def test_a_malformed_image_url_is_400_invalid_url_not_a_server_error(
    start: Start, url: str
) -> None:
    api = await start()
    answer = await api.detect(url)
    assert (answer.status, answer.body["code"]) == (400, "InvalidURL")
    assert "not appear to be valid" in answer.body["message"]


async def test_non_loopback_urls_are_never_fetched(start: Start) -> None:
    api = await start()
    hits: list[str] = []
    async with image_host({}, hits=hits) as host:
        port = host.rsplit(":", 1)[1]
        # Names that may well resolve to this machine are still never resolved.
        for url in (
            "https://example.com/portrait.png",
            f"http://127.0.0.1.nip.io:{port}/portrait.png",
            f"http://loopback.example:{port}/portrait.png",
        ):
            answer = await api.detect(url)
            assert answer.status == 200, answer.body
            boxes = answer.body["output"]["bbox_face"], answer.body["output"]["ext_bbox_face"]
            assert boxes == api.sim.boxes_for(url)  # from the URL: known without a fetch
    assert hits == []
    assert api.sample_fetches() == 0


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000/a.png", True),
        ("https://127.45.6.7/a.png", True),
        ("http://localhost/a.png", True),
        ("http://LOCALHOST.:81/a.png", True),
        ("http://[::1]:8000/a.png", True),
        ("http://[::ffff:127.0.0.1]/a.png", True),
        ("http://128.0.0.1/a.png", False),
        ("http://10.0.0.1/a.png", False),
        ("http://[::2]/a.png", False),
        ("http://127.0.0.1.nip.io/a.png", False),
        ("http://localhost.example.com/a.png", False),
        ("ftp://127.0.0.1/a.png", False),
        ("oss://dir/a.png", False),
        ("http://[not-an-address/a.png", False),
    ],
)
def test_only_loopback_addresses_and_localhost_count_as_loopback(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


async def test_triggers_still_work_on_loopback_urls(start: Start) -> None:
    needs_pictures()
    api = await start()
    sample = api.server.sample_url("alan")
    rejected = await api.detect(f"{sample}?sim_reject=InvalidFile.FacePose")
    assert rejected.body["output"]["code"] == "InvalidFile.FacePose"
    moderated_url = f"{sample}?sim_moderation=1"
    await api.boxes(moderated_url)
    moderated = await api.submit(moderated_url)
    assert (moderated.status, moderated.body["code"]) == (400, "DataInspectionFailed")
    failing = f"{sample}?sim_fail=InternalError.Algo&sim_duration=42"
    await api.boxes(failing)
    task_id = (await api.submit(failing)).body["output"]["task_id"]
    record = api.sim.task(task_id)
    assert record is not None
    assert record.duration == 42
    output = await api.ended(task_id)
    assert (output["task_status"], output["code"]) == ("FAILED", "InternalError.Algo")


# -- uploads --------------------------------------------------------------------------------


async def test_an_uploaded_image_is_checked_and_boxed_like_the_same_image_fetched(
    start: Start,
) -> None:
    needs_pictures()
    api = await start()
    portrait = sample_portrait("ada")
    fetched = await api.detect(api.server.sample_url("ada"))
    detect_url = await api.upload("emoji-detect-v1", portrait, "ada.png")
    uploaded = await api.detect(detect_url, RESOLVE)
    assert uploaded.body["output"] == fetched.body["output"]  # same bytes, same boxes
    submit_url = await api.upload("emoji-v1", portrait, "ada.png")
    assert api.sim.boxes_for(submit_url) == api.sim.boxes_for(detect_url)

    for content, name, code in (
        (b"GIF89a not what the provider takes", "face.gif", "InvalidFile.Format"),
        (_png(640, 300), "flat.png", "InvalidFile.Resolution"),
        (bytes(10 * 1024 * 1024 + 1), "big.png", "InvalidFile.Size"),
    ):
        url = await api.upload("emoji-detect-v1", content, name)
        answer = await api.detect(url, RESOLVE)
        assert (answer.status, answer.body["output"]["code"]) == (200, code)
        for_submit = await api.upload("emoji-v1", content, name)
        submit = await api.submit(for_submit, boxes=([1, 1, 2, 2], [0, 0, 3, 3]), headers=RESOLVE)
        assert (submit.status, submit.body["code"]) == (400, code)
    assert api.sim.tasks_created == 0


# -- videos of real portraits -------------------------------------------------------------


async def test_the_video_of_a_sample_is_a_512px_15fps_mp4_of_the_template_made_of_the_portrait(
    start: Start,
) -> None:
    needs_pictures()
    api = await start()
    url = api.server.sample_url("barbara")
    ext = await api.boxes(url)
    video = await api.video(url, "dagong_kunhuo")
    stream, frames = _frames(video)
    seconds = template_info("dagong_kunhuo").video_seconds  # type: ignore[union-attr]
    assert stream.codec == "h264"
    assert stream.pix_fmt == "yuv420p"
    assert stream.size == (512, 512)
    assert stream.fps == 15
    assert len(frames) == 15 * seconds
    assert stream.seconds == pytest.approx(seconds)

    av = pytest.importorskip("av")
    crop = _crop(sample_portrait("barbara"), ext)
    # The video opens on the still crop of the ext box, scaled to 512 px.
    scaled = av.VideoFrame.from_ndarray(crop.astype("uint8"), format="rgb24")
    scaled = scaled.reformat(width=512, height=512).to_ndarray(format="rgb24")
    assert _difference(frames[0], scaled) < 6
    assert abs(frames[0].mean(axis=(0, 1)) - crop.mean(axis=(0, 1))).max() < 4
    # ... and keeps showing it: every frame's colours stay close to the crop's.
    other = _crop(sample_portrait("ken"), await api.boxes(api.server.sample_url("ken")))
    for frame in frames:
        own = abs(frame.mean(axis=(0, 1)) - crop.mean(axis=(0, 1))).max()
        assert own < 12
        assert own < abs(frame.mean(axis=(0, 1)) - other.mean(axis=(0, 1))).max()


async def test_different_portraits_make_different_videos_and_one_portrait_the_same(
    start: Start,
) -> None:
    needs_pictures()
    api = await start()
    first, second = api.server.sample_url("ada"), api.server.sample_url("radia")
    await api.boxes(first)
    await api.boxes(second)
    ada = await api.video(first, "dagong_weixiao")
    radia = await api.video(second, "dagong_weixiao")
    assert _difference(_frames(ada)[1][0], _frames(radia)[1][0]) > 20
    assert await api.video(first, "dagong_weixiao") == ada  # deterministic, rendered once


async def test_two_templates_move_the_same_portrait_differently(start: Start) -> None:
    needs_pictures()
    api = await start()
    url = api.server.sample_url("linus")
    await api.boxes(url)
    # A side-to-side sway and a bow: both 3 s long.
    _, sway = _frames(await api.video(url, "dagong_kunhuo"))
    _, bow = _frames(await api.video(url, "dagong_ganji"))
    assert len(sway) == len(bow) == 45
    assert _difference(sway[0], bow[0]) < 3  # both open on the same still portrait
    drift_sway = [_difference(frame, sway[0]) for frame in sway]
    drift_bow = [_difference(frame, bow[0]) for frame in bow]
    assert max(drift_sway) > 8  # each one visibly moves
    assert max(drift_bow) > 8
    assert max(_difference(a, b) for a, b in zip(sway, bow, strict=True)) > 8
    # Each moves the picture its own way: the sway sideways, the bow downwards.
    sway_at = max(range(len(sway)), key=drift_sway.__getitem__)
    bow_at = max(range(len(bow)), key=drift_bow.__getitem__)
    sway_dx, sway_dy = _shift(sway[0], sway[sway_at])
    bow_dx, bow_dy = _shift(bow[0], bow[bow_at])
    assert abs(sway_dx) > 2 * abs(sway_dy)
    assert abs(sway_dx) >= 4
    assert bow_dy >= 8
    assert bow_dy > 2 * abs(bow_dx)

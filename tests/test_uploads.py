"""Local files wherever an image URL goes: checked here, uploaded once per model, over loopback."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import struct
import threading
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web

from emoji_async import EmojiJob, RateLimits, ValidationError, events
from emoji_async._api import DETECT_MODEL, GENERATE_MODEL
from emoji_async._image_headers import image_format, image_size
from emoji_async._uploads import TemporaryUploads, UploadPolicy
from emoji_async._validation import (
    MAX_IMAGE_BYTES,
    check_image_url,
    local_image_path,
    read_image_file,
)
from emoji_async._values import Endpoint
from emoji_async.cli import main
from emoji_async.cli._jobsfile import JobsFileError, load_jobs
from emoji_async.testing import Fault, Simulator, fixed_duration, sample_portrait, serve

from .conftest import KEY, SCALE, client_for, running, serve_in_thread, sim_config

# --- helpers ----------------------------------------------------------------------------


def stored(sim: Simulator) -> dict[str, int]:
    """Files the simulator's upload host stored, per model (refused uploads store none)."""
    return sim.uploads_by_model


def endpoints(sim: Simulator) -> list[str]:
    return [record.endpoint for record in sim.requests]


async def until(condition: Callable[[], bool], *, tries: int = 2000) -> None:
    """Let the loop run until ``condition`` holds; bounded, so a bug fails instead of hanging."""
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


def portrait(directory: Path, name: str = "ada") -> Path:
    """A sample portrait (640x640 PNG) saved as a local file."""
    path = directory / f"{name}.png"
    path.write_bytes(sample_portrait(name))
    return path


def png(width: int, height: int) -> bytes:
    """A valid grey PNG of that size, written by hand (one filter byte and a row of zeros)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"".join(b"\x00" + bytes(width) for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def encoded(codec_name: str, pix_fmt: str, width: int, height: int, **options: str) -> bytes:
    """One picture of that size encoded by PyAV (PNG, JPEG, BMP, WEBP, GIF...)."""
    import av
    import numpy

    codec = av.CodecContext.create(codec_name, "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height, codec.pix_fmt = width, height, pix_fmt
    if options:
        codec.options = options
    rgb = numpy.random.default_rng(1).integers(0, 255, (height, width, 3), dtype=numpy.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
    return b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode(None)])


# --- the two-step flow, end to end ------------------------------------------------------


async def test_a_local_png_is_uploaded_in_two_steps_and_animated(tmp_path: Path) -> None:
    path = portrait(tmp_path)
    config = sim_config(durations=fixed_duration(20), render_videos=True)  # a real MP4
    async with running(config) as (sim, client):
        video = await client.generate(path, "mengwa_kaixin")
        saved = await client.download(video, tmp_path)
    # Each model got its own policy and its own form POST, both answered 200.
    flow = [(r.endpoint, r.status) for r in sim.requests if r.endpoint.startswith("upload")]
    assert flow == [("upload_policy", 200), ("upload", 200)] * 2
    assert stored(sim) == {DETECT_MODEL: 1, GENERATE_MODEL: 1}
    task = sim.task(video.task_id)
    assert task is not None
    assert task.image_url.startswith("oss://")
    assert saved.read_bytes()[4:8] == b"ftyp"  # an MP4 of the uploaded portrait


async def test_detect_then_generate_upload_once_per_model_and_a_second_job_uploads_nothing(
    tmp_path: Path,
) -> None:
    path = portrait(tmp_path)
    async with running(sim_config(durations=fixed_duration(20))) as (
        sim,
        client,
    ):
        face = await client.detect(path)
        first = await client.generate(path, "mengwa_kaixin")
        assert stored(sim) == {DETECT_MODEL: 1, GENERATE_MODEL: 1}
        assert endpoints(sim).count("upload") == 2
        second = await client.generate(str(path), "dagong_weixiao")  # a str path is the same file
    assert stored(sim) == {DETECT_MODEL: 1, GENERATE_MODEL: 1}
    assert endpoints(sim).count("upload") == endpoints(sim).count("upload_policy") == 2
    assert sim.stats.detections_billed == 3
    assert first.task_id != second.task_id
    # The boxes belong to the file's content, whichever upload carried it.
    assert face.face_bbox.as_list() == sim.boxes_for(sim.tasks()[0].image_url)[0]


async def test_submit_takes_a_file_uri_and_uploads_it_for_generation_only(
    tmp_path: Path,
) -> None:
    path = portrait(tmp_path)
    async with running(sim_config(durations=fixed_duration(20))) as (
        sim,
        client,
    ):
        face = await client.detect(path)
        task = await client.submit(
            path.as_uri(), "jingdian_lei", face_bbox=face.face_bbox, ext_bbox=face.ext_bbox
        )
        video = await task.wait()
    assert video.task_id == task.task_id
    assert stored(sim) == {DETECT_MODEL: 1, GENERATE_MODEL: 1}


async def test_a_bulk_run_uploads_each_shared_portrait_once_per_model(tmp_path: Path) -> None:
    names = ("ada", "grace", "alan")
    paths = [portrait(tmp_path, name) for name in names]
    templates = ("mengwa_kaixin", "dagong_weixiao")
    jobs = [EmojiJob(path, template) for template in templates for path in paths]
    seen: list[events.JobEvent] = []
    config = sim_config(durations=fixed_duration(10))
    async with running(config) as (sim, client):
        outcomes = await client.generate_many(jobs, concurrency=4, on_event=seen.append)
    assert all(outcome.ok for outcome in outcomes), [o.error for o in outcomes]
    assert stored(sim) == {DETECT_MODEL: len(names), GENERATE_MODEL: len(names)}
    # One detection billed per job. (A detect the service throttled is not billed: on a
    # loaded machine one can arrive inside the window of the one before it, however the
    # client spaced them, and is answered 429 and sent again.)
    assert sim.stats.detections_billed == len(jobs)
    assert all(task.image_url.startswith("oss://") for task in sim.tasks())
    assert all(isinstance(job.image, str) for job in jobs)  # kept as text for the journal
    assert {o.key.split("-")[0] for o in outcomes} == set(names)  # keys from the file names


async def test_concurrent_requests_for_one_file_share_one_upload(tmp_path: Path) -> None:
    path = portrait(tmp_path)
    async with running(sim_config()) as (sim, client):
        # A slow upload host: every caller arrives while the first upload is in flight.
        sim.faults.add(Fault("upload", "delay", delay=0.2))
        faces = await asyncio.gather(*(client.detect(path) for _ in range(5)))
    assert len({face.ext_bbox for face in faces}) == 1
    assert stored(sim) == {DETECT_MODEL: 1}
    assert endpoints(sim).count("upload") == 1


async def test_an_upload_is_cancelled_only_when_nobody_waits_for_it(tmp_path: Path) -> None:
    path = portrait(tmp_path)
    async with running(sim_config()) as (sim, client):
        uploads = client._life.service.uploads
        sim.faults.add(Fault("upload", "delay", delay=0.3))
        first = asyncio.create_task(uploads.url_for(path, DETECT_MODEL))
        second = asyncio.create_task(uploads.url_for(path, DETECT_MODEL))
        await until(lambda: "upload" in endpoints(sim))
        first.cancel()
        url = await second  # still served by the upload the first one started
        assert url.startswith("oss://")
        assert first.cancelled()
        assert endpoints(sim).count("upload") == 1
        assert stored(sim) == {DETECT_MODEL: 1}

        sim.faults.add(Fault("upload", "delay", delay=0.3))
        lonely = asyncio.create_task(uploads.url_for(path, GENERATE_MODEL))
        await until(lambda: endpoints(sim).count("upload") == 2)
        lonely.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lonely
        # Its only caller gave up: the upload itself is gone, not left running.
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("emoji-upload")]


async def test_files_are_read_and_hashed_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = portrait(tmp_path)
    loop_thread = threading.get_ident()
    readers: list[int] = []
    loop_ran = threading.Event()
    read = read_image_file

    def observed(where: Path, *, field: str) -> Any:
        readers.append(threading.get_ident())
        # Run on the event loop's own thread, this would wait for the loop it blocks.
        assert loop_ran.wait(timeout=10), "the event loop did not run while the file was read"
        return read(where, field=field)

    async def heartbeat() -> None:
        await until(lambda: bool(readers))
        loop_ran.set()

    monkeypatch.setattr("emoji_async._uploads.read_image_file", observed)
    async with running(sim_config()) as (_, client):
        beat = asyncio.create_task(heartbeat())
        await client.detect(path)
        await beat
    assert readers
    assert loop_thread not in readers


# --- bad local files: refused here, before any request -------------------------------------


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "nowhere" / "ada.png"


def _directory(tmp_path: Path) -> Path:
    return tmp_path


def _too_big(tmp_path: Path) -> Path:
    path = tmp_path / "big.png"
    with path.open("wb") as handle:
        handle.write(png(640, 640))
        handle.truncate(MAX_IMAGE_BYTES + 1)
    return path


def _not_an_image(tmp_path: Path) -> Path:
    path = tmp_path / "notes.png"
    path.write_text("a portrait, honestly\n")
    return path


def _too_small(tmp_path: Path) -> Path:
    path = tmp_path / "small.png"
    path.write_bytes(png(300, 500))
    return path


def _too_large(tmp_path: Path) -> Path:
    # Only the header is read: it announces 8000 px, the rest need not exist.
    path = tmp_path / "wide.png"
    path.write_bytes(png(1, 1)[:16] + struct.pack(">II", 8000, 600) + png(1, 1)[24:])
    return path


def _gif(tmp_path: Path) -> Path:
    path = tmp_path / "ada.gif"
    path.write_bytes(encoded("gif", "rgb8", 480, 480))
    return path


BAD_FILES = {
    "missing": (_missing, r"image_url: expected the path of an existing file, got '.*ada\.png'"),
    "directory": (_directory, r"image_url: expected a file, not a directory, got '.*'"),
    "too big": (_too_big, rf"image_url: expected a file of at most {MAX_IMAGE_BYTES} bytes, got "),
    "not an image": (
        _not_an_image,
        r"image_url: expected a PNG, JPEG, BMP or WEBP image \(judged by its first bytes\), "
        r"got '.*notes\.png'",
    ),
    "sides too small": (
        _too_small,
        r"image_url: expected an image 400 to 7000 px on each side, as \(width, height\), "
        r"got \(300, 500\)",
    ),
    "sides too large": (_too_large, r"400 to 7000 px on each side.*got \(8000, 600\)"),
    "unsupported format": (_gif, r"image_url: expected a PNG, JPEG, BMP or WEBP image, got 'GIF'"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
async def test_a_bad_local_file_is_refused_by_name_before_any_request(
    case: str, tmp_path: Path
) -> None:
    make, message = BAD_FILES[case]
    path = make(tmp_path)
    async with running(sim_config()) as (sim, client):
        with pytest.raises(ValidationError, match=message) as caught:
            await client.detect(path)
        assert caught.value.field == "image_url"
        with pytest.raises(ValidationError, match=message):
            await client.generate(str(path), "mengwa_kaixin")
        with pytest.raises(ValidationError, match=message):
            await client.submit(
                path, "mengwa_kaixin", face_bbox=[1, 1, 2, 2], ext_bbox=[0, 0, 3, 3]
            )
    assert sim.requests == []


async def test_a_bad_file_in_a_batch_is_that_jobs_error_only(tmp_path: Path) -> None:
    good = portrait(tmp_path)
    jobs = [
        EmojiJob(good, "mengwa_kaixin", key="good"),
        EmojiJob(tmp_path / "gone.png", "mengwa_kaixin", key="gone"),
    ]
    async with running(sim_config(durations=fixed_duration(10))) as (
        sim,
        client,
    ):
        ok, gone = await client.generate_many(jobs)
    assert ok.ok
    assert isinstance(gone.error, ValidationError)
    assert gone.error.field == "image"
    assert sim.tasks_created == 1


async def test_a_file_that_changes_between_detection_and_submit_is_refused(
    tmp_path: Path,
) -> None:
    path = portrait(tmp_path, "ada")
    async with running(sim_config()) as (sim, client):
        checked = await client._life.service.uploads.prepare(path)
        path.write_bytes(sample_portrait("grace"))
        with pytest.raises(ValidationError, match="a file that does not change while it is in use"):
            await client._life.service.uploads.url_for(checked, GENERATE_MODEL)
    assert sim.requests == []


# --- the upload's requests: pacing, retries, and the key ----------------------------------


async def test_a_lost_answer_to_the_form_post_is_retried_without_a_second_copy(
    tmp_path: Path,
) -> None:
    path = portrait(tmp_path)
    retries: list[events.JobEvent] = []
    async with running(sim_config()) as (sim, client):
        # The first POST is stored, then its connection drops before the answer.
        sim.faults.add(Fault("upload", "reset", after_processing=True))
        outcomes = await client.generate_many(
            [EmojiJob(path, "mengwa_kaixin")], on_event=retries.append
        )
    assert outcomes[0].ok, outcomes[0].error
    posts = [r.status for r in sim.requests if r.endpoint == "upload"]
    assert posts[:2] == [0, 409]  # dropped, then "already exists": the first one got through
    assert stored(sim) == {DETECT_MODEL: 1, GENERATE_MODEL: 1}
    assert [e.endpoint for e in retries if isinstance(e, events.Retrying)] == ["upload"]


async def test_a_refused_connection_and_a_5xx_are_retried_under_the_same_key(
    tmp_path: Path,
) -> None:
    path = portrait(tmp_path)
    async with running(sim_config()) as (sim, client):
        sim.faults.add(Fault("upload", "reset"))  # dropped before it was processed
        sim.faults.add(Fault("upload", "status", status=503, code="ServiceUnavailable"))
        sim.faults.add(Fault("upload_policy", "status", status=500))
        face = await client.detect(path)
    assert face.image_count == 1
    assert [r.status for r in sim.requests if r.endpoint == "upload"] == [0, 503, 200]
    assert [r.status for r in sim.requests if r.endpoint == "upload_policy"] == [500, 200]
    assert stored(sim) == {DETECT_MODEL: 1}


async def test_the_api_key_never_goes_to_the_upload_host_nor_into_a_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="emoji_async")
    path = portrait(tmp_path)
    sim = Simulator(sim_config())
    seen: list[tuple[str, Mapping[str, str]]] = []

    async def note(request: web.Request, response: web.StreamResponse) -> None:
        seen.append((request.path, dict(request.headers)))

    sim.app.on_response_prepare.append(note)
    async with serve(sim) as server, client_for(server, workspace="ws-sim") as client:
        await client.detect(path)
    by_path = dict(seen)
    upload = by_path["/oss-upload"]
    assert not {"Authorization", "X-DashScope-WorkSpace"} & set(upload)
    assert KEY not in repr(upload)
    api = by_path["/api/v1/services/aigc/image2video/face-detect"]
    assert api["Authorization"] == f"Bearer {KEY}"
    assert api["X-DashScope-OssResourceResolve"] == "enable"
    assert by_path["/api/v1/uploads"]["Authorization"] == f"Bearer {KEY}"
    assert caplog.records
    assert not [r for r in caplog.records if KEY in r.getMessage()]


async def test_the_upload_policy_is_paced_under_its_own_limit(tmp_path: Path) -> None:
    paths = [portrait(tmp_path, name) for name in ("ada", "grace", "alan", "edsger")]
    # A lower limit than the provider's 100/s, so that the spacing shows over loopback.
    limits = attrs.evolve(RateLimits(), upload_policy_per_second=50.0 * SCALE)  # 50/s here
    interval = limits.scaled(SCALE).interval(Endpoint.UPLOAD_POLICY)
    async with running(sim_config(), limits=limits) as (sim, client):
        uploads = client._life.service.uploads
        await asyncio.gather(*(uploads.url_for(p, DETECT_MODEL) for p in paths))
    starts = sorted(r.at for r in sim.requests if r.endpoint == "upload_policy")
    assert len(starts) == len(paths)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # The pacer spaces the starts; loopback can only add to that (less a clock's hair).
    assert min(gaps) >= interval * 0.9, (gaps, interval)


# --- the cache's bounds ---------------------------------------------------------------------


async def test_an_upload_is_reused_only_within_its_lifetime_less_the_margin(
    tmp_path: Path,
) -> None:
    path = portrait(tmp_path)
    async with running(sim_config()) as (sim, client):
        api = client._life.service
        lasting = TemporaryUploads(api, lifetime=3600.0, margin=60.0)
        assert await lasting.url_for(path, DETECT_MODEL) == await lasting.url_for(
            path, DETECT_MODEL
        )
        assert lasting.uploaded == 1
        # A margin as long as the lifetime, less a hair: stale as soon as it is made.
        fleeting = TemporaryUploads(api, lifetime=1.0, margin=1.0 - 1e-9)
        first = await fleeting.url_for(path, DETECT_MODEL)
        await asyncio.sleep(0.01)
        again = await fleeting.url_for(path, DETECT_MODEL)
        assert first != again
        assert fleeting.uploaded == 2
    assert stored(sim) == {DETECT_MODEL: 3}


async def test_the_cache_keeps_at_most_max_entries_dropping_the_least_recently_used(
    tmp_path: Path,
) -> None:
    ada, grace = portrait(tmp_path, "ada"), portrait(tmp_path, "grace")
    async with running(sim_config()) as (_, client):
        small = TemporaryUploads(client._life.service, max_entries=1)
        for path in (ada, grace, ada, ada):
            await small.url_for(path, DETECT_MODEL)
        assert small.uploaded == 3  # ada, grace (ada dropped), ada again; then remembered
        assert "1 remembered" in repr(small)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"lifetime": 0}, "lifetime"),
        ({"lifetime": 10.0, "margin": 10.0}, "margin"),
        ({"margin": -1.0}, "margin"),
        ({"max_entries": 0}, "max_entries"),
        # Once taken as numbers: True as one second, uploads kept forever, an OverflowError.
        ({"lifetime": True}, "lifetime"),
        ({"lifetime": math.inf}, "lifetime"),
        ({"lifetime": 10**400}, "lifetime"),
        ({"margin": True}, "margin"),
    ],
)
def test_the_cache_bounds_are_checked(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TemporaryUploads(_NoEndpoints(), **settings)
    assert caught.value.field == field


class _NoEndpoints:
    """Stands where the endpoints go, for checks that never reach them."""

    async def upload_policy(self, model: str) -> UploadPolicy:
        raise AssertionError("not called")

    async def upload_file(
        self, policy: UploadPolicy, key: str, data: bytes, content_type: str
    ) -> None:
        raise AssertionError("not called")


# --- what counts as a local file, and reading its header -----------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("portraits/ada.png", Path("portraits/ada.png")),
        ("/srv/ada.png", Path("/srv/ada.png")),
        ("file:///srv/a%20b.png", Path("/srv/a b.png")),
        ("file://localhost/srv/ada.png", Path("/srv/ada.png")),
        ("https://example.com/ada.png", None),
        ("oss://dir/ada.png", None),
    ],
)
def test_paths_and_file_uris_are_local_and_urls_are_not(value: str, expected: Path | None) -> None:
    assert local_image_path(value) == expected
    assert check_image_url(value) == value


def test_a_path_like_is_taken_as_its_path_and_other_schemes_stay_refused() -> None:
    assert check_image_url(Path("/srv/ada.png")) == os.fspath(Path("/srv/ada.png"))
    for refused in ("ftp://example.com/a.png", "file://elsewhere/a.png", "", "http://[::1"):
        with pytest.raises(ValidationError, match="a file:// URI or a local file path"):
            check_image_url(refused)


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "options", "kind"),
    [
        ("png", "rgb24", {}, "PNG"),
        ("mjpeg", "yuvj420p", {}, "JPEG"),
        ("bmp", "bgr24", {}, "BMP"),
        ("libwebp", "yuv420p", {}, "WEBP"),
        ("libwebp", "yuv420p", {"lossless": "1"}, "WEBP"),
    ],
)
def test_the_size_comes_from_the_header_of_each_accepted_format(
    codec: str, pix_fmt: str, options: dict[str, str], kind: str, tmp_path: Path
) -> None:
    data = encoded(codec, pix_fmt, 401, 523, **options)
    assert image_format(data) == kind
    assert image_size(data) == (401, 523)
    path = tmp_path / "image.bin"  # the name says nothing: the bytes do
    path.write_bytes(data)
    checked, read = read_image_file(path)
    assert (checked.format, checked.width, checked.height, checked.size) == (
        kind,
        401,
        523,
        len(data),
    )
    assert read == data


def test_the_extended_webp_and_old_bmp_headers_are_read_too() -> None:
    vp8x = b"RIFF\x00\x00\x00\x00WEBPVP8X" + struct.pack("<I", 10) + bytes(4)
    vp8x += (1279).to_bytes(3, "little") + (719).to_bytes(3, "little")
    assert image_size(vp8x) == (1280, 720)
    core = b"BM" + bytes(12) + struct.pack("<IHH", 12, 800, 600)
    assert image_size(core + bytes(8)) == (800, 600)
    top_down = b"BM" + bytes(12) + struct.pack("<Iii", 40, 640, -480)
    assert image_size(top_down) == (640, 480)
    assert image_size(b"\xff\xd8\xff\xda\x00\x02") is None  # a scan before any frame header


# --- the command line --------------------------------------------------------------------


@pytest.fixture
def threaded(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.delenv("DASHSCOPE_BASE_URL", raising=False)
    with serve_in_thread(sim_config(durations=fixed_duration(10))) as srv:
        yield srv


def test_the_cli_detects_and_generates_from_a_local_file(
    threaded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = portrait(tmp_path)
    common = ["--base-url", threaded.base_url, "--time-scale", str(SCALE)]
    assert main(["detect", str(path), "--json", *common]) == 0
    assert main(["generate", str(path), "mengwa_kaixin", *common]) == 0
    out = capsys.readouterr().out
    assert '"face_bbox"' in out
    assert "task_id:" in out
    assert stored(threaded.simulator) == {DETECT_MODEL: 2, GENERATE_MODEL: 1}  # two clients


def test_the_cli_refuses_a_bad_local_file_as_a_usage_error_sending_nothing(
    threaded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--base-url", threaded.base_url, "--time-scale", str(SCALE)]
    missing = str(tmp_path / "ada.png")
    assert main(["generate", missing, "mengwa_kaixin", *common]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("emoji-async: error: IMAGE_URL: expected the path of an existing file")
    assert threaded.simulator.requests == []


def test_a_jobs_file_takes_paths_relative_to_itself_and_checks_each_file(tmp_path: Path) -> None:
    (tmp_path / "faces").mkdir()
    portrait(tmp_path / "faces", "ada")
    jobs_file = tmp_path / "jobs.csv"
    jobs_file.write_text(
        "image,driven_id\nfaces/ada.png,mengwa_kaixin\nfaces/ada.png,dagong_weixiao\n"
    )
    jobs = load_jobs(jobs_file)
    assert [job.image for job in jobs] == [str(tmp_path / "faces" / "ada.png")] * 2
    jobs_file.write_text(
        "image,driven_id\nfaces/ada.png,mengwa_kaixin\nfaces/bob.png,jingdian_lei\n"
    )
    with pytest.raises(JobsFileError) as caught:
        load_jobs(jobs_file)
    assert (caught.value.line, caught.value.field) == (3, "image")
    assert "expected the path of an existing file" in str(caught.value)


def test_a_batch_of_local_files_uploads_each_once_per_model(
    threaded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ada", "grace"):
        portrait(tmp_path, name)
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text(
        "".join(
            f'{{"image": "{name}.png", "driven_id": "{template}"}}\n'
            for name in ("ada", "grace")
            for template in ("mengwa_kaixin", "jingdian_lei")
        )
    )
    status = main(
        [
            "batch",
            str(jobs_file),
            "--out",
            str(tmp_path / "videos"),
            "--journal",
            str(tmp_path / "batch.db"),
            "--base-url",
            threaded.base_url,
            "--time-scale",
            str(SCALE),
            "--progress",
            "never",
        ]
    )
    assert status == 0, capsys.readouterr()
    assert stored(threaded.simulator) == {DETECT_MODEL: 2, GENERATE_MODEL: 2}
    assert threaded.simulator.tasks_created == 4

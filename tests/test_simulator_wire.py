"""The simulator speaks the provider's documented wire literally (docs/wire.md).

The provider's own example request, sent as its page writes it, gets a task;
the task list answers at both spellings of its path, with the fields the
provider documents; the messages the provider quotes are the simulator's,
word for word; without PyAV the simulator says so as it starts and still
places every box inside its image. Everything runs over real loopback HTTP,
against ``serve`` in this process or ``emoji-async simulator`` in another one
(which is also how PyAV's absence is played: ``sys.modules["av"] = None``
before anything is imported, so ``import av`` fails there as it would without
the package).
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoji_async._wire import parse_task_page
from emoji_async.cli._parser import build_parser
from emoji_async.testing import Fault, Simulator, SimulatorConfig, _images, fixed_duration, serve
from emoji_async.testing._faces import boxes_in_image
from emoji_async.testing._images import ImageFacts

from .commands import BOUND, ROOT, command, interrupt, read_line
from .simhttp import DETECT, KEY, SUBMIT, UNTHROTTLED, Answer, RawApi, simulators

# -- the seed's example, as the provider's page writes it ---------------------------------

#: The documented example image (``seed-emoji-api.txt``, and the face-detect page).
DOC_IMAGE = (
    "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20250912/uopnly/"
    "emoji-%E5%9B%BE%E5%83%8F%E6%A3%80%E6%B5%8B.png"
)
DOC_FACE = [212, 194, 460, 441]
DOC_EXT = [63, 30, 609, 575]
#: The body of the seed's curl example, byte for byte (its ``--data-raw``).
SEED_BODY = (
    "{\n"
    '    "model": "emoji-v1",\n'
    '    "input": {\n'
    f'        "image_url": "{DOC_IMAGE}",\n'
    '        "driven_id": "mengwa_kaixin",\n'
    '        "face_bbox": [212,194,460,441],\n'
    '        "ext_bbox": [63,30,609,575]\n'
    "    }\n"
    "}"
)
#: The headers of the seed's curl example (its key placeholder filled in).
SEED_HEADERS = {
    "X-DashScope-Async": "enable",
    "Authorization": f"Bearer {KEY}",
    "Content-Type": "application/json",
}
GATEWAY = "/qwen/api/v1"
FAST = SimulatorConfig(time_scale=0.001, limits=UNTHROTTLED, durations=fixed_duration(60.0))


class Api(RawApi):
    """The simulator's endpoints, spoken in plain HTTP."""

    async def detect(self, image_url: str) -> Answer:
        body = {
            "model": "emoji-detect-v1",
            "input": {"image_url": image_url},
            "parameters": {"ratio": "1:1"},
        }
        return await self.call("POST", DETECT, json=body)

    async def submit(self, inputs: dict[str, Any], **headers: str) -> Answer:
        sent = {"X-DashScope-Async": "enable", **headers}
        return await self.call(
            "POST", SUBMIT, json={"model": "emoji-v1", "input": inputs}, headers=sent
        )

    def inputs(self, image_url: str, driven_id: str = "mengwa_kaixin") -> dict[str, Any]:
        face, ext = self.sim.boxes_for(image_url)
        return {"image_url": image_url, "driven_id": driven_id, "face_bbox": face, "ext_bbox": ext}


Start = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Starts simulators on loopback; all are stopped, and the session closed, at teardown."""
    async with simulators(Api, FAST) as factory:
        yield factory


async def test_the_seeds_curl_example_gets_a_task_under_the_gateway_prefix(start: Start) -> None:
    """The documented image detects as the documented boxes, and the documented submit is taken."""
    api = await start(attrs.evolve(FAST, api_prefix=GATEWAY))
    assert api.server.base_url == f"{api.server.origin}{GATEWAY}"
    detected = await api.detect(DOC_IMAGE)
    assert detected.status == 200
    assert detected.body["output"] == {"bbox_face": DOC_FACE, "ext_bbox_face": DOC_EXT}
    answer = await api.call("POST", SUBMIT, data=SEED_BODY.encode(), headers=SEED_HEADERS, key=None)
    assert answer.status == 200, answer.body
    assert answer.body["output"]["task_status"] == "PENDING"
    (task,) = api.sim.tasks()
    assert (task.task_id, task.image_url) == (answer.body["output"]["task_id"], DOC_IMAGE)
    assert (list(task.face_bbox), list(task.ext_bbox)) == (DOC_FACE, DOC_EXT)


@pytest.mark.parametrize(
    "spelling",
    [
        DOC_IMAGE,
        DOC_IMAGE.replace("%E5%9B%BE%E5%83%8F%E6%A3%80%E6%B5%8B", "图像检测"),
        DOC_IMAGE + "?sim_duration=5",
    ],
    ids=["encoded", "decoded", "with-a-trigger"],
)
def test_every_spelling_of_the_documented_image_has_the_documented_boxes(spelling: str) -> None:
    sim = Simulator(FAST)
    assert sim.boxes_for(spelling) == (DOC_FACE, DOC_EXT)
    assert sim.boxes_for(spelling)[1] is not sim.boxes_for(spelling)[1]  # nobody can change them


async def test_the_simulator_command_with_a_prefix_takes_the_seeds_curl_and_lists_it() -> None:
    """``emoji-async simulator --prefix /qwen/api/v1`` answers the seed's curl with a task."""
    async with command(
        "simulator", "--port", "0", "--prefix", GATEWAY, "--time-scale", "0.01"
    ) as proc:
        base_url = await read_line(proc.stdout)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/qwen/api/v1", base_url)
        async with aiohttp.ClientSession() as session:
            async with session.post(
                base_url + SUBMIT, data=SEED_BODY.encode(), headers=SEED_HEADERS
            ) as answer:
                assert answer.status == 200, await answer.text()
                task_id = (await answer.json())["output"]["task_id"]
            auth = {"Authorization": f"Bearer {KEY}"}
            async with session.get(base_url + "/tasks/", headers=auth) as listed:
                assert listed.status == 200
                page = await listed.json()
        assert [row["task_id"] for row in page["data"]] == [task_id]
        status, _ = await interrupt(proc)
    assert status == 0


@pytest.mark.parametrize(
    ("given_prefix", "mounted"),
    [("/qwen/api/v1", "/qwen/api/v1"), ("qwen/api/v1/", "/qwen/api/v1"), ("/", "")],
)
def test_a_prefix_is_normalised_to_a_leading_slash_and_no_trailing_one(
    given_prefix: str, mounted: str
) -> None:
    assert SimulatorConfig(api_prefix=given_prefix).api_prefix == mounted


@pytest.mark.parametrize("bad", ["/api//v1", "/a b", "/api/{x}", "/api?v=1", "/../v1", "/api/v1#x"])
def test_a_prefix_that_is_not_a_plain_url_path_is_refused_by_the_config_and_the_cli(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="api_prefix must be a URL path"):
        SimulatorConfig(api_prefix=bad)
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["simulator", "--prefix", bad])
    assert done.value.code == 2
    assert "--prefix: expected a URL path such as /api/v1" in capsys.readouterr().err


# -- the task list at both spellings of its path -------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/v1", GATEWAY, ""])
async def test_the_task_list_answers_at_tasks_and_tasks_slash_under_any_prefix(
    start: Start, prefix: str
) -> None:
    api = await start(attrs.evolve(FAST, api_prefix=prefix))
    created = await api.submit(api.inputs("https://example.com/p.png"))
    task_id = created.body["output"]["task_id"]
    for path in ("/tasks", "/tasks/"):
        answer = await api.call("GET", path)
        assert answer.status == 200, (path, answer.body)
        assert [row["task_id"] for row in answer.body["data"]] == [task_id]
    assert [r.endpoint for r in api.sim.requests[-2:]] == ["list", "list"]
    assert api.sim.stats.requests_by_endpoint["list"] == 2


async def test_list_entries_carry_the_documented_account_fields_and_the_client_reads_them(
    start: Start,
) -> None:
    api = await start(attrs.evolve(FAST, api_keys={KEY, "sk-second"}))
    await api.submit(api.inputs("https://example.com/a.png"))
    second = await api.call(
        "POST",
        SUBMIT,
        json={"model": "emoji-v1", "input": api.inputs("https://example.com/b.png")},
        headers={"X-DashScope-Async": "enable"},
        key="sk-second",
    )
    assert second.status == 200
    page = (await api.call("GET", "/tasks/")).body
    rows = page["data"]
    for row in rows:
        assert row["region"] == "cn-beijing"
        assert row["request_id"]
        assert row["caller_parent_id"]
        assert row["caller_uid"]
        assert re.fullmatch(r"apikey:v1:[\w-]+:[\w-]+:[\w-]+:emoji-v1", row["user_api_unique_key"])
    assert len({row["api_key_id"] for row in rows}) == 2  # one id per key
    assert all(row["api_key_id"].isdigit() for row in rows)
    parsed = parse_task_page(page)  # the client's own parser takes the extra fields
    assert [t.task_id for t in parsed.tasks] == [row["task_id"] for row in rows]
    assert {t.region for t in parsed.tasks} == {"cn-beijing"}


# -- the messages the provider quotes, word for word -------------------------------------

BODY_INVALID = "Required body invalid, please check the request body format."


async def _documented_answer(api: Api, case: str) -> Answer:
    image = "https://example.com/p.png"
    inputs = api.inputs(image)
    if case == "missing driven_id":
        return await api.submit({k: v for k, v in inputs.items() if k != "driven_id"})
    if case == "body not JSON":
        return await api.call(
            "POST", SUBMIT, data=b"{not json", headers={"X-DashScope-Async": "enable"}
        )
    if case == "body not an object":
        return await api.call("POST", SUBMIT, json=[1], headers={"X-DashScope-Async": "enable"})
    if case == "unknown template":
        return await api.submit({**inputs, "driven_id": "mengwa_nope"})
    if case == "wrong ext_bbox":
        ext = inputs["ext_bbox"]
        return await api.submit({**inputs, "ext_bbox": [ext[0] + 1, *ext[1:]]})
    if case == "oss URL without the resolve header":
        return await api.detect("oss://dashscope-instant/x/face.png")
    if case == "cancel of a running task":
        running = (await api.submit(inputs)).body["output"]["task_id"]
        return await api.call("POST", f"/tasks/{running}/cancel")
    if case == "no key":
        return await api.call("GET", "/tasks/x", key=None)
    if case == "wrong key":
        return await api.call("GET", "/tasks/x", key="sk-wrong")
    if case == "quota exhausted":
        api.sim.faults.add(Fault("detect", "status", status=429, code="Throttling.AllocationQuota"))
        return await api.detect(image)
    if case == "free tier exhausted":
        api.sim.faults.add(
            Fault("detect", "status", status=403, code="AllocationQuota.FreeTierOnly")
        )
        return await api.detect(image)
    raise AssertionError(case)


#: Each condition the provider's pages quote a message for: status, code, the message.
DOCUMENTED = [
    ("missing driven_id", 400, "InvalidParameter", "Field required: driven_id"),
    ("body not JSON", 400, "InvalidParameter", BODY_INVALID),
    ("body not an object", 400, "InvalidParameter", BODY_INVALID),
    ("unknown template", 400, "InvalidParameter", "Driven not exist: driven_id."),
    ("wrong ext_bbox", 400, "InvalidParameter", "Invalid ext_bbox."),
    (
        "oss URL without the resolve header",
        400,
        "InvalidParameter",
        "The provided URL does not appear to be valid. Ensure it is correctly formatted.",
    ),
    (
        "cancel of a running task",
        400,
        "UnsupportedOperation",
        "Failed to cancel the task, please confirm if the task is in PENDING status.",
    ),
    ("no key", 401, "InvalidApiKey", "No API-key provided."),
    ("wrong key", 401, "InvalidApiKey", "Invalid API-key provided."),
    ("quota exhausted", 429, "Throttling.AllocationQuota", "Free allocated quota exceeded"),
    ("free tier exhausted", 403, "AllocationQuota.FreeTierOnly", "Free allocated quota exceeded"),
]


@pytest.mark.parametrize(("case", "status", "code", "message"), DOCUMENTED)
async def test_an_error_the_provider_quotes_answers_its_documented_message_verbatim(
    start: Start, case: str, status: int, code: str, message: str
) -> None:
    api = await start()
    answer = await _documented_answer(api, case)
    assert (answer.status, answer.body["code"], answer.body["message"]) == (status, code, message)


async def test_detection_rejections_use_the_documented_messages(start: Start) -> None:
    """NoHuman's whole message, and FacePose's opening words, as the provider's pages quote them."""
    api = await start()
    image = "https://example.com/p.png"
    no_human = await api.detect(f"{image}?sim_reject=InvalidFile.NoHuman")
    assert no_human.body["output"] == {
        "code": "InvalidFile.NoHuman",
        "message": "The input image has no human body. Please upload other image with single "
        "person.",
    }
    pose = await api.detect(f"{image}?sim_reject=InvalidFile.FacePose")
    assert pose.body["output"]["message"].startswith("The pose of the detected face is invalid, ")


# -- boxes always lie inside their image --------------------------------------------------


def _inside(box: list[int], width: int, height: int) -> bool:
    x1, y1, x2, y2 = box
    return 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


def _contains(outer: list[int], inner: list[int]) -> bool:
    return all(o <= i for o, i in zip(outer[:2], inner[:2], strict=True)) and all(
        i <= o for o, i in zip(outer[2:], inner[2:], strict=True)
    )


@settings(max_examples=300, deadline=None)
@given(
    digest=st.binary(min_size=32, max_size=32),
    width=st.integers(400, 7000),
    height=st.integers(400, 7000),
)
def test_boxes_of_an_image_of_known_size_lie_inside_it_for_any_size_and_digest(
    digest: bytes, width: int, height: int
) -> None:
    face, ext = ImageFacts(digest, 1000, width, height).boxes()
    assert (face, ext) == boxes_in_image(digest, width, height)
    assert _inside(face, width, height)
    assert _inside(ext, width, height)
    assert _contains(ext, face)  # as the provider's usually do (nesting is not promised)


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr


def _jpeg_header(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof2 = b"\xff\xc2" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof2


def _bmp_header(width: int, height: int) -> bytes:
    return b"BM" + bytes(12) + struct.pack("<Iii", 40, width, -height)


def _webp_header(width: int, height: int) -> bytes:
    extended = b"VP8X" + struct.pack("<I", 10) + bytes(4)
    return (
        b"RIFF\x00\x00\x00\x00WEBP"
        + extended
        + (width - 1).to_bytes(3, "little")
        + (height - 1).to_bytes(3, "little")
    )


@settings(max_examples=100, deadline=None)
@given(
    make=st.sampled_from([_png_header, _jpeg_header, _bmp_header, _webp_header]),
    width=st.integers(1, 16383),
    height=st.integers(1, 16383),
)
def test_the_header_of_each_accepted_format_gives_the_image_size_without_decoding(
    make: Callable[[int, int], bytes], width: int, height: int
) -> None:
    assert _images.header_size(make(width, height) + bytes(16)) == (width, height)


# -- without PyAV --------------------------------------------------------------------------

#: Serves a simulator in a process where ``import av`` fails, with an image host of its
#: own; detects and submits each image, downloads a video, and prints what it saw as JSON.
NO_PYAV = r"""
import sys
sys.modules["av"] = None  # PyAV absent: ``import av`` raises ImportError from here on
import asyncio, json, logging, struct, zlib
import aiohttp
from aiohttp import web
from emoji_async.testing import SimulatorConfig, fixed_duration, serve

logging.basicConfig(format="%(name)s %(levelname)s %(message)s")

def png(width, height):
    rows = b"".join(b"\x00" + b"\xc8\x96\x78" * width for _ in range(height))
    def chunk(kind, data):
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))

def bmp(width, height):
    row = (b"\x78\x96\xc8" * width).ljust((3 * width + 3) // 4 * 4, b"\x00")
    pixels = row * height
    return (b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 0, 0, 0, 0)
            + pixels)

IMAGES = {"/square.png": png(512, 512), "/tall.png": png(400, 900), "/wide.bmp": bmp(1000, 450),
          "/page.html": b"<html><body>not a portrait</body></html>"}

async def main():
    config = SimulatorConfig(time_scale=0.001, durations=fixed_duration(1.0), limits=None)
    host = web.Application()
    host.router.add_get("/{name}", lambda request: web.Response(body=IMAGES[request.path]))
    runner = web.AppRunner(host, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    origin = "http://127.0.0.1:%d" % runner.addresses[0][1]
    seen = {}
    auth = {"Authorization": "Bearer sk-simulator"}
    async with serve(config) as server, aiohttp.ClientSession(headers=auth) as http:
        for path in IMAGES:
            url = origin + path
            body = {"model": "emoji-detect-v1", "input": {"image_url": url},
                    "parameters": {"ratio": "1:1"}}
            async with http.post(server.base_url + "/services/aigc/image2video/face-detect",
                                 json=body) as answer:
                seen[path] = (await answer.json())["output"]
        output = seen["/square.png"]
        body = {"model": "emoji-v1", "input": {
            "image_url": origin + "/square.png", "driven_id": "mengwa_kaixin",
            "face_bbox": output["bbox_face"], "ext_bbox": output["ext_bbox_face"]}}
        async with http.post(server.base_url + "/services/aigc/image2video/video-synthesis",
                             json=body, headers={"X-DashScope-Async": "enable"}) as answer:
            task_id = (await answer.json())["output"]["task_id"]
        while True:
            async with http.get(server.base_url + "/tasks/" + task_id) as answer:
                task = (await answer.json())["output"]
            if task["task_status"] == "SUCCEEDED":
                break
            await asyncio.sleep(0.01)
        async with http.get(task["video_url"]) as answer:
            video = await answer.read()
            seen["video"] = {"content_type": answer.headers["Content-Type"],
                             "label": answer.headers.get("X-Emoji-Simulator"),
                             "size": len(video), "head": video[:40].hex()}
    await runner.cleanup()
    print(json.dumps(seen))

asyncio.run(main())
"""

#: The sizes of the images the script serves.
SIZES = {"/square.png": (512, 512), "/tall.png": (400, 900), "/wide.bmp": (1000, 450)}
#: What a user is told to run for real videos.
INSTALL = "pip install 'emoji-async[video]'"


@pytest.fixture(scope="module")
def without_pyav() -> tuple[dict[str, Any], str]:
    """What the script saw (JSON) and what it wrote on stderr."""
    done = subprocess.run(  # noqa: S603 - the script above, run by this interpreter
        [sys.executable, "-c", NO_PYAV],
        capture_output=True,
        text=True,
        timeout=BOUND,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen, done.stderr


def test_without_pyav_serve_logs_a_warning_naming_the_video_extra_as_it_starts(
    without_pyav: tuple[dict[str, Any], str],
) -> None:
    _, stderr = without_pyav
    (line,) = [line for line in stderr.splitlines() if "PyAV is not installed" in line]
    assert line.startswith("emoji_async.testing WARNING ")
    assert "placeholders" in line
    assert INSTALL in line


@pytest.mark.parametrize("path", sorted(SIZES))
def test_without_pyav_boxes_lie_inside_the_image_its_header_announces(
    without_pyav: tuple[dict[str, Any], str], path: str
) -> None:
    seen, _ = without_pyav
    width, height = SIZES[path]
    assert _inside(seen[path]["bbox_face"], width, height), seen[path]
    assert _inside(seen[path]["ext_bbox_face"], width, height), seen[path]


def test_without_pyav_a_file_that_is_no_image_is_refused_as_the_wrong_format(
    without_pyav: tuple[dict[str, Any], str],
) -> None:
    seen, _ = without_pyav
    assert seen["/page.html"]["code"] == "InvalidFile.Format"


def test_without_pyav_the_video_is_a_labelled_text_placeholder_that_no_mp4_reader_takes(
    without_pyav: tuple[dict[str, Any], str],
) -> None:
    seen, _ = without_pyav
    video = seen["video"]
    head = bytes.fromhex(video["head"])
    assert (video["content_type"], video["label"]) == ("application/octet-stream", "placeholder")
    assert head.startswith(b"emoji-async simulator placeholder")
    assert head[4:8] != b"ftyp"  # an MP4 opens with a box whose type is ftyp


async def test_with_pyav_serve_logs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("av")
    pytest.importorskip("numpy")
    with caplog.at_level("WARNING", logger="emoji_async.testing"):
        async with serve(FAST) as server:
            assert server.simulator.startup_warning is None
    assert [r for r in caplog.records if r.name == "emoji_async.testing"] == []


async def test_without_pyav_the_simulator_command_prints_the_warning_when_it_starts() -> None:
    async with command("simulator", "--port", "0", block_av=True) as proc:
        base_url = await read_line(proc.stdout)
        assert base_url.endswith("/api/v1")
        status, stderr = await interrupt(proc)
    assert status == 0
    assert "PyAV is not installed" in stderr
    assert INSTALL in stderr


async def test_without_pyav_the_demo_stops_at_once_naming_the_video_extra(tmp_path: Path) -> None:
    async with command("demo", "--out", str(tmp_path), block_av=True) as proc:
        async with asyncio.timeout(BOUND):
            _, err = await proc.communicate()
    assert proc.returncode == 1
    assert INSTALL in err.decode()
    assert list(tmp_path.iterdir()) == []  # noqa: ASYNC240 - a listing of an empty directory


# -- what a user gets names the docs page, not a file they do not have ---------------------


def _help_texts() -> dict[str, str]:
    parser = build_parser()
    texts = {"emoji-async": parser.format_help()}
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for name, sub in getattr(action, "choices", {}).items():
            texts[name] = sub.format_help()
    return texts


def test_no_help_text_of_the_cli_mentions_protocol_md() -> None:
    texts = _help_texts()
    assert {"simulator", "demo", "batch", "templates"} <= set(texts)
    offending = [name for name, text in texts.items() if "PROTOCOL" in text]
    assert offending == []
    assert "docs page 'The wire protocol' (docs/wire.md)" in " ".join(texts["simulator"].split())


def test_no_file_a_user_gets_cites_protocol_md_and_the_wire_page_is_in_the_site() -> None:
    shipped = [
        *ROOT.joinpath("emoji_async").rglob("*.py"),
        *ROOT.joinpath("docs").rglob("*.md"),
        ROOT / "README.md",
        ROOT / "mkdocs.yml",
    ]
    citing = [str(p.relative_to(ROOT)) for p in shipped if "PROTOCOL.md" in p.read_text("utf-8")]
    assert citing == []
    assert (ROOT / "docs" / "wire.md").is_file()
    assert re.search(r"^\s+- .*: wire\.md$", (ROOT / "mkdocs.yml").read_text("utf-8"), re.M)

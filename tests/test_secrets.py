"""The API key never shows: in no repr, error, log line, journal file, or output of the CLI.

The simulator accepts one distinctive key, and every test drives the client
through successes and failures with it, then looks for the key (and for its
distinctive middle, so a key cut short or half masked is caught too)
everywhere a person or a log collector could read it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer

from emoji_async import (
    AuthenticationError,
    ConfigurationError,
    DownloadError,
    EmojiClient,
    EmojiError,
    EmojiJob,
    FaceRejectedError,
    PollPolicy,
    ResponseLostError,
    RetryPolicy,
    ServerError,
    SubmissionUncertainError,
    TaskFailedError,
    TaskNotCancelableError,
    UnexpectedResponseError,
    WaitTimeoutError,
    events,
)
from emoji_async._redact import redact
from emoji_async._values import Secret
from emoji_async._wire import parse_task
from emoji_async.cli import main
from emoji_async.testing import Fault, SimulatorServer, fixed_duration, serve
from tests.conftest import SCALE, client_for, detect_and_submit, serve_in_thread, sim_config

SECRET = "sk-SECRET-4f9c2e7a1b3d5f60"
WRONG = "sk-SECRET-wrong-8e1d7c6b5a49"
#: What must not show, whole or in part.
NEEDLES = (SECRET, WRONG, "4f9c2e7a1b3d", "8e1d7c6b5a49")
IMG = "https://example.com/portraits/ada.png"


def hidden(*texts: str | bytes) -> None:
    """No key, and no distinctive part of one, in any of ``texts``."""
    for text in texts:
        for needle in NEEDLES:
            found = needle.encode() in text if isinstance(text, bytes) else needle in text
            assert not found, f"{needle!r} shows in {text[:300]!r}"


def error_texts(exc: BaseException) -> list[str]:
    """An error as anyone could see it: message, repr, attributes, traceback, causes."""
    texts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        texts += [str(err), repr(err), repr(err.args), repr(getattr(err, "__dict__", {}))]
        todo += [err.__cause__, err.__context__]
    return texts


def object_texts(root: object, depth: int = 4) -> list[str]:
    """The reprs of ``root`` and of every attribute of the library's objects under it."""
    texts: list[str] = []
    seen: set[int] = set()

    def walk(value: object, level: int) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        texts.append(repr(value))
        if level == 0 or not type(value).__module__.startswith("emoji_async"):
            return
        for child in getattr(value, "__dict__", {}).values():
            walk(child, level - 1)

    walk(root, depth)
    return texts


def log_texts(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return [formatter.format(record) + repr(record.args) for record in records]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record at DEBUG and up, from the library's loggers and from the root logger."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="emoji_async")
    return caplog


def keyed_config(**overrides: Any) -> Any:
    return sim_config(api_keys=frozenset({SECRET}), **overrides)


# --- the library --------------------------------------------------------------------------


async def test_nothing_a_run_shows_holds_the_key_from_detect_to_download_and_every_failure(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    errors: list[EmojiError] = []
    shown: list[str] = []
    async with serve(keyed_config()) as server, client_for(server, api_key=SECRET) as client:
        sim = server.simulator
        face = await client.detect(IMG)
        task = await client.submit(
            IMG, "mengwa_kaixin", face_bbox=face.face_bbox, ext_bbox=face.ext_bbox
        )
        with pytest.raises(WaitTimeoutError) as timed_out:
            await task.wait(timeout=SCALE)
        errors.append(timed_out.value)
        video = await task.wait()
        path = await client.download(video, tmp_path)
        page = await client.list_tasks()
        shown += [repr(face), repr(task), repr(video), repr(page), repr(task.last_snapshot)]
        shown += object_texts(client)

        with pytest.raises(FaceRejectedError) as rejected:
            await client.detect(IMG + "?sim_reject=InvalidFile.NoHuman")
        with pytest.raises(TaskNotCancelableError) as refused:
            await task.cancel()
        with pytest.raises(DownloadError) as too_big:
            await client.download(video, tmp_path / "small.mp4", max_bytes=16)
        failing = await detect_and_submit(client, IMG + "?sim_fail=InternalError.Algo")
        with pytest.raises(TaskFailedError) as failed:
            await failing.wait()
        errors += [rejected.value, refused.value, too_big.value, failed.value]
        # A submit answered 500 after it created its task: whether the client settles it
        # or reports it uncertain (with the inputs it sent), nothing it says holds the key.
        sim.faults.add(Fault("submit", "status", status=500, after_processing=True))
        try:
            shown.append(repr(await detect_and_submit(client, IMG)))
        except SubmissionUncertainError as exc:
            errors.append(exc)

        sim.faults.add(Fault("query", "reset", times=1000))
        impatient = RetryPolicy(wait_first=0.1, wait_max=0.2, deadline=5)  # 0.05 s here
        async with client_for(server, api_key=SECRET, retry=impatient) as other:
            with pytest.raises(ResponseLostError) as lost:
                await other.task(task.task_id).refresh()
        sim.faults.clear()
        async with client_for(server, api_key=WRONG) as wrong:
            with pytest.raises(AuthenticationError) as denied:
                await wrong.detect(IMG)
        errors += [lost.value, denied.value]

    assert path.stat().st_size > 0
    assert denied.value.http_status == 401
    for error in errors:
        hidden(*error_texts(error))
    hidden(*shown)
    assert any(r.levelno == logging.DEBUG for r in logs.records)
    assert any(r.levelno == logging.INFO and "retrying" in r.getMessage() for r in logs.records)
    hidden(*log_texts(logs.records))


async def test_a_batch_with_a_journal_leaves_the_key_in_no_file_event_outcome_or_log(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    jobs = [
        EmojiJob("https://example.com/portraits/grace.png", "mengwa_jidong", key="unanswered"),
        EmojiJob(IMG, "mengwa_kaixin", key="fine"),
        EmojiJob(IMG + "?sim_reject=InvalidFile.FacePose", "dagong_kaixin", key="rejected"),
        EmojiJob(IMG + "?sim_fail=InternalError.Algo", "jingdian_lei", key="failed"),
    ]
    seen: list[events.JobEvent] = []
    async with serve(keyed_config(durations=fixed_duration(20))) as server:
        # The first submit (one job at a time: the first job's) is answered 500 after
        # creating its task; settled or left uncertain, its record holds no key either.
        server.simulator.faults.add(
            Fault("submit", "status", status=500, after_processing=True, times=1)
        )
        async with client_for(server, api_key=SECRET) as client:
            outcomes = await client.generate_many(
                jobs,
                concurrency=1,
                journal=tmp_path / "run.db",
                download_to=tmp_path / "videos",
                on_event=seen.append,
            )
    assert [o.ok for o in outcomes][1:] == [True, False, False]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]  # noqa: ASYNC240
    assert {p.name for p in files} >= {"run.db", "fine.mp4"}
    hidden(*(p.read_bytes() for p in files))
    for outcome in outcomes:
        hidden(repr(outcome))
        if outcome.error is not None:
            hidden(*error_texts(outcome.error))
    hidden(*(repr(event) for event in seen), *log_texts(logs.records))


# --- where requests go --------------------------------------------------------------------


@asynccontextmanager
async def recording(
    *, redirect_to: str | None = None
) -> AsyncIterator[tuple[BaseTestServer, list[dict[str, str]]]]:
    """A loopback server answering every request (a redirect, or a few bytes), with its headers."""
    seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(dict(request.headers))
        if redirect_to is not None:
            raise web.HTTPTemporaryRedirect(redirect_to)
        return web.Response(body=b"\x00\x00\x00\x18ftypmp42video")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        yield server, seen


async def test_an_api_redirect_is_not_followed_so_the_key_never_reaches_its_target() -> None:
    async with (
        recording() as (target, reached),
        recording(redirect_to=str(target.make_url("/stolen"))) as (api, asked),
        EmojiClient(
            api_key=SECRET,
            base_url=str(api.make_url("/api/v1")),
            limits=None,
            retry=RetryPolicy(wait_first=0.02, deadline=2.0),
        ) as client,
    ):
        # The protocol never answers a redirect: an answer it does not promise.
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.detect(IMG)
    assert caught.value.http_status == 307
    assert asked
    assert all(h["Authorization"] == f"Bearer {SECRET}" for h in asked)  # the API does get it
    assert reached == []
    hidden(*error_texts(caught.value))


async def test_a_result_video_is_fetched_without_the_key_even_through_a_redirect(
    tmp_path: Path,
) -> None:
    async with (
        recording() as (cdn, fetched),
        recording(redirect_to=str(cdn.make_url("/v.mp4"))) as (results, asked),
        EmojiClient(api_key=SECRET, base_url=str(results.make_url("/api/v1"))) as client,
    ):
        await client.download(str(results.make_url("/signed.mp4")), tmp_path / "v.mp4")
    assert (tmp_path / "v.mp4").read_bytes()[4:8] == b"ftyp"
    assert len(asked) == len(fetched) == 1
    for headers in asked + fetched:
        assert "Authorization" not in headers
        hidden(repr(headers))


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        SECRET,
        f"https://dashscope.example.com/api/v1?api_key={SECRET}",
        f"https://dashscope.example.com/api/v1#{SECRET}",
        f"https://user:{SECRET}@dashscope.example.com/api/v1",
    ],
    ids=["the-key-itself", "in-the-query", "in-the-fragment", "as-a-password"],
)
async def test_a_base_url_holding_the_key_by_mistake_is_refused_without_repeating_it(
    base_url: str,
) -> None:
    """``EmojiClient(base_url, key)`` in the wrong order must not print the key back."""
    client = EmojiClient(api_key=SECRET, base_url=base_url)
    with pytest.raises(ConfigurationError) as caught:
        await client.open()
    hidden(*error_texts(caught.value))


def test_a_client_given_the_key_as_its_base_url_does_not_show_it_in_its_repr() -> None:
    hidden(repr(EmojiClient(api_key="sk-other", base_url=SECRET)))


@pytest.mark.parametrize(
    "base_url",
    [
        f"https://dashscope.example.com:8443/api/v1?api_key={SECRET}",
        f"https://dashscope.example.com:8443/api/v1#{SECRET}",
        f"https://user:{SECRET}@dashscope.example.com:8443/api/v1",
        f"https://dashscope.example.com:8443/{SECRET}/api/v1",
    ],
    ids=["in-the-query", "in-the-fragment", "as-a-password", "in-the-path"],
)
def test_an_unopened_client_shows_only_the_scheme_host_and_port_of_its_base_url(
    base_url: str,
) -> None:
    shown = repr(EmojiClient(api_key="sk-other", base_url=base_url))
    hidden(shown)
    assert shown == "<EmojiClient unopened https://dashscope.example.com:8443>"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://dashscope.aliyuncs.com/api/v1",
        "http://127.0.0.1.example.com/api/v1",
        "http://localhost.example.com/api/v1",
        "http://0.0.0.0:8000/api/v1",
        "http://10.0.0.7/api/v1",
    ],
)
async def test_plain_http_to_a_host_that_only_looks_local_is_refused_before_any_request(
    base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for given, env in ((base_url, None), (None, base_url)):
        if env is None:
            monkeypatch.delenv("DASHSCOPE_BASE_URL", raising=False)
        else:
            monkeypatch.setenv("DASHSCOPE_BASE_URL", env)
        with pytest.raises(ConfigurationError, match="unencrypted") as caught:
            await EmojiClient(api_key=SECRET, base_url=given).open()
        hidden(*error_texts(caught.value))


@pytest.mark.parametrize(
    "base_url", ["http://127.8.9.10:1/api/v1", "http://LOCALHOST:1/api/v1", "http://[::1]:1/api"]
)
async def test_plain_http_to_any_loopback_address_opens(base_url: str) -> None:
    async with EmojiClient(api_key=SECRET, base_url=base_url) as client:
        assert client.base_url == base_url.rstrip("/")


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    """A simulator in a thread, accepting only the secret key, which the environment holds."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", SECRET)
    monkeypatch.delenv("DASHSCOPE_BASE_URL", raising=False)
    with serve_in_thread(keyed_config(durations=fixed_duration(20))) as srv:
        yield srv


def cli(server: SimulatorServer, *argv: str) -> int:
    return main([*argv, "--base-url", server.base_url, "--time-scale", str(SCALE)])


def test_no_command_prints_or_logs_the_key_whether_it_succeeds_or_fails(
    server: SimulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    logs: pytest.LogCaptureFixture,
) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        "image,driven_id,key\n"
        f"{IMG},mengwa_kaixin,ada\n"
        f"{IMG}?sim_fail=InternalError.Algo,dagong_kaixin,grace\n",
        encoding="utf-8",
    )
    assert cli(server, "detect", IMG, "--json") == 0
    assert cli(server, "generate", IMG, "mengwa_kaixin", "--out", str(tmp_path / "one")) == 0
    [task] = server.simulator.tasks()
    assert cli(server, "status", task.task_id, "--json") == 0
    assert cli(server, "list") == 0
    assert cli(server, "cancel", task.task_id) == 1  # it has ended: refused
    assert cli(server, "detect", IMG + "?sim_reject=InvalidFile.NoHuman") == 1
    batch = (
        "batch",
        str(jobs),
        "--out",
        str(tmp_path / "many"),
        "--journal",
        str(tmp_path / "b.db"),
    )
    assert cli(server, *batch, "--progress", "always") == 1  # one job fails
    monkeypatch.setenv("DASHSCOPE_API_KEY", WRONG)
    assert cli(server, "list") == 1
    captured = capsys.readouterr()
    assert "HTTP 401 InvalidApiKey" in captured.err
    assert "InternalError.Algo" in captured.out
    hidden(captured.out, captured.err, *log_texts(logs.records))
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != jobs]
    assert {p.name for p in files} >= {"b.db", "ada.mp4"}
    hidden(*(p.read_bytes() for p in files))


# --- answers that misbehave ---------------------------------------------------------------

#: A key with nothing key-like about it: only knowing the client's own key can find it.
PLAIN = "plain-4f9c2e7a1b3d5f60"


def _authorization(request: bytes) -> bytes:
    """The ``Authorization`` line of a raw request (empty if there is none)."""
    for line in request.split(b"\r\n"):
        if line.lower().startswith(b"authorization:"):
            return line
    return b""


#: Raw answers HTTP parsers refuse, each built from the request's ``Authorization`` line.
MALFORMED = {
    "a-bad-status-line": lambda auth: b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}",
    # A header line without its colon, quoting the request's header: aiohttp's
    # message about it shows the line.
    "a-bad-header-line-echoing-the-key": lambda auth: (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + auth.replace(b":", b"") + b"\r\n\r\n{}"
    ),
    "a-body-shorter-than-its-length": lambda auth: (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{}"
    ),
    "a-bad-chunk": lambda auth: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
}


@asynccontextmanager
async def malformed_http(answer: Callable[[bytes], bytes]) -> AsyncIterator[str]:
    """A loopback server answering every request with ``answer``, then closing; its base URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            writer.write(answer(_authorization(request)))
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("answer", sorted(MALFORMED))
async def test_a_malformed_http_answer_keeps_its_cause_but_not_the_request_headers(
    answer: str, logs: pytest.LogCaptureFixture
) -> None:
    """aiohttp's error keeps the request (its headers: the key) in ``request_info``."""
    async with (
        malformed_http(MALFORMED[answer]) as base_url,
        EmojiClient(
            api_key=SECRET,
            base_url=base_url,
            limits=None,
            retry=RetryPolicy(wait_first=0.02, deadline=2.0),
        ) as client,
    ):
        with pytest.raises(ResponseLostError) as caught:
            await client.task("abc").refresh()
    cause = caught.value.__cause__
    assert isinstance(cause, aiohttp.ClientError)  # kept, as aiohttp raised it
    if isinstance(cause, aiohttp.ClientResponseError):
        assert cause.request_info.url.path == "/api/v1/tasks/abc"
        assert cause.request_info.method == "GET"
        assert "Authorization" not in cause.request_info.headers
    with_locals = traceback.TracebackException.from_exception(caught.value, capture_locals=True)
    hidden(*error_texts(caught.value), "".join(with_locals.format()), *log_texts(logs.records))


# --- a gateway that echoes the key --------------------------------------------------------

FACE = [212, 194, 460, 441]
EXT = [63, 30, 609, 575]


def echoing_gateway_app() -> web.Application:
    """The service behind a gateway that repeats the request's ``Authorization`` header.

    A portrait URL holding ``denied`` is answered 401 (JSON, the header in its
    message), one holding ``gateway`` 502 (a plain-text page with the header and
    the bare key); every task ends FAILED with the bare key in its message.
    """
    made: list[str] = []

    def said(request: web.Request) -> tuple[str, str]:
        auth = request.headers.get("Authorization", "")
        return auth, auth.removeprefix("Bearer ")

    async def detect(request: web.Request) -> web.Response:
        auth, key = said(request)
        image = (await request.json())["input"]["image_url"]
        if "denied" in image:
            body = {"code": "InvalidApiKey", "message": f"Invalid API-key provided: {auth}"}
            return web.json_response({**body, "request_id": "r-401"}, status=401)
        if "gateway" in image:
            page = f"502 Bad Gateway\nthe upstream refused {auth} (key {key})\n"
            return web.Response(status=502, text=page)
        output = {"bbox_face": FACE, "ext_bbox_face": EXT}
        return web.json_response({"output": output, "usage": {"image_count": 1}})

    async def submit(request: web.Request) -> web.Response:
        made.append(f"task-{len(made)}")
        return web.json_response({"output": {"task_status": "PENDING", "task_id": made[-1]}})

    async def query(request: web.Request) -> web.Response:
        _, key = said(request)
        output = {
            "task_id": request.match_info["task_id"],
            "task_status": "FAILED",
            "code": "InternalError.Algo",
            "message": f"the worker was called with key={key}",
        }
        return web.json_response({"output": output, "request_id": "r-q"})

    app = web.Application()
    app.router.add_post("/api/v1/services/aigc/image2video/face-detect", detect)
    app.router.add_post("/api/v1/services/aigc/image2video/video-synthesis", submit)
    app.router.add_get("/api/v1/tasks/{task_id}", query)
    return app


FAST_POLL = PollPolicy(wait_first=0.02, wait_max=0.05, deadline=5)


@pytest.mark.parametrize("key", [SECRET, PLAIN], ids=["sk-key", "plain-key"])
async def test_a_gateway_echoing_the_key_leaves_it_in_no_error_journal_or_log(
    key: str, tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    jobs = [
        EmojiJob(IMG, "mengwa_kaixin", key="failed"),
        EmojiJob(IMG + "?gateway", "mengwa_kaixin", key="gateway"),
        EmojiJob(IMG + "?denied", "mengwa_kaixin", key="denied"),
    ]
    async with (
        TestServer(echoing_gateway_app(), host="127.0.0.1") as gateway,
        EmojiClient(
            api_key=key,
            base_url=str(gateway.make_url("/api/v1")),
            limits=None,
            retry=RetryPolicy(wait_first=0.02, deadline=2.0),
            poll=FAST_POLL,
        ) as client,
    ):
        with pytest.raises(AuthenticationError) as denied:
            await client.detect(IMG + "?denied")
        with pytest.raises(ServerError) as refused:
            await client.detect(IMG + "?gateway")
        task = await detect_and_submit(client, IMG)
        with pytest.raises(TaskFailedError) as failed:
            await task.wait()
        outcomes = await client.generate_many(
            jobs, concurrency=1, journal=tmp_path / "run.db", poll=FAST_POLL
        )
    # What the service said is still said, the credential masked.
    assert denied.value.code == "InvalidApiKey"
    assert "Invalid API-key provided: Bearer ********" in str(denied.value)
    assert "the upstream refused Bearer ******** (key ********)" in str(refused.value)
    assert failed.value.message == "the worker was called with key=********"
    assert [o.ok for o in outcomes] == [False, False, False]
    for error in [denied.value, refused.value, failed.value]:
        hidden(*error_texts(error))
    for outcome in outcomes:
        assert outcome.error is not None
        hidden(repr(outcome), *error_texts(outcome.error))
    hidden((tmp_path / "run.db").read_bytes(), *log_texts(logs.records))


@contextmanager
def gateway_in_thread() -> Iterator[str]:
    """The echoing gateway on its own loop in a thread (the command line runs its own); its URL."""
    ready: concurrent.futures.Future[str] = concurrent.futures.Future()
    stop = threading.Event()

    async def main() -> None:
        async with TestServer(echoing_gateway_app(), host="127.0.0.1") as gateway:
            ready.set_result(str(gateway.make_url("/api/v1")))
            await asyncio.to_thread(stop.wait)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=10)
    finally:
        stop.set()
        thread.join(timeout=10)


def test_the_command_line_repeats_an_echoed_key_nowhere(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    logs: pytest.LogCaptureFixture,
) -> None:
    """Its stderr, its output (the batch table included) and its journal."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", SECRET)
    monkeypatch.delenv("DASHSCOPE_BASE_URL", raising=False)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        f"image,driven_id,key\n{IMG},mengwa_kaixin,ada\n{IMG}?gateway,dagong_kaixin,grace\n",
        encoding="utf-8",
    )
    with gateway_in_thread() as base_url:

        def cli(*argv: str) -> int:
            return main([*argv, "--base-url", base_url, "--time-scale", str(SCALE)])

        assert cli("detect", IMG + "?denied") == 1
        assert cli("detect", IMG + "?gateway") == 1
        assert cli("generate", IMG, "mengwa_kaixin", "--out", str(tmp_path / "one")) == 1
        assert cli("status", "task-7", "--json") == 0
        batch = ("batch", str(jobs), "--out", str(tmp_path / "many"))
        assert cli(*batch, "--journal", str(tmp_path / "b.db"), "--progress", "never") == 1
    captured = capsys.readouterr()
    assert "HTTP 401 InvalidApiKey: Invalid API-key provided: Bearer ********" in captured.err
    assert "key=********" in captured.out
    hidden(captured.out, captured.err, *log_texts(logs.records))
    hidden((tmp_path / "b.db").read_bytes())


@pytest.mark.parametrize(
    ("said", "repeated"),
    [
        (f"authorization: bearer {PLAIN}", "authorization: bearer ********"),
        ("Bearer abc.DEF_~+/-x==, next", "Bearer ********, next"),
        ("a key sk-0123456789abcdef here", "a key ******** here"),
        ("task-12345678 and disk-12345678 stay", "task-12345678 and disk-12345678 stay"),
        ("sk-short stays", "sk-short stays"),
    ],
)
def test_redact_takes_out_a_bearer_token_and_what_looks_like_a_key(
    said: str, repeated: str
) -> None:
    assert redact(said) == repeated


def test_redact_takes_out_a_key_that_looks_like_nothing_while_its_secret_lives() -> None:
    secret = Secret(PLAIN)
    assert redact(f"key {PLAIN}.") == "key ********."
    del secret
    gc.collect()
    assert redact(f"key {PLAIN}.") == f"key {PLAIN}."


def test_a_task_answer_quoting_the_key_in_a_bad_field_is_refused_without_repeating_it() -> None:
    body = {"output": {"task_id": "t", "task_status": "RUNNING", "submit_time": f"Bearer {SECRET}"}}
    with pytest.raises(UnexpectedResponseError) as caught:
        parse_task(body)
    hidden(*error_texts(caught.value))


def test_a_video_url_is_not_redacted_even_where_it_looks_like_it_holds_a_key() -> None:
    """A signed URL is fetched as it is; only the texts around it are redacted."""
    url = "https://results.example.com/v/a1-sk-0123abcd4567.mp4?Signature=Bearer%20x"
    output = {
        "task_id": "t",
        "task_status": "SUCCEEDED",
        "video_url": url,
        "message": "made with sk-0123abcd4567",
    }
    snap = parse_task({"output": output, "usage": {"video_duration": 2}})
    assert snap.video_url == url
    assert snap.message == "made with ********"

"""A service that misbehaves on purpose is bounded by the client: in memory, in time, in waits.

Each test runs the client against a small HTTP host on 127.0.0.1, written
here by hand so that it can do what no well-behaved server does: answer with
a body far larger than any answer of the service, or a small gzip body that
inflates to 64 MiB; send its headers and then one byte every half second;
ask for a ``Retry-After`` of 10**12 seconds; serve a video gzip-encoded.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import tracemalloc
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from emoji_async import (
    DownloadError,
    EmojiClient,
    RateLimitError,
    RateLimits,
    ResponseLostError,
    RetryPolicy,
    SubmissionUncertainError,
    UnexpectedResponseError,
)
from emoji_async._answers import MAX_ANSWER_BYTES

IMG = "https://example.com/portraits/ada.png"
FACE = [212, 194, 460, 441]
EXT = [63, 30, 609, 575]
DETECT = "/api/v1/services/aigc/image2video/face-detect"
SUBMIT = "/api/v1/services/aigc/image2video/video-synthesis"
#: The retry deadline of the clients below, in seconds.
DEADLINE = 2.0
#: How long a test lets the old behaviour run before it counts as a hang, in seconds.
HANG = 20.0
#: What a dripping host sends at most: one byte every half second, for 40 s.
DRIPS = 80

#: ``handler(method, path, writer)`` writes one whole answer.
Handler = Callable[[str, str, asyncio.StreamWriter], Awaitable[None]]


def answer(status: int, body: bytes, **headers: str) -> bytes:
    """An HTTP/1.1 answer that closes its connection."""
    reason = {200: "OK", 429: "Too Many Requests"}.get(status, "Status")
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def as_json(value: object) -> bytes:
    return json.dumps(value).encode()


def task_answer(task_id: str, status: str = "PENDING") -> bytes:
    return as_json({"request_id": "r", "output": {"task_id": task_id, "task_status": status}})


EMPTY_LIST = as_json(
    {"total": 0, "total_page": 0, "page_no": 1, "page_size": 100, "request_id": "r", "data": []}
)
DETECTED = as_json(
    {
        "output": {"bbox_face": FACE, "ext_bbox_face": EXT},
        "usage": {"image_count": 1},
        "request_id": "r",
    }
)


@asynccontextmanager
async def host(handler: Handler) -> AsyncIterator[tuple[str, Counter[str]]]:
    """A loopback host: its base URL, and how many requests each ``METHOD path`` got."""
    hits: Counter[str] = Counter()
    running: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        assert me is not None
        running[writer] = me
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            method, target, _ = head.split("\r\n", 1)[0].split(" ", 2)
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    await reader.readexactly(int(value))
            path = target.split("?", 1)[0]
            hits[f"{method} {path}"] += 1
            await handler(method, path, writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up, as it should once it has seen enough
        finally:
            running.pop(writer, None)
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api/v1", hits
    finally:
        server.close()
        # A dripping answer still going ends at its next write once its connection is gone.
        handlers = list(running.values())
        for writer in list(running):
            writer.transport.abort()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def drip(writer: asyncio.StreamWriter) -> None:
    """Headers at once, then one byte of JSON whitespace every half second (40 s at most)."""
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\nConnection: close\r\n\r\n"
    )
    for _ in range(DRIPS):
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(0.5)


def client_at(base_url: str, *, deadline: float = DEADLINE, **options: object) -> EmojiClient:
    settings: dict[str, object] = {
        "api_key": "sk-hostile-host",
        "base_url": base_url,
        "retry": RetryPolicy(
            wait_first=0.05, wait_max=0.2, deadline=deadline, reconcile_window=None
        ),
        "limits": None,
    }
    settings.update(options)
    return EmojiClient(**settings)  # type: ignore[arg-type]


async def timed(call: Awaitable[object]) -> tuple[BaseException | None, float]:
    """What ``call`` raised (``None``: nothing) and how long it took; a hang fails the test."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(HANG):
            await call
    except TimeoutError as exc:
        if loop.time() - started >= HANG:
            pytest.fail(f"still running after {HANG:g} s")
        return exc, loop.time() - started
    except Exception as exc:
        return exc, loop.time() - started
    return None, loop.time() - started


# --- memory: an answer's size is capped, decompressed size included ---------------------------


async def test_a_huge_json_answer_to_a_poll_is_refused_without_being_held_whole() -> None:
    size = 32 * 1024 * 1024
    piece = b" " * (64 * 1024)
    sent: list[int] = []

    # A hand-written body of ``size`` bytes: valid JSON whose padding follows the answer.
    async def padded(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        head = task_answer("t-1")[:-1] + b', "pad": "'
        tail = b'"}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {size}\r\n\r\n".encode()
        )
        writer.write(head)
        total = len(head)
        while total + len(piece) + len(tail) <= size:
            writer.write(piece)
            await writer.drain()
            total += len(piece)
            sent.append(total)
        writer.write(b" " * (size - total - len(tail)) + tail)

    tracemalloc.start()
    try:
        async with host(padded) as (base, hits), client_at(base, deadline=1.0) as client:
            tracemalloc.reset_peak()
            error, _ = await timed(client.task("t-1").refresh())
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, UnexpectedResponseError), error
    assert f"over {MAX_ANSWER_BYTES} bytes" in str(error)
    # Each attempt stops reading past the cap: the host never got to send the whole body.
    assert hits["GET /api/v1/tasks/t-1"] >= 1
    assert max(sent) < size
    assert peak < size // 4, f"peak {peak} bytes while the answer was {size}"


async def test_a_small_gzip_answer_inflating_to_64_mib_is_refused_without_inflating_it() -> None:
    inflated = 64 * 1024 * 1024
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [squeeze.compress(task_answer("t-1")[:-1] + b', "pad": "')]
    block = b"a" * (1024 * 1024)
    parts += [squeeze.compress(block) for _ in range(inflated // len(block))]
    parts.append(squeeze.compress(b'"}') + squeeze.flush())
    bomb = b"".join(parts)
    del parts, block
    assert len(bomb) < inflated // 500  # a small body (about 64 KB)

    async def compressed(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(200, bomb, Content_Type="application/json", Content_Encoding="gzip"))

    tracemalloc.start()
    try:
        async with host(compressed) as (base, hits), client_at(base, deadline=1.0) as client:
            tracemalloc.reset_peak()
            error, _ = await timed(client.task("t-1").refresh())
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, UnexpectedResponseError), error
    assert f"over {MAX_ANSWER_BYTES} bytes" in str(error)
    assert hits["GET /api/v1/tasks/t-1"] >= 1
    assert peak < inflated // 8, f"peak {peak} bytes for an answer inflating to {inflated}"


def raw_deflate(data: bytes) -> bytes:
    squeeze = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return squeeze.compress(data) + squeeze.flush()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", raw_deflate)],
    ids=["gzip", "deflate", "bare-deflate"],
)
async def test_a_compressed_answer_of_a_normal_size_is_still_read(
    encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    async def compressed(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(
            answer(
                200,
                compress(task_answer("t-1", "RUNNING")),
                Content_Type="application/json",
                Content_Encoding=encoding,
            )
        )

    async with host(compressed) as (base, _), client_at(base) as client:
        snapshot = await client.task("t-1").refresh()
    assert snapshot.raw_status == "RUNNING"


async def test_a_paid_submit_answered_past_the_cap_is_settled_as_lost_and_never_resent() -> None:
    async def service(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        if path == SUBMIT:
            padding = b" " * (2 * MAX_ANSWER_BYTES)
            writer.write(answer(200, task_answer("t-big")[:-1] + padding + b"}"))
        elif path == "/api/v1/tasks":
            writer.write(answer(200, EMPTY_LIST))
        else:
            writer.write(answer(200, task_answer(path.rsplit("/", 1)[-1])))

    retry = RetryPolicy(wait_first=0.05, wait_max=0.2, deadline=DEADLINE, reconcile_window=5.0)
    async with host(service) as (base, hits), client_at(base, retry=retry) as client:
        async with asyncio.timeout(HANG):
            task = await client.submit(IMG, "mengwa_kaixin", face_bbox=FACE, ext_bbox=EXT)
    # Adopted: the answer cut at the cap still named the task, and the service knows it.
    assert task.task_id == "t-big"
    assert hits[f"POST {SUBMIT}"] == 1  # never sent again
    assert hits["GET /api/v1/tasks/t-big"] >= 1


async def test_a_paid_submit_answered_past_the_cap_is_uncertain_without_reconciling() -> None:
    async def service(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(200, task_answer("t-big")[:-1] + b" " * (2 * MAX_ANSWER_BYTES) + b"}"))

    async with host(service) as (base, hits), client_at(base) as client:
        error, _ = await timed(client.submit(IMG, "mengwa_kaixin", face_bbox=FACE, ext_bbox=EXT))
    assert isinstance(error, SubmissionUncertainError), error
    assert isinstance(error.__cause__, UnexpectedResponseError)
    assert hits[f"POST {SUBMIT}"] == 1


# --- time: each call ends by one deadline ---------------------------------------------------


async def dripping(method: str, path: str, writer: asyncio.StreamWriter) -> None:
    await drip(writer)


async def test_a_refresh_against_a_dripping_host_ends_by_its_deadline() -> None:
    async with host(dripping) as (base, hits), client_at(base) as client:
        error, took = await timed(client.task("t-1").refresh())
    assert isinstance(error, ResponseLostError), error
    assert "deadline" in str(error)
    assert took < 3 * DEADLINE
    assert hits["GET /api/v1/tasks/t-1"] >= 1


async def test_a_detect_against_a_dripping_host_ends_by_its_deadline() -> None:
    async with host(dripping) as (base, _), client_at(base) as client:
        error, took = await timed(client.detect(IMG))
    assert isinstance(error, ResponseLostError), error
    assert took < 3 * DEADLINE


async def test_a_download_from_a_dripping_host_ends_by_its_deadline(tmp_path: Path) -> None:
    async def video(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        await drip(writer)

    async with host(video) as (base, _), client_at(base) as client:
        error, took = await timed(client.download(base + "/v.mp4", tmp_path / "v.mp4"))
    assert isinstance(error, DownloadError), error
    assert took < 3 * DEADLINE
    assert os.listdir(tmp_path) == []


async def test_generate_with_a_timeout_ends_by_it_even_under_a_longer_retry_deadline() -> None:
    timeout = 3.0
    async with host(dripping) as (base, _), client_at(base, deadline=60.0) as client:
        error, took = await timed(client.generate(IMG, "mengwa_kaixin", timeout=timeout))
    assert isinstance(error, ResponseLostError), error
    assert took < 2 * timeout


async def test_generate_whose_timeout_passes_in_its_submit_says_the_submit_is_uncertain() -> None:
    async def service(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        if path == SUBMIT:
            await drip(writer)
        else:
            writer.write(answer(200, DETECTED))

    timeout = 2.0
    # The submit itself may go on (up to its retry deadline, 3 timeouts) and settle.
    async with host(service) as (base, hits), client_at(base, deadline=3 * timeout) as client:
        error, took = await timed(client.generate(IMG, "mengwa_kaixin", timeout=timeout))
    assert isinstance(error, SubmissionUncertainError), error
    assert "timeout of 2 s" in str(error)
    assert took < 2 * timeout
    assert hits[f"POST {SUBMIT}"] == 1


async def test_a_dripping_submit_is_settled_as_lost_and_frees_the_submit_lock() -> None:
    async def service(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        if hits[f"POST {SUBMIT}"] == 1:
            await drip(writer)
        else:
            writer.write(answer(200, task_answer("t-2")))

    async with host(service) as (base, hits), client_at(base) as client:
        first = asyncio.ensure_future(
            client.submit(IMG, "mengwa_kaixin", face_bbox=FACE, ext_bbox=EXT)
        )
        try:
            for _ in range(100):  # until the first submit is out (5 s at most)
                if hits[f"POST {SUBMIT}"]:
                    break
                await asyncio.sleep(0.05)
            error, took = await timed(
                client.submit(IMG, "jingdian_lei", face_bbox=FACE, ext_bbox=EXT)
            )
            first_error, _ = await timed(first)
        finally:
            first.cancel()
    assert error is None, error
    assert took < 3 * DEADLINE
    assert isinstance(first_error, SubmissionUncertainError), first_error
    assert isinstance(first_error.__cause__, ResponseLostError)
    assert hits[f"POST {SUBMIT}"] == 2  # the dripping one was never sent again


# --- Retry-After: never past the call's deadline, never holding the group for long --------


async def test_a_huge_retry_after_fails_that_call_at_once_and_holds_no_later_call_long() -> None:
    async def service(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        if hits[f"POST {DETECT}"] == 1:
            body = as_json({"code": "Throttling", "message": "slow down", "request_id": "r"})
            writer.write(answer(429, body, Retry_After="1000000000000"))
        else:
            writer.write(answer(200, DETECTED))

    scale = 0.01  # a 60 s hold cap is 0.6 s here, a 200 s retry deadline 2 s
    retry = RetryPolicy(wait_first=5, wait_max=20, deadline=DEADLINE / scale)
    async with (
        host(service) as (base, hits),
        client_at(base, retry=retry, limits=RateLimits(), time_scale=scale) as client,
    ):
        error, took = await timed(client.detect(IMG))
        assert isinstance(error, RateLimitError), error
        assert error.retry_after is not None
        assert error.retry_after > DEADLINE
        assert took < DEADLINE  # it did not wait out its deadline for nothing
        assert hits[f"POST {DETECT}"] == 1  # no retry could have come in time
        later, later_took = await timed(client.detect(IMG))
    assert later is None, later
    assert later_took < 3 * RateLimits().max_hold * scale + DEADLINE
    assert hits[f"POST {DETECT}"] == 2


async def test_a_wait_answered_429_with_a_retry_after_past_its_timeout_fails_at_once() -> None:
    async def service(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        body = as_json({"code": "Throttling", "message": "slow down", "request_id": "r"})
        writer.write(answer(429, body, Retry_After="1000000000000"))

    timeout = 5.0
    async with host(service) as (base, hits), client_at(base) as client:
        error, took = await timed(client.task("t-1").wait(timeout=timeout))
    assert isinstance(error, RateLimitError), error  # not a WaitTimeoutError at 5 s
    assert took < timeout / 2
    assert hits["GET /api/v1/tasks/t-1"] == 1


# --- a video sent gzip-encoded ----------------------------------------------------------------


async def test_a_gzip_encoded_video_with_its_compressed_length_is_saved_as_the_video(
    tmp_path: Path,
) -> None:
    video = b"\x00\x00\x00\x18ftypmp42" + os.urandom(200_000) + b"\x00" * 100_000
    encoded = gzip.compress(video)

    async def result_host(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(200, encoded, Content_Type="video/mp4", Content_Encoding="gzip"))

    async with host(result_host) as (base, hits), client_at(base) as client:
        saved = await client.download(base + "/v.mp4", tmp_path / "v.mp4")
    assert saved.read_bytes() == video
    assert hits["GET /api/v1/v.mp4"] == 1


async def test_a_gzip_encoded_video_cut_short_leaves_no_file(tmp_path: Path) -> None:
    encoded = gzip.compress(os.urandom(100_000))[:50_000]  # a whole body, of a broken stream

    async def result_host(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(200, encoded, Content_Type="video/mp4", Content_Encoding="gzip"))

    async with host(result_host) as (base, _), client_at(base, deadline=0.5) as client:
        error, _ = await timed(client.download(base + "/v.mp4", tmp_path / "v.mp4"))
    assert isinstance(error, DownloadError), error
    assert os.listdir(tmp_path) == []

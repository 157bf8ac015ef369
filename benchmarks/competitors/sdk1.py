"""The official SDK 1.x (``dashscope>=1.27,<2``): its asyncio path, in a child process.

1.x and the 2.x the project installs share the package name ``dashscope``, so
1.x lives in a directory of its own (``sdk_dir()``: ``$EMOJI_BENCH_SDK1_DIR``,
else ``<tempdir>/emoji_async-bench/dashscope1``), installed once by
``pip install --no-deps --target`` (``install``), and is imported only by a
child interpreter that has that directory first on ``sys.path``. ``--no-deps``
keeps the child on this interpreter's aiohttp, requests and the rest, instead
of a second copy shadowing them.

Can 1.x send an Emoji submit? Mostly. What was seen against the simulator:

* ``VideoSynthesis.async_call`` / ``AioVideoSynthesis.async_call``, as the
  class is meant to be used, posts to ``/services/aigc/video-generation/
  video-synthesis`` (the simulator answers 404: not the Emoji path). With
  ``task="image2video"`` and the four Emoji inputs in ``extra_input`` it
  reaches the Emoji path, but its input also carries ``"prompt": null`` and
  ``"extend_prompt": true``;
* the generic ``BaseAsyncAioApi.async_call(model, input, task_group="aigc",
  task="image2video", function="video-synthesis")`` posts the Emoji input
  exactly as given, plus an empty ``"parameters": {}``.

The simulator ignores fields it does not read, so both create tasks there;
whether the real service accepts the extra fields is not known. The driver
(:mod:`._sdk1_driver`) uses the generic call, the closer of the two to the
protocol. Its polls, and how their sleeps are scaled, are described there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from . import JobResult, JobSpec
from ._isolation import run_in_child

__all__ = [
    "DRIVER",
    "REQUIREMENT",
    "Sdk1UnavailableError",
    "available",
    "ensure",
    "install",
    "run",
    "sdk_dir",
]

REQUIREMENT = "dashscope>=1.27,<2"
DRIVER = "benchmarks.competitors._sdk1_driver:run"
_ENV_DIR = "EMOJI_BENCH_SDK1_DIR"
_CHECK = "import dashscope.client.base_api, dashscope.version; print(dashscope.version.__version__)"


class Sdk1UnavailableError(RuntimeError):
    """The SDK 1.x is not installed in its directory and could not be (the message says why)."""


def sdk_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """Where 1.x lives: ``directory``, else ``$EMOJI_BENCH_SDK1_DIR``, else under the tempdir."""
    if directory is not None:
        return Path(directory)
    if configured := os.environ.get(_ENV_DIR):
        return Path(configured)
    return Path(tempfile.gettempdir()) / "emoji_async-bench" / "dashscope1"


async def _run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    out, _ = await process.communicate()
    return int(process.returncode or 0), out.decode(errors="replace")


async def available(directory: str | os.PathLike[str] | None = None) -> str | None:
    """The 1.x version importable from the directory (with this interpreter's deps), or None."""
    path = sdk_dir(directory)
    if not (path / "dashscope").is_dir():
        return None
    env = {**os.environ, "PYTHONPATH": str(path)}
    code, out = await _run(sys.executable, "-P", "-c", _CHECK, env=env)
    version = out.strip().splitlines()[-1] if out.strip() else ""
    return version if code == 0 and version.startswith("1.") else None


async def install(directory: str | os.PathLike[str] | None = None) -> str:
    """``pip install --no-deps --target`` 1.x once: its version, or ``Sdk1UnavailableError``.

    Installs into a fresh sibling directory and renames it into place, so an
    interrupted install leaves nothing half-done where ``available`` looks.
    """
    path = sdk_dir(directory)
    staging = path.with_name(f"{path.name}.part-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    argv += ["--no-deps", "--target", str(staging), REQUIREMENT]
    code, out = await _run(*argv)
    if code != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise Sdk1UnavailableError(f"pip install {REQUIREMENT!r} failed ({code}): {out[-1500:]}")
    shutil.rmtree(path, ignore_errors=True)
    staging.rename(path)
    version = await available(path)
    if version is None:
        raise Sdk1UnavailableError(
            f"{REQUIREMENT} installed in {path} but does not import with this interpreter"
        )
    return version


async def ensure(
    directory: str | os.PathLike[str] | None = None, *, allow_install: bool = True
) -> tuple[Path, str]:
    """The SDK 1.x directory and version, installing it first if allowed and needed."""
    path = sdk_dir(directory)
    version = await available(path)
    if version is None:
        if not allow_install:
            raise Sdk1UnavailableError(f"the SDK 1.x is not installed in {path}")
        version = await install(path)
    return path, version


async def run(
    base_url: str,
    jobs: list[JobSpec],
    *,
    time_scale: float,
    directory: str | os.PathLike[str] | None = None,
) -> list[JobResult]:
    """Every job through the 1.x asyncio API, in a child process (installing 1.x if needed)."""
    path, _ = await ensure(directory)
    child = await run_in_child(DRIVER, base_url, jobs, time_scale=time_scale, first_on_path=path)
    return child.results

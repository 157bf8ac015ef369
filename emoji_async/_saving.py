"""A download's bytes onto disk: a hidden temporary file, renamed only when complete.

The transport fetches; this module writes. A file appears under its name only
whole, is never written over unless asked (a hard link, where the file system
has them, takes the name in one step), and leaves no temporary file behind.
Every file system error (a full disk, no permission, a name too long, a
directory in the way) becomes a :class:`DownloadError` naming the path the
caller chose, never the URL or a header, and is not retried: writing again
would meet the same disk.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from ._answers import Chunked, Inflater
from ._errors import DownloadError

__all__ = ["discard", "move_into_place", "on_disk", "part_path", "stream_to", "video_exists"]

log = logging.getLogger("emoji_async")

_P = ParamSpec("_P")
_T = TypeVar("_T")


def video_exists(dest: Path) -> DownloadError:
    """The error for a download whose file is already there: it is left as it is."""
    return DownloadError(
        f"{str(dest)!r} exists already; a video is never written over another "
        "(choose another name, remove the file, or pass overwrite=True)",
        transient=False,
    )


#: What ``link()`` says on a file system without hard links.
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS})


def move_into_place(part: Path, dest: Path, *, replace: bool) -> bool:
    """Give the complete ``part`` its name; ``False`` if the name is taken and not ``replace``.

    A hard link to the new name fails if the name exists, in one step, so a
    file that appeared since the download began is never replaced. Where the
    file system has no hard links, a check just before the rename stands in
    (a file created in between would be lost: a narrow window, on rare systems).
    """
    if replace:
        os.replace(part, dest)
        return True
    try:
        os.link(part, dest)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if os.path.lexists(dest):
            return False
        os.replace(part, dest)
        return True
    os.unlink(part)
    return True


#: The longest file name most file systems take, in bytes.
_NAME_MAX = 255


def part_path(dest: Path) -> Path:
    """Where ``dest`` is written until it is complete: a hidden name beside it, for this attempt."""
    tag = uuid.uuid4().hex[:8]
    name = f".{dest.name}.{tag}.part"
    if len(name.encode("utf-8", "surrogatepass")) > _NAME_MAX:
        name = f".{tag}.part"  # a name that just fits must not fail for its temporary one
    return dest.with_name(name)


async def on_disk(dest: Path, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``call`` in a worker thread: a file system error becomes a :class:`DownloadError`.

    Writing again would meet the same disk, so it is not transient. Only the
    path the caller chose is named, never the URL or a header.
    """
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except (OSError, ValueError) as exc:  # ValueError: a name holding a NUL character
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DownloadError(
            f"the video could not be saved to {str(dest)!r}: {reason or type(exc).__name__}",
            transient=False,
        ) from exc


async def discard(part: Path) -> None:
    """Remove a download's temporary file, if it exists; never masks the download's own error."""
    try:
        await asyncio.to_thread(part.unlink, missing_ok=True)
    except ValueError:
        pass  # a name holding a NUL character: it was never created
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ENAMETOOLONG):  # else never created
            log.warning("could not remove the partial download %s: %s", part, exc.strerror or exc)


async def stream_to(
    content: Chunked, inflater: Inflater, part: Path, dest: Path, max_bytes: int
) -> tuple[int, int]:
    """Write the body to ``part``, inflated; the bytes received and the bytes written."""
    received = written = 0
    handle = await on_disk(dest, part.open, "wb")
    try:
        try:
            async for chunk in content.iter_chunked(256 * 1024):
                received += len(chunk)
                for piece in inflater.feed(chunk):
                    written += len(piece)
                    if written > max_bytes:
                        raise DownloadError(f"the video is over {max_bytes} bytes", transient=False)
                    await on_disk(dest, handle.write, piece)
            inflater.finish()
        except ValueError as exc:  # damaged or cut-short compressed data
            raise DownloadError(f"the video arrived damaged: {exc}") from exc
    finally:
        await on_disk(dest, handle.close)
    return received, written

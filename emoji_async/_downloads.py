"""A result video onto disk: the one path :meth:`EmojiClient.download` and a batch take.

Both fetch and save through :func:`save_video`: the service API's download,
retried while a failure may pass, written by :mod:`._saving` under a hidden
name and given its own only once complete, never over another file unless
asked. What differs is only where the file goes and what names it:

- ``client.download(video, folder)`` names the file after the task
  (:func:`task_file_name`): a task id comes from the network, so only
  ``[A-Za-z0-9_-]`` of it is kept.
- a batch's ``download_to`` names it after the job's key
  (:func:`~emoji_async._jobs.file_name_for`, public as ``emoji_async.file_name_for``):
  a key is the caller's own name, dots and all, and its files are found again
  by that name when a journal resumes the batch.

The two rules name different things and stay distinct: changing either would
rename files their users already have. The client's steps before the fetch
(is ``dest`` a folder, make its folders) fail as "cannot save to" the path,
nothing fetched yet; a failure while the video is written is worded by
:func:`._saving.on_disk`.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from ._api import ServiceAPI
from ._errors import DownloadError, ValidationError
from ._models import VideoResult
from ._transport import MAX_VIDEO_BYTES

__all__ = ["MAX_INT64", "download_video", "save_video", "task_file_name"]

_T = TypeVar("_T")

#: The largest download cap taken: any real one is far below, and a number past it
#: (10**5000) could not even be written in a message.
MAX_INT64 = 2**63 - 1


def _download_url(video: VideoResult | str, *, overwrite: bool, max_bytes: int) -> str:
    """The URL :meth:`EmojiClient.download` fetches, once its arguments are checked."""
    url = video.video_url if isinstance(video, VideoResult) else video
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValidationError("video", "a VideoResult or an http(s) video URL", url)
    if type(overwrite) is not bool:
        raise ValidationError("overwrite", "True or False", overwrite)
    if type(max_bytes) is not int or not 1 <= max_bytes <= MAX_INT64:
        raise ValidationError("max_bytes", f"an int of bytes from 1 to {MAX_INT64}", max_bytes)
    return url


def task_file_name(task_id: str) -> str:
    """The file a task's video is saved as in a folder: ``<task_id>.mp4``, kept plain."""
    # The id comes from the network: never let it name a path outside dest.
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", task_id)[:128] or "video"
    return f"{safe}.mp4"


async def _destination(video: VideoResult | str, dest: str | os.PathLike[str]) -> Path:
    """The file :meth:`EmojiClient.download` writes, its parent folders made if missing.

    ``dest`` names a folder when it is an existing directory or a string ending
    in a path separator: the video goes in it as :func:`task_file_name` names it.
    """
    path = Path(dest)
    if _names_a_folder(dest) or await _on_disk(path, path.is_dir):
        if not isinstance(video, VideoResult):
            raise ValidationError("dest", "a file path when video is a bare URL", dest)
        path = path / task_file_name(video.task_id)
    await _on_disk(path, lambda: path.parent.mkdir(parents=True, exist_ok=True))
    return path


class _Opened(Protocol):
    """An open client's service (its lifetime, without importing the client)."""

    @property
    def service(self) -> ServiceAPI: ...


async def download_video(
    opened: _Opened,
    video: VideoResult | str,
    dest: str | os.PathLike[str],
    *,
    max_bytes: int,
    overwrite: bool,
) -> Path:
    """Save a result video as :meth:`EmojiClient.download` documents; the file written."""
    url = _download_url(video, overwrite=overwrite, max_bytes=max_bytes)
    path = await _destination(video, dest)
    await save_video(opened.service, url, path, max_bytes=max_bytes, replace=overwrite)
    return path


async def save_video(
    api: ServiceAPI, url: str, path: Path, *, max_bytes: int = MAX_VIDEO_BYTES, replace: bool
) -> int:
    """Fetch the video at ``url`` to ``path``; the bytes written.

    The file appears only once complete and of the announced length; an
    existing one is written over only if ``replace``, else it is a
    :class:`DownloadError`. Transient failures are retried.
    """
    return await api.download(url, path, max_bytes=max_bytes, replace=replace)


def _names_a_folder(dest: str | os.PathLike[str]) -> bool:
    """Whether ``dest`` is spelled as a folder: a string ending in a path separator.

    ``pathlib`` drops a trailing separator, so only the string says so.
    """
    text = os.fspath(dest)
    return isinstance(text, str) and text.endswith((os.sep, "/"))


async def _on_disk(path: Path, step: Callable[[], _T]) -> _T:
    """A step before the fetch (is it a folder, make the folders), off the loop.

    Its failure is a :class:`DownloadError` that says it "cannot save to" the
    path: nothing was fetched yet. A failure while the video is written is
    worded by :func:`._saving.on_disk` instead.
    """
    try:
        return await asyncio.to_thread(step)
    except (OSError, ValueError) as exc:  # a name too long, a file where a directory goes
        raise DownloadError(f"cannot save to {os.fspath(path)!r}: {exc}", transient=False) from exc

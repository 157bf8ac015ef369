"""The folder a batch saves its videos in (``download_to``): made, claimed, written.

Everything that can be checked is checked before anything is sent: the folder
is made, and no job's file may be one the batch did not write. A video is
saved as ``<folder>/<key>.mp4`` as soon as its task succeeds, fetched and
written as :meth:`EmojiClient.download` does it (:func:`._downloads.save_video`).

A download that still fails when its retry deadline passes, for a reason that
may pass (a connection reset, a 5xx or a 429 from the video host, a body cut
short), does not end the job: its task is paid for and its video URL stays
valid for 24 hours. It is fetched again after a pause, at most
:data:`DOWNLOAD_ROUNDS` more times, the pauses doubling from the retry
policy's ``wait_max`` (30, 60 and 120 s by default: with each round's own
retries, about ten minutes in all). The job keeps its place among the jobs in
flight meanwhile, so no new video is paid for while the host cannot serve the
ones already made. A job whose download failed for good keeps its video in
the journal (SUCCEEDED): a rerun downloads it and never submits it again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from ._api import ServiceAPI
from ._downloads import save_video
from ._errors import DownloadError, ValidationError
from ._jobs import file_name_for
from ._journal_null import BatchJournal
from ._models import VideoResult
from ._reporting import report
from .events import Downloaded

__all__ = ["DOWNLOAD_ROUNDS", "VideoFolder"]

log = logging.getLogger("emoji_async")

#: How many more times a job's video is fetched after its download's retries gave up
#: on a failure that may pass.
DOWNLOAD_ROUNDS = 3


class VideoFolder:
    """``download_to``, as one batch uses it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        #: Jobs whose video file, if there, is their own (their task is in the journal).
        self._own_files: set[str] = set()

    async def make(self) -> None:
        """Create the folder before anything is sent, or raise :class:`ValidationError`."""
        await _make_folder(self.directory)

    async def claim(self, keys: list[str], journal: BatchJournal) -> None:
        """No job's video may go over a file the batch did not write: refused before any request.

        A job that already has its task in the journal may find its file there,
        saved by a run that stopped before recording it: that file is its own
        video, and is replaced. Any other existing file is another video.
        """
        directory = self.directory
        for key in keys:
            entry = journal.get(key)
            if entry is not None and entry.task_id:
                self._own_files.add(key)
        paths = [directory / file_name_for(key) for key in keys]
        taken = await asyncio.to_thread(lambda: [os.path.lexists(path) for path in paths])
        for index, (key, path, exists) in enumerate(zip(keys, paths, taken, strict=True)):
            if exists and key not in self._own_files:
                raise ValidationError(
                    f"jobs[{index}].key",
                    f"a key whose file is not taken yet: {os.fspath(path)!r} exists, and a "
                    "video is never written over another (move it, or save to another folder)",
                    key,
                )

    async def save(
        self, api: ServiceAPI, journal: BatchJournal, key: str, video: VideoResult
    ) -> Path:
        """Download the job's video into the folder, and record where it went."""
        directory = self.directory
        # Named by the job's key, not by its task as client.download names a video in a
        # folder: the two rules name different things (see _downloads).
        path = directory / file_name_for(key)
        # file_name_for() already keeps the name plain; this holds even if it changes.
        if not await _saved_inside(path, directory):
            raise ValidationError("key", "a name that stays inside download_to", key)
        size = await _fetch(api, key, video.video_url, path, replace=key in self._own_files)
        await journal.downloaded(key, path=path, size=size)
        report(lambda key: Downloaded(key=key, path=path, size=size))
        return path


async def _fetch(api: ServiceAPI, key: str, url: str, path: Path, *, replace: bool) -> int:
    """The video saved at ``path`` (its bytes), fetched again later while its failure may pass."""
    rounds = 0
    while True:
        try:
            return await save_video(api, url, path, replace=replace)
        except DownloadError as exc:
            if not exc.is_transient or rounds >= DOWNLOAD_ROUNDS:
                raise
            reason = exc
        wait = api.retry.wait_max * 2**rounds
        rounds += 1
        log.warning(
            "%s: the video's download failed (%s); fetching it again in %.3g s (%d of %d)",
            key,
            reason,
            wait,
            rounds,
            DOWNLOAD_ROUNDS,
        )
        await asyncio.sleep(wait)


async def _make_folder(folder: Path) -> None:
    """Create ``download_to`` before anything is sent, or raise :class:`ValidationError`.

    A file (or a symlink loop) in its place would fail every job's download after
    its video was paid for.
    """
    try:
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:  # ValueError: a name holding a NUL character
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValidationError(
            "download_to", f"a folder that exists or can be created ({reason})", str(folder)
        ) from exc


async def _saved_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` resolves to a file right inside ``folder``.

    A file system that cannot say (a symlink loop, which ``Path.resolve`` raises
    as ``RuntimeError`` before Python 3.13; a folder gone or replaced by a file)
    fails this job's download alone, as a :class:`DownloadError`.
    """

    def inside() -> bool:
        return path.resolve().parent == folder.resolve()

    try:
        return await asyncio.to_thread(inside)
    except (OSError, RuntimeError, ValueError) as exc:
        raise DownloadError(
            f"the video could not be saved to {os.fspath(path)!r}: {exc}", transient=False
        ) from exc

"""Where an image URL's pixels come from, and which image each task's video animates.

An image URL is resolved as the provider resolves it: an ``oss://`` URL from
the uploads (only when the request asks for it), a loopback URL downloaded
once (``_fetch``) and examined (``_images``), any other URL an imagined image
whose boxes come from the URL itself (``_faces``). The test triggers of a URL
are read whatever its kind. A submit remembers which image (and ext box) its
task animates, so its video can show that portrait.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from urllib.parse import urlsplit

from ._clock import Clock
from ._faces import Boxes, Triggers, boxes_of_url, triggers_of
from ._fetch import ImageFetcher, is_loopback
from ._images import ImageBank, ImageFacts, Portrait, examine
from ._uploads import UploadStore
from ._validation import enabled, invalid
from ._wire import ServiceError

__all__ = ["INVALID_URL", "ImageResolver"]

INVALID_URL = "The provided URL does not appear to be valid. Ensure it is correctly formatted."
#: How many tasks remember which image (and ext box) their video animates.
_SOURCES_KEPT = 4096


class ImageResolver:
    """The images an account has seen: by URL, by upload, and by the task made from each."""

    def __init__(self, clock: Clock, uploads: UploadStore, *, fetch_timeout: float) -> None:
        self.clock = clock
        self.uploads = uploads
        self.images = ImageBank()
        self.fetcher = ImageFetcher(timeout=fetch_timeout)
        self._sources: OrderedDict[str, tuple[bytes, tuple[int, int, int, int]]] = OrderedDict()

    def boxes_for(self, image_url: str) -> Boxes:
        """The boxes detection returns for ``image_url``.

        Raises ``LookupError`` for a loopback URL the simulator has not fetched
        (yet, or any more): only a detection or a submit fetches it.
        """
        if urlsplit(image_url).scheme.lower() == "oss":
            stored = self.uploads.find(image_url, self.clock.now())
            if stored is not None:
                return stored.facts.boxes()
        elif is_loopback(image_url):
            facts = self.images.facts(image_url)
            if facts is None:
                raise LookupError(
                    f"the simulator has not fetched {image_url}: its boxes are known once a "
                    "detection (or a submit) has downloaded it"
                )
            return facts.boxes()
        return boxes_of_url(image_url)

    def portrait_of(self, task_id: str) -> Portrait | None:
        """What the video of ``task_id`` animates, if its image's bytes are still kept."""
        source = self._sources.get(task_id)
        if source is None:
            return None
        digest, ext = source
        data = self.images.pixels(digest)
        return None if data is None else Portrait(data, digest, ext)

    async def fetch(self, image_url: str) -> ImageFacts:
        """The facts of a loopback image: remembered, or downloaded and examined now."""
        facts = self.images.facts(image_url)
        if facts is not None:
            return facts
        fetched = await self.fetcher.fetch(image_url)
        facts = await asyncio.to_thread(examine, fetched.data, fetched.size)
        self.images.learn(image_url, facts, fetched.data)
        return facts

    async def get(
        self, image_url: str, model: str, headers: Mapping[str, str]
    ) -> tuple[Triggers, ImageFacts | None]:
        """Get ``image_url`` for ``model``: its test triggers, and its facts if it has pixels."""
        try:
            parts = urlsplit(image_url)
        except ValueError:  # a malformed IPv6 host, say
            raise ServiceError(400, "InvalidURL", INVALID_URL) from None
        scheme = parts.scheme.lower()
        facts: ImageFacts | None = None
        if scheme == "oss":
            if not enabled(headers, "X-DashScope-OssResourceResolve"):
                # What the provider answers: the URL is not one it can fetch.
                raise invalid(INVALID_URL)
            facts = self.uploads.resolve(image_url, model, self.clock.now()).facts
        elif scheme not in ("http", "https") or not parts.netloc:
            raise ServiceError(400, "InvalidURL", INVALID_URL)
        triggers = triggers_of(image_url)
        if facts is None and is_loopback(image_url):
            facts = await self.fetch(image_url)
        return triggers, facts

    def boxes(self, image_url: str, facts: ImageFacts | None) -> Boxes:
        return facts.boxes() if facts is not None else boxes_of_url(image_url)

    def remember(self, task_id: str, facts: ImageFacts, ext: list[int]) -> None:
        x1, y1, x2, y2 = ext
        self._sources[task_id] = (facts.digest, (x1, y1, x2, y2))
        while len(self._sources) > _SOURCES_KEPT:
            self._sources.popitem(last=False)

    def keep(self, digest: bytes, data: bytes) -> None:
        """Keep an uploaded image's bytes, so a task made from it can animate it."""
        self.images.keep(digest, data)

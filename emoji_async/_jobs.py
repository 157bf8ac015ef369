"""A batch's units of work: what to animate (``EmojiJob``) and what came of it (``JobOutcome``)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from ._budget import Spending
from ._errors import EmojiError, SubmissionUncertainError, ValidationError
from ._models import BBox, OrphanTask, VideoResult
from ._templates import Template
from ._urls import url_path
from ._values import Lane

__all__ = ["EmojiJob", "JobOutcome", "Outcomes", "check_unique_keys", "file_name_for"]

_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_MAX_KEY = 120


def _box(value: BBox | Sequence[int] | None) -> BBox | None:
    return None if value is None else BBox.parse(value, field="bbox")


def _image(value: str | os.PathLike[str]) -> str:
    # Kept as text: the journal records it, and it derives the key. Checked by the batch.
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _driven(value: str | Template) -> str:
    return value.value if isinstance(value, Template) else value


@attrs.frozen
class EmojiJob:
    """One portrait to animate with one template.

    ``image`` is a URL or a local file (a path, ``pathlib.Path`` included, or a
    ``file://`` URI; kept as text): a file is uploaded once per model and
    content, however many jobs share it. Without boxes the job detects the
    face first. ``key`` names the job in the journal and its video file
    (``<key>.mp4``); when absent it is derived from the inputs, so the same
    inputs always get the same key. ``lane`` is the job's
    :class:`~emoji_async.Lane` when it differs from the batch's.
    """

    image: str = attrs.field(converter=_image)
    driven_id: str = attrs.field(converter=_driven)
    face_bbox: BBox | None = attrs.field(default=None, converter=_box)
    ext_bbox: BBox | None = attrs.field(default=None, converter=_box)
    key: str | None = None
    #: The job's :class:`~emoji_async.Lane`; ``None``: the batch's (bulk by default).
    lane: Lane | None = None

    @property
    def resolved_key(self) -> str:
        """``key``, or one derived from the image name, the template and a digest of all inputs."""
        if self.key is not None:
            return self.key
        boxes = [b.as_list() if b else None for b in (self.face_bbox, self.ext_bbox)]
        digest = hashlib.sha256(repr((self.image, self.driven_id, boxes)).encode()).hexdigest()
        stem = _stem(self.image) or "image"
        return f"{_KEY_CHARS.sub('_', stem)[:40]}-{self.driven_id}-{digest[:10]}"


def _stem(image: object) -> str:
    """The image's file name without its suffix; ``""`` when it has none.

    Any value goes: the key is derived before the batch checks the image, and
    that check, not this, must be the one to say what is wrong with it.
    """
    if not isinstance(image, str):
        return ""
    return Path(url_path(image)).stem


def file_name_for(key: str) -> str:
    """A file name that stays inside its directory whatever the key holds."""
    safe = _KEY_CHARS.sub("_", key).lstrip(".")[:_MAX_KEY] or "video"
    return f"{safe}.mp4"


def check_unique_keys(jobs: Iterable[EmojiJob]) -> list[str]:
    """The jobs' keys in order; :class:`ValidationError` if two jobs (or their files) collide."""
    keys: list[str] = []
    seen: dict[str, str] = {}
    for index, job in enumerate(jobs):
        if not isinstance(job, EmojiJob):
            raise ValidationError(f"jobs[{index}]", "an EmojiJob", job)
        key = job.resolved_key
        if not isinstance(key, str) or not key or len(key) > 512:
            raise ValidationError(f"jobs[{index}].key", "a non-empty string of <= 512 chars", key)
        name = file_name_for(key)
        if name in seen:
            raise ValidationError(
                f"jobs[{index}].key",
                f"a key unique in the batch (it collides with {seen[name]!r})",
                key,
            )
        seen[name] = key
        keys.append(key)
    return keys


@attrs.frozen(kw_only=True)
class JobOutcome:
    """What became of one job: a video (and where it was saved), or the job's error.

    ``resumed`` is true when the journal already knew the job from an earlier run.
    ``skipped`` is true when the job was never started because the batch's
    budget could not cover it: not a failure, and nothing was billed for it.
    ``not_started`` is true when the batch stopped before the job's turn
    because the account was refused (a wrong key, no access, an overdue bill):
    ``error`` is that refusal (an :class:`AccountError`), nothing of the job was
    sent, and a rerun with the journal takes it up once the account is fixed.
    """

    job: EmojiJob
    key: str
    task_id: str | None = None
    video: VideoResult | None = None
    path: Path | None = None
    error: EmojiError | None = None
    resumed: bool = False
    skipped: bool = False
    not_started: bool = False
    #: Times the job's task was moved aside (cancelled while PENDING, free) for an
    #: interactive task, and submitted again behind it.
    moved_aside: int = 0

    @property
    def ok(self) -> bool:
        """Whether the job produced its video (and saved it, when a directory was given)."""
        return self.video is not None and self.error is None


class Outcomes(list[JobOutcome]):
    """Every job's outcome, in input order, and what the batch was billed (``spent``).

    ``orphans``: the tasks no job holds that the client found while the batch
    ran (cancelled while PENDING, or billed if they succeed).
    ``preempt_cancels``: the cancels sent to move the batch's tasks aside for
    interactive ones, those that came too late (the task had started) included;
    :attr:`preempted` counts the tasks moved.
    """

    def __init__(
        self,
        outcomes: Iterable[JobOutcome],
        *,
        spent: Spending,
        orphans: Iterable[OrphanTask] = (),
        preempt_cancels: int = 0,
    ) -> None:
        super().__init__(outcomes)
        self.spent = spent
        self.orphans = tuple(orphans)
        self.preempt_cancels = preempt_cancels

    @property
    def preempted(self) -> int:
        """Tasks of the batch moved aside for interactive ones (each submitted again)."""
        return sum(outcome.moved_aside for outcome in self)

    @property
    def uncertain(self) -> list[JobOutcome]:
        """The jobs whose submit may have made a task that could not be proved theirs."""
        return [o for o in self if isinstance(o.error, SubmissionUncertainError)]

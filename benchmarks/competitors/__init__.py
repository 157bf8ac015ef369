"""The clients the bulk scenario compares, each driven as its users drive it.

Every competitor is an ``async def run(base_url, jobs, *, time_scale) ->
list[JobResult]`` (one result per job, in input order) in a module of its own.
It submits the given jobs to the Emoji service at ``base_url`` (the boxes are
given, so no competitor detects) and waits for every video, with its own
intervals and retry sleeps multiplied by ``time_scale``, the factor the
simulator compresses time by, so that it behaves as it would in real time.

``COMPETITORS`` lists them. The scenario runs each one in a child process of
its own (:mod:`._isolation`): the client gets a core, the simulator keeps the
parent's, and the SDK 1.x, which cannot be installed beside 2.x, gets its own
``sys.path``.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import attrs

__all__ = [
    "API_KEY",
    "COMPETITORS",
    "MODEL",
    "SERVICE",
    "Box",
    "Competitor",
    "CompetitorRun",
    "JobResult",
    "JobSpec",
    "competitor",
    "describe_error",
]

#: The key every simulator accepts.
API_KEY = "sk-simulator"
#: The Emoji model.
MODEL = "emoji-v1"
#: The Emoji submit path below ``/services/``.
SERVICE = "aigc/image2video/video-synthesis"

#: ``[x1, y1, x2, y2]`` in pixels, as detection returned it.
Box = tuple[int, int, int, int]


def _box(value: Any) -> Box:
    x1, y1, x2, y2 = (int(v) for v in value)
    return (x1, y1, x2, y2)


@attrs.frozen
class JobSpec:
    """One job: a portrait already detected, and the template to animate it with."""

    key: str
    image_url: str
    driven_id: str
    face_bbox: Box = attrs.field(converter=_box)
    ext_bbox: Box = attrs.field(converter=_box)

    def submit_input(self) -> dict[str, Any]:
        """The ``input`` object of the Emoji submit, exactly as the protocol spells it."""
        return {
            "image_url": self.image_url,
            "driven_id": self.driven_id,
            "face_bbox": list(self.face_bbox),
            "ext_bbox": list(self.ext_bbox),
        }

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        return cls(**data)


@attrs.frozen
class JobResult:
    """What a competitor made of one job.

    ``held_at`` is ``time.monotonic()`` when the client held the video URL, or
    ``None`` if the job was lost; ``error`` then says why. ``task_id`` is the
    task the client ended up with (``None`` if no submit was accepted).
    """

    key: str
    task_id: str | None
    held_at: float | None
    error: str | None = None

    @property
    def held(self) -> bool:
        return self.held_at is not None

    @classmethod
    def success(cls, key: str, task_id: str) -> JobResult:
        """The job's video URL is held now."""
        return cls(key, task_id, time.monotonic())

    @classmethod
    def lost(cls, key: str, task_id: str | None, error: str) -> JobResult:
        return cls(key, task_id, None, error)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobResult:
        return cls(**data)


def describe_error(exc: BaseException) -> str:
    """A one-line account of ``exc`` for ``JobResult.error``: its type, status and code if any."""
    parts = [type(exc).__name__]
    for attribute in ("status_code", "status", "code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int | str) and value != "" and str(value) not in parts:
            parts.append(str(value))
    message = getattr(exc, "message", None)
    text = (message if isinstance(message, str) and message else str(exc)).strip()
    first = text.splitlines()[0].strip() if text else ""
    return f"{' '.join(parts)}: {first}"[:300]


class CompetitorRun(Protocol):
    """The signature every competitor's ``run`` has."""

    async def __call__(
        self, base_url: str, jobs: list[JobSpec], *, time_scale: float
    ) -> list[JobResult]: ...


@attrs.frozen
class Competitor:
    """One row of the scenario: its name, the coroutine function to run, and what it is.

    ``target`` is ``"module:function"``, importable in a child process (the
    SDK 1.x driver only with the 1.x package first on ``sys.path``).
    ``shortest_wait`` is the shortest wait of its own (poll, retry sleep or
    pacing interval) in provider seconds: a process whose timers run later
    than a good part of it did not behave as it would in real time.
    """

    name: str
    target: str
    description: str
    shortest_wait: float
    needs_sdk1: bool = False


COMPETITORS: tuple[Competitor, ...] = (
    Competitor(
        "ours",
        "benchmarks.competitors.ours:run",
        "emoji_async generate_many, defaults",
        shortest_wait=1.0,  # the submit pacing; its retries start at 1 s too
    ),
    Competitor(
        "sdk2_gather",
        "benchmarks.competitors.sdk2_gather:run",
        "dashscope 2.x AsyncJobs create+wait, all jobs under asyncio.gather",
        shortest_wait=0.5,  # the transport's first retry sleep
    ),
    Competitor(
        "sdk2_semaphore",
        "benchmarks.competitors.sdk2_semaphore:run",
        "dashscope 2.x AsyncJobs create+wait, gather under a semaphore of 4",
        shortest_wait=0.5,
    ),
    Competitor(
        "sdk1",
        "benchmarks.competitors._sdk1_driver:run",
        "dashscope 1.x BaseAsyncAioApi async_call+wait, all jobs under asyncio.gather",
        shortest_wait=1.0,  # its first polls
        needs_sdk1=True,
    ),
    Competitor(
        "raw",
        "benchmarks.competitors.raw:run",
        "raw aiohttp, all jobs gathered, fixed 1 s poll, 429 -> wait 1 s and retry",
        shortest_wait=1.0,
    ),
)


def competitor(name: str) -> Competitor:
    """The competitor called ``name``, or ``KeyError`` listing the names."""
    for entry in COMPETITORS:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown competitor {name!r}; expected one of {[c.name for c in COMPETITORS]}")

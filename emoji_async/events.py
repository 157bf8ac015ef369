"""The events a batch reports to ``on_event`` (``generate_many``, ``as_completed``)."""

from ._events import (
    Detected,
    Downloaded,
    EventHandler,
    Failed,
    JobEvent,
    Queued,
    Resumed,
    Retrying,
    Running,
    Started,
    Submitted,
    Succeeded,
    Throttled,
)

__all__ = [
    "Detected",
    "Downloaded",
    "EventHandler",
    "Failed",
    "JobEvent",
    "Queued",
    "Resumed",
    "Retrying",
    "Running",
    "Started",
    "Submitted",
    "Succeeded",
    "Throttled",
]

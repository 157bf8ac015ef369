"""Events reach the right job's handler without being handed down through every call.

Each job of a batch runs in its own asyncio task, which copies the context, so
the request layer can report a retry against the right job through a context
variable set once by the batch.

Every event is built where it is told, so mypy checks each one's fields: a call
site passes the event's class when the job's key is all it needs
(``report(Started)``), else a function of the key
(``report(lambda key: Queued(key=key, task_id=..., ahead=...))``). The event is
built only when someone listens, so nobody pays for a display nobody shows.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from ._models import AbandonedTask, OrphanTask
from .events import Abandoned, EventHandler, JobEvent, Orphaned

__all__ = ["EventFor", "report", "reporting", "tell"]

log = logging.getLogger("emoji_async")

_sink: contextvars.ContextVar[tuple[str, EventHandler] | None] = contextvars.ContextVar(
    "emoji_async_event_sink", default=None
)


class EventFor(Protocol):
    """Builds the current job's event from its key: an event class, or a function of ``key``."""

    def __call__(self, *, key: str) -> JobEvent: ...


@contextmanager
def reporting(key: str, on_event: EventHandler | None) -> Iterator[None]:
    """Within the block, :func:`report` sends events for job ``key`` to ``on_event``."""
    token = _sink.set(None if on_event is None else (key, on_event))
    try:
        yield
    finally:
        _sink.reset(token)


def report(make: EventFor) -> None:
    """Send the event ``make`` builds for the current job, if anyone listens.

    A failing handler is logged, never raised: a progress display must not
    cost a paid job.
    """
    sink = _sink.get()
    if sink is None:
        return
    key, handler = sink
    _deliver(handler, make(key=key))


def tell(handler: EventHandler | None, record: OrphanTask | AbandonedTask) -> None:
    """A task no job holds, or one its caller left, as its event for ``handler``.

    An orphan names its job only when one job alone may have made it.
    """
    if handler is None:
        return
    event: JobEvent
    if isinstance(record, OrphanTask):
        owners = record.owners
        event = Orphaned(
            key=owners[0] if len(owners) == 1 else "",
            task_id=record.task_id,
            status=record.status.value,
            cancelled=record.cancelled,
            owners=owners,
        )
    else:
        event = Abandoned(key=record.label, task_id=record.task_id, cancelled=record.cancelled)
    _deliver(handler, event)


def _deliver(handler: EventHandler, event: JobEvent) -> None:
    try:
        handler(event)
    except Exception:
        log.exception("the on_event handler failed on a %s event", type(event).__name__)

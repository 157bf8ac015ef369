"""Task-finished notifications (EventBridge): the event, its signature, and its receiver.

Verifying signatures needs the ``notify`` extra (``pip install
'emoji-async[notify]'``, which brings ``cryptography``).
"""

from __future__ import annotations

from .._notice import EVENT_SOURCE, EVENT_TYPE, MalformedEvent, TaskFinished, parse_event
from .._notice_signing import SIGN_FORMS, SignForm

__all__ = [
    "EVENT_SOURCE",
    "EVENT_TYPE",
    "SIGN_FORMS",
    "MalformedEvent",
    "SignForm",
    "TaskFinished",
    "parse_event",
]

"""Task-finished notifications (EventBridge): the event, its signature, and its receiver.

Verifying signatures needs the ``notify`` extra (``pip install
'emoji-async[notify]'``, which brings ``cryptography``).
"""

from __future__ import annotations

from .._notice import EVENT_SOURCE, EVENT_TYPE, MalformedEvent, TaskFinished, parse_event
from .._notice_errors import NotificationRefusedError
from .._notice_signing import SIGN_FORMS, SignForm
from ._certificates import OFFICIAL_CERTIFICATE_URLS
from ._receiver import Answer, NoticeSink, Receiver, ReceiverStats
from ._verify import Verifier

__all__ = [
    "EVENT_SOURCE",
    "EVENT_TYPE",
    "OFFICIAL_CERTIFICATE_URLS",
    "SIGN_FORMS",
    "Answer",
    "MalformedEvent",
    "NoticeSink",
    "NotificationRefusedError",
    "Receiver",
    "ReceiverStats",
    "SignForm",
    "TaskFinished",
    "Verifier",
    "parse_event",
]

"""The one error a notification receiver raises: a delivery it refuses, and why.

Kept beside ``_errors`` (whose tree it joins under :class:`EmojiError`) so that
the notification pieces read their refusal from the values layer. ``reason`` is
a short fixed word (the receiver counts refusals by it); ``http_status`` is what
the receiver answers the sender. Neither the message nor any attribute ever
holds the delivery's body, its token or its signature.
"""

from __future__ import annotations

from ._errors import EmojiError

__all__ = ["NotificationRefusedError"]


class NotificationRefusedError(EmojiError):
    """A notification delivery was refused: unsigned, badly signed, stale, malformed or too big.

    ``reason`` is one short word (``"signature"``, ``"timestamp"``,
    ``"certificate-url"``, ``"token"``, ``"malformed"``...); ``http_status``
    the answer it earns (400 malformed, 401 unsigned, 403 refused, 413 too
    large, 503 when the certificate could not be had for now).
    """

    def __init__(self, message: str, *, reason: str, http_status: int = 403) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.http_status = http_status
        self.message = message

"""Plain values every layer names: the service's endpoints, and a secret that hides itself.

They sit at the bottom of the package, beside the models, errors and checks:
the rate limits, shared pacing and configuration name an endpoint or hold a
key without importing the transport that sends them.
"""

from __future__ import annotations

import enum
from typing import Any

from ._redact import remember

__all__ = ["Endpoint", "Lane", "Secret"]


class Secret:
    """A string that never shows itself in a repr, a str, or a log line.

    Nor in what the service says: while it lives, :func:`~emoji_async._redact.redact`
    takes its value out of every answer's text the client repeats.
    """

    __slots__ = ("__weakref__", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        remember(self)

    def reveal(self) -> str:
        """The secret itself, for the one header that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        # Pickling would write the key into whatever stores the pickle.
        raise TypeError("a Secret cannot be pickled")


class Endpoint(enum.Enum):
    """The service's endpoints, as the rate limits group them."""

    DETECT = "detect"
    SUBMIT = "submit"
    QUERY = "query"
    LIST = "list"
    CANCEL = "cancel"
    UPLOAD_POLICY = "upload_policy"


class Lane(enum.Enum):
    """Whose turn comes first on the account's one queue.

    ``INTERACTIVE``: someone is waiting for this video (a web app's visitor, a
    bot's user); the default of :meth:`~emoji_async.EmojiClient.submit` and
    :meth:`~emoji_async.EmojiClient.generate`. Its submit goes ahead of
    waiting bulk submits, and a batch's bulk tasks still queued ahead of its
    task are moved aside (cancelled while PENDING, free, and submitted again
    behind it).

    ``BULK``: nobody waits for this one video (a catalogue, a nightly batch);
    the default of :meth:`~emoji_async.EmojiClient.generate_many` and
    :meth:`~emoji_async.EmojiClient.as_completed`.
    """

    INTERACTIVE = "interactive"
    BULK = "bulk"

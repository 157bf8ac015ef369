"""A batch's stop at the first answer that refuses the account itself.

An answer that refuses the account (:class:`AccountError`: a wrong key, no
access, an overdue bill) would answer every job the same. From then on no
detection or submit of the batch leaves: one already waiting for its turn is
held back as :class:`_Unsent`, which never reaches a caller.
"""

from __future__ import annotations

import logging

from ._errors import AccountError, EmojiError

__all__ = ["AccountGate", "_Unsent"]

log = logging.getLogger("emoji_async")


class _Unsent(AccountError):
    """A request held back because the account was refused first; never reaches a caller.

    An :class:`AccountError`, so every layer it passes through takes it for
    what it is: certain to have created nothing, and not to be retried.
    """

    @classmethod
    def after(cls, refusal: AccountError) -> _Unsent:
        return cls(
            refusal.message,
            http_status=refusal.http_status,
            code=refusal.code,
            request_id=refusal.request_id,
        )


class AccountGate:
    """Whether a batch may still send: open until the first answer refusing the account."""

    def __init__(self) -> None:
        #: The first answer that refused the account: from then on nothing new is sent.
        self.refusal: AccountError | None = None

    def refused(self, exc: EmojiError) -> None:
        """Stop the batch at the first answer that refuses the account."""
        if isinstance(exc, AccountError) and not isinstance(exc, _Unsent) and self.refusal is None:
            self.refusal = exc
            # info: the outcomes say it (and the command line prints it once, not twice)
            log.info("the account was refused, so the batch starts nothing new: %s", exc)

    def go_ahead(self) -> None:
        """Raise :class:`_Unsent` once the account was refused: the request is held back."""
        if self.refusal is not None:
            raise _Unsent.after(self.refusal)

    async def before_send(self) -> None:
        self.go_ahead()

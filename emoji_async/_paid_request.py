"""A paid submit as one frozen value: what is sent, and whose it is.

Built once where a submit enters (:meth:`EmojiClient.submit
<emoji_async.EmojiClient.submit>`, a batch's job) and passed whole down the paid
path: the submitter records its attempts by it, and
:meth:`ServiceAPI.submit <emoji_async._api.ServiceAPI.submit>` writes its body
from it. Callbacks travel beside it, not in it: the same request is sent by
every attempt of one submit, each with its own ``before_send`` (which stamps
that attempt), and what a caller records along the way (its hooks) is
behaviour, not part of what is submitted.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._models import BBox
from ._values import Lane

__all__ = ["PaidRequest"]


@attrs.frozen(kw_only=True)
class PaidRequest:
    """One paid submit: what is sent, whose it is (``owner``, ``label``).

    ``owner`` names the portrait as the caller gave it (:func:`owner_of
    <emoji_async._attempts.owner_of>`, a digest of the inputs), so that a local
    file uploaded twice is still one owner; ``label`` names it in messages (a
    job key, or the image).
    """

    image_url: str
    driven_id: str
    face: BBox
    ext: BBox
    owner: str
    label: str
    #: Whose turn comes first (:class:`~emoji_async.Lane`): an interactive submit
    #: goes ahead of waiting bulk ones, and its task moves a batch's aside.
    lane: Lane = Lane.INTERACTIVE

    def inputs(self) -> dict[str, Any]:
        """The submit's ``input`` object."""
        return {
            "image_url": self.image_url,
            "driven_id": self.driven_id,
            "face_bbox": self.face.as_list(),
            "ext_bbox": self.ext.as_list(),
        }

"""What :meth:`EmojiClient.submit` sends (one checked paid request), and the handle it returns.

A submit's request names its portrait twice: by the URL the service fetches (a
local file uploaded first) and as the caller gave it (``owner``, ``label``), so
that settling a lost answer and the records of abandoned tasks speak of the
caller's portrait.
"""

from __future__ import annotations

import os
import time

from ._api import GENERATE_MODEL, ServiceAPI
from ._attempts import label_for, owner_of
from ._models import BBox, TaskSnapshot
from ._paid_request import PaidRequest
from ._policy import PollPolicy
from ._task import Task
from ._uploads import ImageSource
from ._values import Lane

__all__ = ["paid_request", "submitted_task"]


async def paid_request(
    api: ServiceAPI, image_url: ImageSource, template: str, face: BBox, ext: BBox, lane: Lane
) -> PaidRequest:
    """The checked submit's request; a local file's portrait is uploaded for ``emoji-v1``."""
    url = await api.uploads.url_for(image_url, GENERATE_MODEL)
    given = os.fspath(image_url) if isinstance(image_url, os.PathLike) else str(image_url)
    return PaidRequest(
        image_url=url,
        driven_id=template,
        face=face,
        ext=ext,
        owner=owner_of(
            {
                "image": given,
                "driven_id": template,
                "face_bbox": face.as_list(),
                "ext_bbox": ext.as_list(),
            }
        ),
        label=label_for(given),
        lane=lane,
    )


def submitted_task(
    api: ServiceAPI, snapshot: TaskSnapshot, *, poll: PollPolicy, template: str
) -> Task:
    """The handle on the task a submit created (or adopted), submitted now."""
    return Task(
        api,
        snapshot.task_id,
        poll=poll,
        snapshot=snapshot,
        submitted_at=time.time(),
        template=template,
    )

"""One portrait in, one video out: :meth:`EmojiClient.generate`'s steps under one timeout.

Detect (unless the caller has the detection), submit, and wait, all inside the
call's ``timeout``. When it passes before the task is known, the error says
how far the call got: no detection yet (:class:`ResponseLostError`), or a
submit still settling (:class:`SubmissionUncertainError`); once the task is
known, the wait's own :class:`WaitTimeoutError`. A caller cancelled during
the wait leaves its paid task recorded, never untracked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from ._attempts import label_for
from ._client_lifetime import Opened
from ._errors import (
    EmojiError,
    ResponseLostError,
    SubmissionUncertainError,
    ValidationError,
    WaitTimeoutError,
)
from ._models import BBox, FaceDetection, VideoResult
from ._task import Task, check_timeout
from ._templates import Template
from ._uploads import ImageSource
from ._validation import ImageFile, check_boxes, check_driven_id, check_lane
from ._values import Lane

__all__ = ["Verbs", "generate_one", "late_error"]


class Verbs(Protocol):
    """The client's verbs ``generate`` is made of."""

    @property
    def extra_templates(self) -> frozenset[str]: ...

    async def detect(self, image_url: ImageSource) -> FaceDetection: ...

    async def submit(
        self,
        image_url: ImageSource,
        driven_id: str | Template,
        *,
        face_bbox: BBox | Sequence[int],
        ext_bbox: BBox | Sequence[int],
        lane: Lane | str = ...,
    ) -> Task: ...


async def generate_one(
    client: Verbs,
    opened: Opened,
    image_url: ImageSource,
    driven_id: str | Template,
    *,
    face: FaceDetection | None,
    timeout: float | None,
    lane: Lane | str,
) -> VideoResult:
    """Detect, submit and wait, as :meth:`EmojiClient.generate` documents."""
    check_timeout(timeout)
    check_lane(lane)
    if face is not None:
        if not isinstance(face, FaceDetection):
            raise ValidationError("face", "a FaceDetection from detect(), or None", face)
        check_boxes(face.face_bbox, face.ext_bbox, prefix="face.")
    loop = asyncio.get_running_loop()
    ends = None if timeout is None else loop.time() + timeout
    scope = asyncio.timeout_at(ends)
    submitting = False
    url: str | ImageFile = ""
    try:
        async with scope:
            url = await opened.service.uploads.prepare(image_url)
            template = check_driven_id(driven_id, extra=client.extra_templates)
            if face is None:
                face = await client.detect(url)
            submitting = True
            task = await client.submit(
                url, template, face_bbox=face.face_bbox, ext_bbox=face.ext_bbox, lane=lane
            )
    except TimeoutError:
        if not scope.expired():
            raise
        raise late_error(timeout, url if submitting else None, driven_id, face) from None
    if ends is not None:
        timeout = ends - loop.time()
        if timeout <= 0:
            raise WaitTimeoutError(task_id=task.task_id, snapshot=task.last_snapshot, timeout=0)
    try:
        return await task.wait(timeout=timeout)
    except asyncio.CancelledError:
        # The caller went away (a web request timed out, say): the paid task goes
        # on, and is recorded so that it is never untracked.
        opened.submitter.abandon(task.task_id, label_for(url))
        raise


def late_error(
    timeout: float | None,
    submitted: str | ImageFile | None,
    driven_id: str | Template,
    face: FaceDetection | None,
) -> EmojiError:
    """The error of a ``generate`` whose ``timeout`` passed before its task was known."""
    if submitted is None or face is None:
        return ResponseLostError(f"generate: no face detection within its timeout of {timeout:g} s")
    return SubmissionUncertainError(
        sent_at=dt.datetime.now(dt.UTC),
        inputs={
            "image_url": label_for(submitted),
            "driven_id": str(driven_id),
            "face_bbox": face.face_bbox.as_list(),
            "ext_bbox": face.ext_bbox.as_list(),
        },
        reason=f"generate's timeout of {timeout:g} s passed before the submit was settled;"
        " it goes on settling, and a task it made is recorded in EmojiClient.abandoned",
    )

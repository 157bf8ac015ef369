"""The service's own behaviour: validate a request, change the state, build the answer.

Nothing here knows about HTTP frameworks: operations take plain values (a parsed
body, headers, query parameters) and return the JSON payload or raise
``ServiceError`` / ``OssError``. Authentication, rate limits, faults and
recording happen around them (``_recording``, ``_pipeline``).

Detection and submit are coroutines because, like the provider, they may have
to download the image first (loopback URLs only: ``_fetch``); they change no
state before that download is over. An image goes through, in order: the URL
checks, its test triggers' syntax, the download, the image checks (size,
format, resolution: ``_images``), then the ``sim_moderation`` and
``sim_reject`` triggers, then the boxes.

The checks of a request's fields are ``_validation``'s, the images a request
names are resolved by ``_image_urls``, and the task list is ``_listing``'s.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from emoji_async._templates import template_info

from ._clock import Clock
from ._config import SimulatorConfig
from ._image_urls import ImageResolver
from ._images import ImageFacts
from ._listing import list_tasks
from ._rate import RateLimiter
from ._records import SimulatorStats
from ._results import ResultObject, ResultStore
from ._tasks import TERMINAL, SimulatedTask, TaskBoard
from ._uploads import UploadStore
from ._validation import (
    body_object,
    box_field,
    check_model,
    enabled,
    invalid,
    object_field,
    rejection_message,
    required,
    text_field,
)
from ._wire import (
    ASYNC_HEADER_REQUIRED,
    DETECT_MODEL,
    MODERATION_MESSAGE,
    SUBMIT_MODEL,
    UNSUPPORTED_CANCEL,
    ServiceError,
    fault_message,
    new_request_id,
)

__all__ = ["DETECT_MODEL", "SUBMIT_MODEL", "Service"]

#: The id of the first accepted key (in sorted order); the next ones count up from it.
_FIRST_KEY_ID = 1250


class Service:
    """One simulated account: its tasks, uploads, result videos, limits and bills."""

    def __init__(self, config: SimulatorConfig, stats: SimulatorStats) -> None:
        self.config = config
        self.stats = stats
        self.clock = Clock(config.time_scale, config.clock_skew)
        self.limiter = RateLimiter(config.limits, config.time_scale)
        self._rng = random.Random(config.seed)
        secret = secrets.token_bytes(32)
        self.results = ResultStore(self.clock, secret)
        self.uploads = UploadStore(self.clock, secret)
        self.board = TaskBoard(
            self.clock,
            stats,
            slots=None if config.limits is None else config.limits.running_tasks,
            on_success=self.results.add,
        )
        self.images = ImageResolver(self.clock, self.uploads, fetch_timeout=config.fetch_timeout)
        self._key_ids = {
            key: str(_FIRST_KEY_ID + index) for index, key in enumerate(sorted(config.api_keys))
        }

    # -- detection ---------------------------------------------------------------

    async def detect(self, body: object, headers: Mapping[str, str]) -> dict[str, Any]:
        """Face detection: boxes, or a billed rejection inside ``output``."""
        if enabled(headers, "X-DashScope-Async"):
            raise ServiceError(
                403, "AccessDenied", "current user api does not support asynchronous calls"
            )
        request = body_object(body)
        check_model(request, DETECT_MODEL)
        inputs = object_field(request.get("input"), "input")
        image_url = text_field(inputs, "image_url")
        ratio = object_field(request.get("parameters"), "parameters").get("ratio")
        if ratio is None:
            raise required("ratio")
        if ratio != "1:1":
            raise invalid('The parameter ratio must be "1:1".')
        triggers, facts = await self.images.get(image_url, DETECT_MODEL, headers)
        self.stats.detections_billed += 1
        usage = {"image_count": 1}
        code = facts.problem if facts is not None else None
        code = code or triggers.reject
        if code is not None:
            rejection = {"code": code, "message": rejection_message(code)}
            return {"output": rejection, "usage": usage, "request_id": new_request_id()}
        face, ext = self.images.boxes(image_url, facts)
        boxes = {"bbox_face": face, "ext_bbox_face": ext}
        return {"output": boxes, "usage": usage, "request_id": new_request_id()}

    # -- tasks -------------------------------------------------------------------

    async def submit(self, body: object, headers: Mapping[str, str]) -> dict[str, Any]:
        """Video synthesis: validate, then queue a task (always answered PENDING)."""
        if not enabled(headers, "X-DashScope-Async"):
            raise ServiceError(403, "AccessDenied", ASYNC_HEADER_REQUIRED)
        request = body_object(body)
        check_model(request, SUBMIT_MODEL)
        inputs = object_field(request.get("input"), "input")
        image_url = text_field(inputs, "image_url")
        driven_id = text_field(inputs, "driven_id")
        face = box_field(inputs, "face_bbox")
        ext = box_field(inputs, "ext_bbox")
        template = template_info(driven_id)
        if template is None:
            raise invalid("Driven not exist: driven_id.")
        triggers, facts = await self.images.get(image_url, SUBMIT_MODEL, headers)
        if facts is not None and facts.problem is not None:
            raise ServiceError(400, facts.problem, rejection_message(facts.problem))
        if triggers.moderation:
            raise ServiceError(400, "DataInspectionFailed", MODERATION_MESSAGE)
        if triggers.reject is not None:
            raise ServiceError(400, triggers.reject, rejection_message(triggers.reject))
        expected_face, expected_ext = self.images.boxes(image_url, facts)
        if ext != expected_ext:
            raise invalid("Invalid ext_bbox.")
        if face != expected_face:
            raise invalid("Invalid face_bbox.")
        duration = triggers.duration
        if duration is None:
            duration = float(self.config.durations(self._rng, driven_id))
        request_id = new_request_id()
        fail_code, fail_message = triggers.fail, None
        if triggers.echo_key:
            # A careless service quoting the request in its failure message.
            fail_code = fail_code or "InternalError"
            authorization = headers.get("Authorization", "")
            fail_message = f"{fault_message(fail_code)} (request: Authorization: {authorization})"
        task = self.board.create(
            task_id=str(uuid.uuid4()),
            model=SUBMIT_MODEL,
            image_url=image_url,
            driven_id=driven_id,
            face_bbox=(face[0], face[1], face[2], face[3]),
            ext_bbox=(ext[0], ext[1], ext[2], ext[3]),
            duration=duration,
            video_seconds=self.config.video_seconds or template.video_seconds,
            request_id=request_id,
            fail_code=fail_code,
            fail_message=fail_message,
            now=self.clock.now(),
            api_key_id=self._key_id(headers),
        )
        if facts is not None:
            self.images.remember(task.task_id, facts, ext)
        return {
            "output": {"task_status": "PENDING", "task_id": task.task_id},
            "request_id": request_id,
        }

    def _key_id(self, headers: Mapping[str, str]) -> str:
        """The id of the (already authenticated) key a request was sent with."""
        key = headers.get("Authorization", "").strip().partition(" ")[2].strip()
        return self._key_ids.get(key, "")

    def task(self, task_id: str) -> SimulatedTask | None:
        """The true record of a task now, or ``None`` if unknown or expired."""
        return self.board.get(task_id, self.clock.now())

    def query(self, task_id: str, origin: str) -> dict[str, Any]:
        """One task's state, as ``GET /tasks/{task_id}`` shows it."""
        task = self.task(task_id)
        if task is None:
            return {
                "request_id": new_request_id(),
                "output": {"task_id": task_id, "task_status": "UNKNOWN"},
            }
        clock = self.clock
        output: dict[str, Any] = {"task_id": task.task_id, "task_status": task.status}
        if task.status in TERMINAL or self.config.pending_times:
            output["submit_time"] = clock.beijing(task.submitted_at)
            if task.scheduled_at is not None:
                output["scheduled_time"] = clock.beijing(task.scheduled_at)
        if task.ended_at is not None:
            output["end_time"] = clock.beijing(task.ended_at)
        answer: dict[str, Any] = {"request_id": new_request_id(), "output": output}
        if task.status == "SUCCEEDED":
            output["video_url"] = self.results.url(task.task_id, origin)
            answer["usage"] = {"video_duration": task.video_seconds, "video_ratio": "standard"}
        elif task.status == "FAILED":
            output["code"] = task.code
            output["message"] = task.message
        return answer

    def cancel(self, task_id: str) -> dict[str, Any]:
        """Cancel a PENDING task; any other state is a 400 ``UnsupportedOperation``."""
        if not self.board.cancel(task_id, self.clock.now()):
            raise ServiceError(400, "UnsupportedOperation", UNSUPPORTED_CANCEL)
        return {"request_id": new_request_id()}

    def list_tasks(self, query: Mapping[str, str]) -> dict[str, Any]:
        """A page of tasks, as ``GET /tasks`` shows them (``_listing``)."""
        return list_tasks(query, board=self.board, clock=self.clock, config=self.config)

    # -- uploads and results -------------------------------------------------------

    def upload_policy(self, query: Mapping[str, str], upload_host: str) -> dict[str, Any]:
        """``GET /uploads?action=getPolicy&model=...``: a policy for the simulator's upload host."""
        if query.get("action") != "getPolicy":
            raise invalid("The parameter action must be getPolicy.")
        model = query.get("model")
        if not model:
            raise required("model")
        policy = self.uploads.issue(model, self.clock.now())
        return {"request_id": new_request_id(), "data": policy.wire(upload_host)}

    def upload(self, fields: Mapping[str, str], facts: ImageFacts, data: bytes | None) -> None:
        """Store one form upload (raises ``OssError`` when the form is refused)."""
        self.uploads.store(fields, facts, self.clock.now())
        if data is not None and facts.problem is None:
            self.images.keep(facts.digest, data)

    def result(self, task_id: str, expires: str, signature: str) -> ResultObject:
        """The video object a signed URL points at (raises ``OssError`` 403/404)."""
        self.board.advance(self.clock.now())
        return self.results.open(task_id, expires, signature, self.clock.now())

"""The service's own behaviour: validate a request, change the state, build the answer.

Nothing here knows about HTTP frameworks: operations take plain values (a parsed
body, headers, query parameters) and return the JSON payload or raise
``ServiceError`` / ``OssError``. Authentication, rate limits, faults and
recording happen around them, in ``_app``.

Detection and submit are coroutines because, like the provider, they may have
to download the image first (loopback URLs only: ``_fetch``); they change no
state before that download is over. An image goes through, in order: the URL
checks, its test triggers' syntax, the download, the image checks (size,
format, resolution: ``_images``), then the ``sim_moderation`` and
``sim_reject`` triggers, then the boxes.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import math
import random
import secrets
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from emoji_async._templates import template_info

from ._clock import BEIJING, Clock
from ._config import SimulatorConfig
from ._faces import Boxes, Triggers, boxes_of_url, triggers_of
from ._fetch import ImageFetcher, is_loopback
from ._images import ImageBank, ImageFacts, Portrait, examine
from ._rate import RateLimiter
from ._records import SimulatorStats
from ._results import ResultObject, ResultStore
from ._tasks import TERMINAL, SimulatedTask, TaskBoard
from ._uploads import UploadStore
from ._wire import (
    ASYNC_HEADER_REQUIRED,
    BODY_INVALID,
    INVALID_FILE_MESSAGES,
    MODERATION_MESSAGE,
    UNSUPPORTED_CANCEL,
    ServiceError,
    fault_message,
    new_request_id,
)

__all__ = ["DETECT_MODEL", "SUBMIT_MODEL", "Service"]

DETECT_MODEL = "emoji-detect-v1"
SUBMIT_MODEL = "emoji-v1"
#: The account's ids as the task list shows them (the list's example shows none:
#: plausible Alibaba Cloud uids, the caller being the main account itself).
ACCOUNT_UID = "1587923346021841"
#: ``apikey:v1:<group>:<task>:<function>:<model>`` of an Emoji task. Inferred: the
#: provider shows this key only for other models (``apikey:v1:audio:asr:transcription:
#: paraformer-8k-v1``, whose service path is ``services/audio/asr/transcription``); the
#: same reading of ``services/aigc/image2video/video-synthesis`` gives these groups.
UNIQUE_KEY = f"apikey:v1:aigc:image2video:video-synthesis:{SUBMIT_MODEL}"
#: The id of the first accepted key (in sorted order); the next ones count up from it.
_FIRST_KEY_ID = 1250
_INVALID_URL = "The provided URL does not appear to be valid. Ensure it is correctly formatted."
_LIST_WINDOW = 24 * 3600  # wall-clock seconds; a query parameter, so never scaled
_TIME_FORMAT = "%Y%m%d%H%M%S"
#: How many tasks remember which image (and ext box) their video animates.
_SOURCES_KEPT = 4096


def _invalid(message: str) -> ServiceError:
    return ServiceError(400, "InvalidParameter", message)


def _required(name: str) -> ServiceError:
    """A missing field, named as the provider names it: ``driven_id``, not ``input.driven_id``."""
    return _invalid(f"Field required: {name}")


def _malformed() -> ServiceError:
    """A body that is not the documented shape (not JSON, not an object, a field's wrong type).

    The provider documents this one message; it does not say which field.
    """
    return _invalid(BODY_INVALID)


def _object(value: object, name: str) -> dict[str, Any]:
    if value is None:
        raise _required(name)
    if not isinstance(value, dict):
        raise _malformed()
    return value


def _body(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed()
    return value


def _text(container: dict[str, Any], name: str) -> str:
    value = container.get(name)
    if value is None or value == "":
        raise _required(name)
    if not isinstance(value, str):
        raise _malformed()
    return value


def _box(container: dict[str, Any], name: str) -> list[int]:
    value = container.get(name)
    if value is None:
        raise _required(name)
    if (
        not isinstance(value, list)
        or len(value) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise _malformed()
    return value


def _model(body: dict[str, Any], expected: str) -> None:
    model = body.get("model")
    if model is None or model == "":
        raise _required("model")
    if model != expected:
        raise _invalid("Model not exist.")


def _rejection_message(code: str) -> str:
    return INVALID_FILE_MESSAGES.get(code, "The input image does not meet the requirements.")


def _enabled(headers: Mapping[str, str], name: str) -> bool:
    return headers.get(name, "").strip().lower() == "enable"


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
        self.images = ImageBank()
        self.fetcher = ImageFetcher(timeout=config.fetch_timeout)
        self._sources: OrderedDict[str, tuple[bytes, tuple[int, int, int, int]]] = OrderedDict()
        self._key_ids = {
            key: str(_FIRST_KEY_ID + index) for index, key in enumerate(sorted(config.api_keys))
        }

    # -- images ------------------------------------------------------------------

    def boxes_for(self, image_url: str) -> Boxes:
        """The boxes detection returns for ``image_url``.

        Raises ``LookupError`` for a loopback URL the simulator has not fetched
        (yet, or any more): only a detection or a submit fetches it.
        """
        if urlsplit(image_url).scheme.lower() == "oss":
            stored = self.uploads.find(image_url, self.clock.now())
            if stored is not None:
                return stored.facts.boxes()
        elif is_loopback(image_url):
            facts = self.images.facts(image_url)
            if facts is None:
                raise LookupError(
                    f"the simulator has not fetched {image_url}: its boxes are known once a "
                    "detection (or a submit) has downloaded it"
                )
            return facts.boxes()
        return boxes_of_url(image_url)

    def portrait_of(self, task_id: str) -> Portrait | None:
        """What the video of ``task_id`` animates, if its image's bytes are still kept."""
        source = self._sources.get(task_id)
        if source is None:
            return None
        digest, ext = source
        data = self.images.pixels(digest)
        return None if data is None else Portrait(data, digest, ext)

    async def _fetch(self, image_url: str) -> ImageFacts:
        """The facts of a loopback image: remembered, or downloaded and examined now."""
        facts = self.images.facts(image_url)
        if facts is not None:
            return facts
        fetched = await self.fetcher.fetch(image_url)
        facts = await asyncio.to_thread(examine, fetched.data, fetched.size)
        self.images.learn(image_url, facts, fetched.data)
        return facts

    async def _image(
        self, image_url: str, model: str, headers: Mapping[str, str]
    ) -> tuple[Triggers, ImageFacts | None]:
        """Get ``image_url`` for ``model``: its test triggers, and its facts if it has pixels."""
        try:
            parts = urlsplit(image_url)
        except ValueError:  # a malformed IPv6 host, say
            raise ServiceError(400, "InvalidURL", _INVALID_URL) from None
        scheme = parts.scheme.lower()
        facts: ImageFacts | None = None
        if scheme == "oss":
            if not _enabled(headers, "X-DashScope-OssResourceResolve"):
                # What the provider answers: the URL is not one it can fetch.
                raise _invalid(_INVALID_URL)
            facts = self.uploads.resolve(image_url, model, self.clock.now()).facts
        elif scheme not in ("http", "https") or not parts.netloc:
            raise ServiceError(400, "InvalidURL", _INVALID_URL)
        triggers = triggers_of(image_url)
        if facts is None and is_loopback(image_url):
            facts = await self._fetch(image_url)
        return triggers, facts

    def _boxes(self, image_url: str, facts: ImageFacts | None) -> Boxes:
        return facts.boxes() if facts is not None else boxes_of_url(image_url)

    def _remember_source(self, task_id: str, facts: ImageFacts, ext: list[int]) -> None:
        x1, y1, x2, y2 = ext
        self._sources[task_id] = (facts.digest, (x1, y1, x2, y2))
        while len(self._sources) > _SOURCES_KEPT:
            self._sources.popitem(last=False)

    # -- detection ---------------------------------------------------------------

    async def detect(self, body: object, headers: Mapping[str, str]) -> dict[str, Any]:
        """Face detection: boxes, or a billed rejection inside ``output``."""
        if _enabled(headers, "X-DashScope-Async"):
            raise ServiceError(
                403, "AccessDenied", "current user api does not support asynchronous calls"
            )
        request = _body(body)
        _model(request, DETECT_MODEL)
        inputs = _object(request.get("input"), "input")
        image_url = _text(inputs, "image_url")
        ratio = _object(request.get("parameters"), "parameters").get("ratio")
        if ratio is None:
            raise _required("ratio")
        if ratio != "1:1":
            raise _invalid('The parameter ratio must be "1:1".')
        triggers, facts = await self._image(image_url, DETECT_MODEL, headers)
        self.stats.detections_billed += 1
        usage = {"image_count": 1}
        code = facts.problem if facts is not None else None
        code = code or triggers.reject
        if code is not None:
            rejection = {"code": code, "message": _rejection_message(code)}
            return {"output": rejection, "usage": usage, "request_id": new_request_id()}
        face, ext = self._boxes(image_url, facts)
        boxes = {"bbox_face": face, "ext_bbox_face": ext}
        return {"output": boxes, "usage": usage, "request_id": new_request_id()}

    # -- tasks -------------------------------------------------------------------

    async def submit(self, body: object, headers: Mapping[str, str]) -> dict[str, Any]:
        """Video synthesis: validate, then queue a task (always answered PENDING)."""
        if not _enabled(headers, "X-DashScope-Async"):
            raise ServiceError(403, "AccessDenied", ASYNC_HEADER_REQUIRED)
        request = _body(body)
        _model(request, SUBMIT_MODEL)
        inputs = _object(request.get("input"), "input")
        image_url = _text(inputs, "image_url")
        driven_id = _text(inputs, "driven_id")
        face = _box(inputs, "face_bbox")
        ext = _box(inputs, "ext_bbox")
        template = template_info(driven_id)
        if template is None:
            raise _invalid("Driven not exist: driven_id.")
        triggers, facts = await self._image(image_url, SUBMIT_MODEL, headers)
        if facts is not None and facts.problem is not None:
            raise ServiceError(400, facts.problem, _rejection_message(facts.problem))
        if triggers.moderation:
            raise ServiceError(400, "DataInspectionFailed", MODERATION_MESSAGE)
        if triggers.reject is not None:
            raise ServiceError(400, triggers.reject, _rejection_message(triggers.reject))
        expected_face, expected_ext = self._boxes(image_url, facts)
        if ext != expected_ext:
            raise _invalid("Invalid ext_bbox.")
        if face != expected_face:
            raise _invalid("Invalid face_bbox.")
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
            self._remember_source(task.task_id, facts, ext)
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

    @property
    def _list_zone(self) -> dt.tzinfo:
        return BEIJING if self.config.list_zone == "UTC+8" else dt.UTC

    def _list_time(self, query: Mapping[str, str], name: str) -> float | None:
        text = query.get(name)
        if text is None or text == "":
            return None
        try:
            moment = dt.datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=self._list_zone)
        except ValueError:
            raise _invalid(f"{name} must be formatted as YYYYMMDDhhmmss, got {text!r}.") from None
        return float(calendar.timegm(moment.utctimetuple()))

    def list_tasks(self, query: Mapping[str, str]) -> dict[str, Any]:
        """A page of tasks, as ``GET /tasks`` shows them.

        Newest first unless ``list_order`` says otherwise; the time filters are
        read in ``list_zone`` on the service's (skewed) clock; a page without
        rows is shaped as ``empty_page`` says.
        """
        page_no = _positive(query, "page_no", 1)
        page_size = _positive(query, "page_size", 10)
        now = self.clock.now()
        start = self._list_time(query, "start_time")
        end = self._list_time(query, "end_time")
        if end is None:
            end = math.floor(self.clock.wall(now)) if start is None else start + _LIST_WINDOW
        if start is None:
            start = end - _LIST_WINDOW
        if start > end:
            raise _invalid("start_time must not be later than end_time.")
        if end - start > _LIST_WINDOW:
            raise _invalid("The time range between start_time and end_time cannot exceed 24 hours.")
        low, high = int(start * 1000), int(end * 1000) + 999
        clock = self.clock
        wanted = {
            "task_id": query.get("task_id") or None,
            "model": query.get("model_name") or None,
            "status": query.get("status") or None,
        }
        rows: list[dict[str, Any]] = []
        for task in self.board.newest_first(now):
            created = clock.epoch_ms(task.submitted_at)
            if not low <= created <= high:
                continue
            if any(
                value is not None and getattr(task, field) != value
                for field, value in wanted.items()
            ):
                continue
            row: dict[str, Any] = {
                "task_id": task.task_id,
                "status": task.status,
                "model_name": task.model,
                "region": "cn-beijing",
                "request_id": task.request_id,
                "api_key_id": task.api_key_id,
                "caller_parent_id": ACCOUNT_UID,
                "caller_uid": ACCOUNT_UID,
                "user_api_unique_key": UNIQUE_KEY,
                "gmt_create": created,
            }
            if task.scheduled_at is not None:
                row["start_time"] = clock.epoch_ms(task.scheduled_at)
            if task.ended_at is not None:
                row["end_time"] = clock.epoch_ms(task.ended_at)
            rows.append(row)
        if self.config.list_order == "oldest_first":
            rows.reverse()
        first = (page_no - 1) * page_size
        page = rows[first : first + page_size]
        answer: dict[str, Any] = {"total": len(rows)}
        if page or self.config.empty_page == "data":
            answer["total_page"] = math.ceil(len(rows) / page_size)
        answer.update(page_no=page_no, page_size=page_size, request_id=new_request_id())
        if page or self.config.empty_page == "data":
            answer["data"] = page
        return answer

    # -- uploads and results -------------------------------------------------------

    def upload_policy(self, query: Mapping[str, str], upload_host: str) -> dict[str, Any]:
        """``GET /uploads?action=getPolicy&model=...``: a policy for the simulator's upload host."""
        if query.get("action") != "getPolicy":
            raise _invalid("The parameter action must be getPolicy.")
        model = query.get("model")
        if not model:
            raise _required("model")
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


def _positive(query: Mapping[str, str], name: str, default: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise _invalid(f"{name} must be a positive integer, got {text!r}.")
    return value

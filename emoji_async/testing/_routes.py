"""The simulator's routes: each endpoint's operation, run through the pipeline.

Besides the API (under ``api_prefix``), the application plays two storage hosts
(the upload host and the result videos), a public image host serving the
sample portraits at ``/samples/{name}.png``, and the simulated EventBridge's
certificate host (``/eventbridge/cert.pem``, 404 without notification
targets), all without authentication or rate limits. A handler reads its
request into plain values, hands them to the service (``_service``) and wraps
the answer as a ``Reply``; the pipeline (``_pipeline``) decides whether the
operation runs at all, and what the client is told.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import BodyPartReader, web

from ._eventbridge_events import CERTIFICATE_PATH
from ._images import MAX_IMAGE_BYTES, ImageFacts, examine
from ._pipeline import Pipeline
from ._results import RESULTS_PATH
from ._samples import SAMPLE_PORTRAITS, SAMPLES_PATH, sample_portrait, samples_available
from ._service import Service
from ._video import PLACEHOLDER_HEADER, VideoStore
from ._wire import BODY_INVALID, OssError, Reply, ServiceError, error_reply, json_reply

__all__ = ["UPLOAD_PATH", "Routes"]

#: The simulator's stand-in for the OSS upload host, outside the API prefix.
UPLOAD_PATH = "/oss-upload"


async def _json_body(request: web.Request) -> object:
    raw = await request.read()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ServiceError(400, "InvalidParameter", BODY_INVALID) from None


async def _read_form(request: web.Request) -> tuple[dict[str, str], bytes | None, int]:
    """The text fields of an upload form, and its ``file``'s bytes and size.

    The bytes are kept only up to the largest input image: a larger file is
    measured, not kept (``None``).
    """
    if not request.content_type.startswith("multipart/form-data"):
        raise OssError(
            400,
            "MalformedPOSTRequest",
            "The body of your POST request is not well-formed multipart/form-data.",
        )
    fields: dict[str, str] = {}
    chunks: list[bytes] | None = []
    size, seen = 0, False
    async for part in await request.multipart():
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.name == "file":
            seen = True
            while chunk := await part.read_chunk():
                size += len(chunk)
                if chunks is not None:
                    chunks.append(chunk)
                    if size > MAX_IMAGE_BYTES:
                        chunks = None
            break  # OSS ignores whatever follows the file
        fields[part.name] = await part.text()
    if not seen:
        raise OssError(400, "InvalidArgument", "The form field file is required.")
    return fields, None if chunks is None else b"".join(chunks), size


class Routes:
    """The handler of every endpoint; ``add_to`` mounts them on an application."""

    def __init__(
        self,
        pipeline: Pipeline,
        service: Service,
        videos: VideoStore,
        *,
        certificate: bytes | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._service = service
        self._videos = videos
        self._certificate = certificate

    def add_to(self, app: web.Application, prefix: str) -> None:
        """Add every route, the API's under ``prefix``."""
        add = app.router.add_route
        add("POST", f"{prefix}/services/aigc/image2video/face-detect", self._detect, name="detect")
        add(
            "POST",
            f"{prefix}/services/aigc/image2video/video-synthesis",
            self._submit,
            name="submit",
        )
        add("GET", f"{prefix}/tasks", self._list, name="list")
        # The provider's page writes ``/tasks/``, the official SDK sends ``/tasks``.
        add("GET", f"{prefix}/tasks/", self._list, name="list_slash")
        add("GET", f"{prefix}/tasks/{{task_id}}", self._query, name="query")
        # The official SDK 1.x asks for ``/tasks/{id}/``: the gateway answers both forms.
        add("GET", f"{prefix}/tasks/{{task_id}}/", self._query, name="query_slash")
        add("POST", f"{prefix}/tasks/{{task_id}}/cancel", self._cancel, name="cancel")
        add("GET", f"{prefix}/uploads", self._upload_policy, name="upload_policy")
        add("POST", UPLOAD_PATH, self._upload, name="upload")
        app.router.add_get(f"{RESULTS_PATH}/{{name}}", self._download, name="download")
        app.router.add_get(f"{SAMPLES_PATH}/{{name}}", self._sample, name="sample")
        app.router.add_get(CERTIFICATE_PATH, self._certificate_pem, name="certificate")
        add("*", f"{prefix}/{{tail:.*}}", self._other, name="other")

    async def _detect(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            body = await _json_body(request)
            return json_reply(await self._service.detect(body, request.headers))

        return await self._pipeline.run(request, "detect", operation)

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            body = await _json_body(request)
            return json_reply(await self._service.submit(body, request.headers))

        return await self._pipeline.run(request, "submit", operation)

    async def _query(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            origin = str(request.url.origin())
            return json_reply(self._service.query(request.match_info["task_id"], origin))

        return await self._pipeline.run(request, "query", operation)

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            return json_reply(self._service.cancel(request.match_info["task_id"]))

        return await self._pipeline.run(request, "cancel", operation)

    async def _list(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            return json_reply(self._service.list_tasks(request.query))

        return await self._pipeline.run(request, "list", operation)

    async def _upload_policy(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            upload_host = f"{request.url.origin()}{UPLOAD_PATH}"
            return json_reply(self._service.upload_policy(request.query, upload_host))

        return await self._pipeline.run(request, "upload_policy", operation)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            fields, data, size = await _read_form(request)
            facts: ImageFacts = await asyncio.to_thread(examine, data, size)
            self._service.upload(fields, facts, data)
            status = fields.get("success_action_status", "204")
            if status == "200":
                return Reply(200, b"")
            if status == "201":
                key = fields["key"]
                body = f"<PostResponse><Key>{key}</Key></PostResponse>".encode()
                return Reply(201, body, content_type="application/xml")
            return Reply(204, b"")

        return await self._pipeline.run(request, "upload", operation, api=False)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            name = request.match_info["name"]
            if not name.endswith(".mp4"):
                raise OssError(404, "NoSuchKey", "The specified key does not exist.")
            result = self._service.result(
                name.removesuffix(".mp4"),
                request.query.get("Expires", ""),
                request.query.get("Signature", ""),
            )
            video = await self._videos.get(
                result.task_id,
                result.driven_id,
                result.video_seconds,
                self._service.images.portrait_of(result.task_id),
            )
            headers = (PLACEHOLDER_HEADER,) if video.placeholder else ()
            return Reply(200, video.body, content_type=video.content_type, headers=headers)

        return await self._pipeline.run(request, "download", operation, api=False)

    async def _sample(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            name = request.match_info["name"].removesuffix(".png")
            if not request.match_info["name"].endswith(".png") or name not in SAMPLE_PORTRAITS:
                raise OssError(404, "NoSuchKey", "The specified key does not exist.")
            if not samples_available():
                raise OssError(
                    501,
                    "NotImplemented",
                    "Sample portraits need numpy and PyAV: pip install 'emoji-async[video]'.",
                )
            body = await asyncio.to_thread(sample_portrait, name)
            return Reply(200, body, content_type="image/png")

        return await self._pipeline.run(request, "sample", operation, api=False)

    async def _certificate_pem(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            if self._certificate is None:  # no notifications: nothing is signed
                raise OssError(404, "NoSuchKey", "The specified key does not exist.")
            return Reply(200, self._certificate, content_type="application/x-pem-file")

        return await self._pipeline.run(request, "certificate", operation, api=False)

    async def _other(self, request: web.Request) -> web.StreamResponse:
        async def operation() -> Reply:
            return error_reply(
                404, "NotFound", "The requested resource does not exist, please check the url."
            )

        return await self._pipeline.run(request, "other", operation)

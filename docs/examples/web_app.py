"""A web app that animates selfies: upload a photo, pick an expression, watch it play.

Run it, then open http://127.0.0.1:8080/ ::

    export DASHSCOPE_API_KEY=sk-...
    python web_app.py --port 8080

``GET /`` serves a page (``web_app.html``) that uploads the photo to
``POST /jobs`` and polls ``GET /jobs/{task_id}`` until the video is ready.
Scripts can use ``POST /videos`` instead, which answers only once the video
exists::

    curl -F photo=@me.jpg -F template=mengwa_kaixin http://127.0.0.1:8080/videos

One ``EmojiClient`` lives as long as the app (``cleanup_ctx``), so every
request shares its connection pool and its pacing under the account's limits.

What happens when a browser goes away. aiohttp cancels the handler of a
request whose client disconnected (with ``handler_cancellation=True``). A
handler must not own the paid submit: cancelled while the submit's answer is
on its way, it would leave a task nobody knows the id of. So each upload is
followed by a task the app owns (``Studio.start``), and a handler only waits
for it. When a handler is cancelled, the app gives up the job as cheaply as
it still can: before the submit, it stops there; once the task exists, it
cancels it if it is still PENDING (nothing is billed); a task already RUNNING
will be billed whatever we do, so the app follows it to its end all the
same, and ``GET /jobs/{task_id}`` still shows its video.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import logging
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from emoji_async import (
    EmojiClient,
    EmojiError,
    FaceRejectedError,
    Lane,
    Task,
    TaskCanceledError,
    TaskFailedError,
    TaskNotCancelableError,
    ValidationError,
    templates,
)

log = logging.getLogger("web_app")

PAGE = Path(__file__).with_name("web_app.html")
#: The provider takes images of up to 10 MiB; a little more for the form around it.
MAX_REQUEST_BYTES = 10 * 1024 * 1024 + 64 * 1024
#: A finished job is forgotten once its video URL has expired (24 h after the task ended).
KEEP_FINISHED = 24 * 3600.0
TEMPLATE_IDS = frozenset(info.driven_id for info in templates())


@dataclass(eq=False)
class Job:
    """One uploaded photo on its way to a video, as the app follows it."""

    photo: Path
    template: str
    task_id: str | None = None
    status: str = "UPLOADED"  # then the task's: PENDING, RUNNING, SUCCEEDED, FAILED...
    video_url: str | None = None
    error: EmojiError | None = None
    abandoned: bool = False
    task: Task | None = None
    submitted: asyncio.Event = field(default_factory=asyncio.Event)  # or failed before
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def view(self) -> dict[str, Any]:
        """What the browser is told."""
        return {
            "task_id": self.task_id,
            "status": self.status,
            "video_url": self.video_url,
            "error": None if self.error is None else explain(self.error),
        }


def explain(error: EmojiError) -> str:
    """An error in words for the person at the browser (the details go to the log)."""
    if isinstance(error, ValidationError):  # its value is our file's path: keep that to us
        return f"photo: expected {error.allowed}"
    if isinstance(error, FaceRejectedError):
        return f"no usable face in the photo ({error.code}: {error.message})"
    if isinstance(error, TaskCanceledError):
        return "cancelled"
    if isinstance(error, TaskFailedError):
        return f"the animation failed ({error.code}); please try again"
    return "the service could not make the video; please try again"


class Studio:
    """The app's jobs: each followed, from its upload to its video, by a task the app owns."""

    def __init__(self, client: EmojiClient, uploads: Path) -> None:
        self.client = client
        self.uploads = uploads
        self.jobs: dict[str, Job] = {}  # by task id; a real app keeps them in its database
        self._running: set[asyncio.Task[object]] = set()

    def start(self, upload: IO[bytes], template: str) -> Job:
        """Begin animating the photo in ``upload`` (a file object the job now owns)."""
        job = Job(self.uploads / f"{uuid.uuid4().hex}.upload", template)
        self._spawn(self._follow(job, upload))
        return job

    def abandon(self, job: Job) -> None:
        """Nobody waits for ``job`` any more: do not pay for it if that can still be helped."""
        job.abandoned = True
        if job.task is not None:
            self._spawn(self._cancel_if_pending(job))
        # Otherwise _follow sees the flag: it stops before the submit, or cancels
        # the task as soon as the submit has answered.

    async def close(self) -> None:
        """Stop following (the app is shutting down); say which tasks go on without us."""
        for running in self._running:
            running.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        for task_id, job in self.jobs.items():
            if job.status in ("PENDING", "RUNNING"):
                log.warning("task %s (%s) goes on at the provider unfollowed", task_id, job.status)

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        running = asyncio.create_task(coro)
        self._running.add(running)
        running.add_done_callback(self._running.discard)

    async def _follow(self, job: Job, upload: IO[bytes]) -> None:
        client = self.client
        try:
            try:
                await asyncio.to_thread(save, upload, job.photo)
                face = await client.detect(job.photo)
                if job.abandoned:
                    return  # before the paid step: stop here
                # A visitor is waiting: the interactive lane (the default, said
                # here) goes ahead of any batch on the same account.
                task = await client.submit(
                    job.photo,
                    job.template,
                    face_bbox=face.face_bbox,
                    ext_bbox=face.ext_bbox,
                    lane=Lane.INTERACTIVE,
                )
            finally:  # the provider has its own copy now, or will never need one
                await asyncio.to_thread(job.photo.unlink, missing_ok=True)
            job.task, job.task_id = task, task.task_id
            self.jobs[task.task_id] = job
            job.submitted.set()
            if job.abandoned and await self._cancel_if_pending(job):
                return  # the handler went away while the submit was answered
            async for snapshot in task.watch():
                job.status = snapshot.status.value
            video = await task.wait()  # the end is already known: its video or its error
            job.video_url = video.video_url
        except EmojiError as exc:
            log.warning("job %s: %s", job.task_id or "before its submit", exc)
            job.error = exc
            if job.task is None:
                job.status = "REFUSED"
        finally:
            job.submitted.set()
            job.ended.set()
            if job.task_id is not None:
                loop = asyncio.get_running_loop()
                loop.call_later(KEEP_FINISHED, self.jobs.pop, job.task_id, None)

    async def _cancel_if_pending(self, job: Job) -> bool:
        """Cancel the job's task if it is still PENDING (then nothing is billed)."""
        assert job.task is not None
        try:
            await job.task.cancel()
        except TaskNotCancelableError:
            return False  # already running: billed anyway; _follow keeps it to its end
        except EmojiError:
            log.exception("could not cancel abandoned task %s", job.task_id)
            return False
        job.status = "CANCELED"
        return True


STUDIO = web.AppKey("studio", Studio)
MAKE_CLIENT: web.AppKey[Callable[[], EmojiClient]] = web.AppKey("make_client")
POLL_MS = web.AppKey("poll_ms", int)


async def studio_context(app: web.Application) -> AsyncIterator[None]:
    """One client and one upload directory for the app's lifetime."""
    uploads = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="selfies-"))
    try:
        async with app[MAKE_CLIENT]() as client:
            studio = Studio(client, uploads)
            app[STUDIO] = studio
            try:
                yield
            finally:
                await studio.close()
    finally:
        await asyncio.to_thread(shutil.rmtree, uploads, ignore_errors=True)


def error_response(error: EmojiError) -> web.Response:
    """An error of a job as an HTTP answer: the client's fault (4xx) or the service's (502)."""
    if isinstance(error, ValidationError):
        status = 400
    elif isinstance(error, FaceRejectedError):
        status = 422
    else:
        status = 502
    return web.json_response({"error": explain(error)}, status=status)


async def receive(request: web.Request) -> Job | web.Response:
    """Start a job for the uploaded ``photo``; or say what is wrong with the form."""
    form = await request.post()
    photo, template = form.get("photo"), form.get("template")
    if not isinstance(photo, web.FileField):
        return web.json_response({"error": "photo: attach an image file"}, status=400)
    if template not in TEMPLATE_IDS:
        photo.file.close()
        return web.json_response({"error": f"template: one of {sorted(TEMPLATE_IDS)}"}, status=400)
    return request.app[STUDIO].start(photo.file, str(template))


def save(upload: IO[bytes], path: Path) -> None:
    """Copy an upload to a file of its own, and close it (blocking: run it in a thread)."""
    with upload, path.open("xb") as out:
        shutil.copyfileobj(upload, out)


async def make_video(request: web.Request) -> web.Response:
    """``POST /videos``: answers with the video once it exists."""
    job = await receive(request)
    if isinstance(job, web.Response):
        return job
    try:
        await job.ended.wait()
    except asyncio.CancelledError:  # the client went away
        request.app[STUDIO].abandon(job)
        raise
    if job.error is not None:
        return error_response(job.error)
    return web.json_response(job.view())


async def start_job(request: web.Request) -> web.Response:
    """``POST /jobs``: answers with the task id as soon as the task exists."""
    job = await receive(request)
    if isinstance(job, web.Response):
        return job
    try:
        await job.submitted.wait()
    except asyncio.CancelledError:
        request.app[STUDIO].abandon(job)
        raise
    if job.task_id is None:
        assert job.error is not None
        return error_response(job.error)
    location = request.app.router["job"].url_for(task_id=job.task_id)
    return web.json_response(job.view(), status=202, headers={"Location": str(location)})


async def job_status(request: web.Request) -> web.Response:
    """``GET /jobs/{task_id}``: where a job is, as its follower last saw it (no request sent)."""
    job = request.app[STUDIO].jobs.get(request.match_info["task_id"])
    if job is None:
        return web.json_response({"error": "no such job"}, status=404)
    return web.json_response(job.view())


async def page(request: web.Request) -> web.Response:
    """``GET /``: the page, with the templates to choose from."""
    options = "\n".join(
        f'<option value="{info.driven_id}">{html.escape(info.description)}</option>'
        for info in templates()
    )
    text = await asyncio.to_thread(PAGE.read_text, encoding="utf-8")
    text = text.replace("<!-- templates -->", options)
    text = text.replace('data-poll-ms="1000"', f'data-poll-ms="{request.app[POLL_MS]}"')
    return web.Response(text=text, content_type="text/html")


def create_app(
    make_client: Callable[[], EmojiClient] = EmojiClient, *, poll_ms: int = 1000
) -> web.Application:
    """The app. ``make_client`` builds its client; ``poll_ms``: how often the page asks."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[MAKE_CLIENT] = make_client
    app[POLL_MS] = poll_ms
    app.cleanup_ctx.append(studio_context)
    app.add_routes(
        [
            web.get("/", page),
            web.post("/videos", make_video),
            web.post("/jobs", start_job),
            web.get("/jobs/{task_id}", job_status, name="job"),
        ]
    )
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the selfie animator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    web.run_app(create_app(), host=args.host, port=args.port, handler_cancellation=True)


if __name__ == "__main__":
    main()

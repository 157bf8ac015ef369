"""The official SDK 1.x's asyncio path, driven in a child process with 1.x first on ``sys.path``.

Run only through :mod:`.sdk1` (the two majors share the package name
``dashscope``, so 1.x cannot be imported beside the 2.x the project installs).

What its users write: every job at once under ``asyncio.gather``, each one
``BaseAsyncAioApi.async_call`` (the submit) then, if that answered 200,
``BaseAsyncAioApi.wait`` (the polls); a job whose submit or wait does not end
in a SUCCEEDED task with a video URL is lost. 1.x retries nothing but a
request on a dropped keep-alive connection (no sleep), and ``wait`` re-polls
503/504 only: any other error answer, a 429 included, comes back as the
result.

What is scaled, and how: ``wait`` sleeps 1, 1, 2, 2, 2, 4, 4, 4, 5, 5... s
between polls by calling ``asyncio.sleep`` through the name ``asyncio`` of
the module ``dashscope.client.base_api``. For the run that name is bound to a
proxy of the ``asyncio`` module whose ``sleep`` multiplies the delay by the
time scale; nothing else in the process sleeps through it. ``wait_timeout``
stays at its default (none).

One wire difference is patched, and it is not about time: 1.x asks for a task
at ``GET /tasks/{id}/``, with a trailing slash, which the real gateway serves
(1.x works there) but the simulator routes as an unknown path (404). For the
run, the request builder ``dashscope.client.base_api`` calls
(``_build_api_request``) is wrapped to drop that trailing slash: the same
requests, as many, at the same moments.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import types
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from . import API_KEY, MODEL, JobResult, JobSpec, describe_error

__all__ = ["run", "scaled_wait_sleeps", "without_trailing_slash"]


class _ScaledAsyncio(types.ModuleType):
    """``asyncio`` itself, but ``sleep`` lasts ``scale`` times as long."""

    def __init__(self, scale: float) -> None:
        super().__init__("asyncio")
        self.scale = scale

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        return await asyncio.sleep(delay * self.scale, result)


@contextlib.contextmanager
def scaled_wait_sleeps(time_scale: float) -> Iterator[None]:
    """While the block runs, ``BaseAsyncAioApi.wait`` sleeps ``time_scale`` times its own waits."""
    base_api = importlib.import_module("dashscope.client.base_api")
    original = getattr(base_api, "asyncio")  # noqa: B009
    setattr(base_api, "asyncio", _ScaledAsyncio(time_scale))  # noqa: B010
    try:
        yield
    finally:
        setattr(base_api, "asyncio", original)  # noqa: B010


@contextlib.contextmanager
def without_trailing_slash() -> Iterator[None]:
    """While the block runs, the URLs ``dashscope.client.base_api`` requests end without ``/``."""
    base_api = importlib.import_module("dashscope.client.base_api")
    original = getattr(base_api, "_build_api_request")  # noqa: B009

    def build(*args: Any, **kwargs: Any) -> Any:
        request = original(*args, **kwargs)
        if isinstance(request.url, str) and request.url.endswith("/"):
            request.url = request.url.rstrip("/")
        return request

    setattr(base_api, "_build_api_request", build)  # noqa: B010
    try:
        yield
    finally:
        setattr(base_api, "_build_api_request", original)  # noqa: B010


def _sdk() -> tuple[Any, Any]:
    dashscope = importlib.import_module("dashscope")
    version = str(importlib.import_module("dashscope.version").__version__)
    if not version.startswith("1."):
        raise RuntimeError(f"the 1.x driver imported dashscope {version} ({dashscope.__file__})")
    return dashscope, importlib.import_module("dashscope.client.base_api").BaseAsyncAioApi


async def run(base_url: str, jobs: list[JobSpec], *, time_scale: float) -> list[JobResult]:
    """Submit and wait for every job at once through the 1.x asyncio API."""
    dashscope, api = _sdk()
    dashscope.base_http_api_url = base_url
    task_group, task, function = "aigc", "image2video", "video-synthesis"

    async def one(spec: JobSpec) -> JobResult:
        try:
            created = await api.async_call(
                model=MODEL,
                input=spec.submit_input(),
                task_group=task_group,
                task=task,
                function=function,
                api_key=API_KEY,
            )
        except Exception as exc:
            return JobResult.lost(spec.key, None, f"submit: {describe_error(exc)}")
        if created.status_code != HTTPStatus.OK:
            return JobResult.lost(
                spec.key, None, f"submit: HTTP {created.status_code} {created.code}"
            )
        task_id = str(created.output["task_id"])
        try:
            done = await api.wait(created, api_key=API_KEY)
        except Exception as exc:
            return JobResult.lost(spec.key, task_id, f"wait: {describe_error(exc)}")
        output = done.output or {}
        succeeded = output.get("task_status") == "SUCCEEDED" and output.get("video_url")
        if done.status_code == HTTPStatus.OK and succeeded:
            return JobResult.success(spec.key, task_id)
        status = output.get("task_status") if done.status_code == HTTPStatus.OK else None
        reason = f"ended {status}" if status else f"HTTP {done.status_code} {done.code}"
        return JobResult.lost(spec.key, task_id, f"wait: {reason}")

    with scaled_wait_sleeps(time_scale), without_trailing_slash():
        try:
            return list(await asyncio.gather(*(one(spec) for spec in jobs)))
        finally:
            sessions = importlib.import_module("dashscope.api_entities.aio_session")
            await sessions.close_shared_aio_session()

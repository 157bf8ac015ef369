"""Plain HTTP to a running simulator, for the simulator's own tests (no client code of ours)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
import attrs

from emoji_async.testing import ServiceLimits, Simulator, SimulatorConfig, SimulatorServer, serve

#: The provider's rate limits off, its single running slot kept.
UNTHROTTLED = ServiceLimits(
    detect_per_second=None,
    submit_per_second=None,
    query_per_second=None,
    list_per_second=None,
    cancel_per_second=None,
    upload_policy_per_second=None,
)

KEY = "sk-simulator"
DETECT = "/services/aigc/image2video/face-detect"
SUBMIT = "/services/aigc/image2video/video-synthesis"


@attrs.frozen
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str]


class RawApi:
    """A plain HTTP session aimed at one running simulator."""

    def __init__(self, server: SimulatorServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.sim = server.simulator
        self.session = session

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        key: str | None = KEY,
    ) -> Answer:
        sent = {"Authorization": f"Bearer {key}"} if key is not None else {}
        sent.update(headers or {})
        url = path if path.startswith("http") else self.server.base_url + path
        async with self.session.request(
            method, url, json=json, data=data, params=params, headers=sent
        ) as response:
            raw = await response.read()
            body = await response.json() if raw and response.content_type.endswith("json") else raw
            return Answer(response.status, body, response.headers)


_Api = TypeVar("_Api", bound=RawApi)


@contextlib.asynccontextmanager
async def simulators(
    api: type[_Api], default: SimulatorConfig
) -> AsyncIterator[Callable[..., Awaitable[_Api]]]:
    """Starts simulators on loopback, each spoken to as ``api``; all stopped, and the session
    closed, on leaving."""
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())

        async def factory(config: SimulatorConfig | Simulator = default) -> _Api:
            return api(await stack.enter_async_context(serve(config)), session)

        yield factory

"""An :class:`EmojiClient`'s lifetime: what opening it builds, and what closing lets go of.

A client's settings are checked when it is made, and its policies run on its
clock (:mod:`~emoji_async._client_settings`). Opening it
(:class:`ClientLifetime`) resolves the key and the URL, connects the pacing
backend (this process, or Redis), and builds the transport and the service
API over the session; closing lets a cancelled submit settle, lets go of
shared pacing (and of the relay of notifications through it), and closes only
a session the client created. The lifecycle (unopened, open, closed) is an
enum: a closed client is never reopened. The submitter's records (abandoned
tasks, orphans) and the hub of notifications outlive it.
"""

from __future__ import annotations

import enum
import functools
import logging
from typing import Protocol

from ._api import ServiceAPI
from ._client_settings import Settings, check_settings, least_call_time, on_clock
from ._config import resolve_api_key, resolve_base_url
from ._errors import ClientStateError, ConfigurationError, SharedPacingError
from ._limits import RateLimits
from ._notices import Notices
from ._pacing import InProcess, Pacing, PacingBackend
from ._reconcile import Submitter
from ._reporting import tell
from ._shared_config import RedisPacing
from ._transport import Session, Transport, open_session
from ._values import Secret
from .events import EventHandler

__all__ = ["ClientLifetime", "Lifecycle", "Opened", "open_pacing"]

log = logging.getLogger("emoji_async")


class Lifecycle(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


async def open_pacing(config: RedisPacing | None, limits: RateLimits | None) -> PacingBackend:
    """Where the limits are kept: this process, or Redis (connected and checked now)."""
    if config is None:
        return InProcess(limits)
    try:
        from ._shared import RedisBackend
    except ImportError as exc:
        raise ConfigurationError(
            "shared pacing needs the redis extra: pip install 'emoji-async[redis]'"
        ) from exc
    backend = RedisBackend(config, limits)
    try:
        await backend.open()
    except SharedPacingError as exc:
        if not config.fallback:
            raise
        log.warning("%s; pacing in this process alone instead (fallback=True)", exc)
        return InProcess(limits)
    return backend


class Opened(Protocol):
    """What the client's lifetime gives while it is open."""

    @property
    def service(self) -> ServiceAPI: ...

    @property
    def submitter(self) -> Submitter: ...


class ClientLifetime:
    """One client's session, service and submitter, from opening to closing.

    ``client`` is read for its settings: they are checked now, and its
    ``poll``, ``retry``, ``limits`` and ``notifications`` put on its clock (in
    the service's seconds as given); the rest is read when it opens.
    :attr:`notices`, the client's hub of notifications, outlives every opening.
    """

    def __init__(
        self,
        client: Settings,
        *,
        api_key: str | None,
        base_url: str | None,
        workspace: str | None,
        session: Session | None,
        allow_insecure_http: bool,
        cancel_abandoned: bool,
        on_event: EventHandler | None,
    ) -> None:
        check_settings(client.pacing, client.time_scale, client.notifications)
        # Wrapped at once: the key must not sit in a plain attribute a debugger
        # or a careless repr could print.
        self._api_key = None if api_key is None else Secret(api_key)
        self.base_url_arg = base_url
        self._workspace = workspace
        self._borrowed = session
        self._client = client
        # What the client runs on: the policies on its clock (``poll``: its tasks').
        self.poll = on_clock(client.poll, client.time_scale)
        self._retry = on_clock(client.retry, client.time_scale)
        limits = client.limits
        self._limits = None if limits is None else on_clock(limits, client.time_scale)
        notify = client.notifications
        self._notify = None if notify is None else on_clock(notify, client.time_scale)
        self.notices = Notices()
        self._allow_insecure_http = allow_insecure_http
        self._cancel_abandoned = cancel_abandoned
        self._on_event = on_event
        self.state = Lifecycle.UNOPENED
        self.session: Session | None = None
        self._api: ServiceAPI | None = None
        self._submits: Submitter | None = None
        self.base_url: str | None = None

    async def open(self) -> None:
        """Resolve the key and URL, connect the pacing, open the session; once only."""
        if self.state is Lifecycle.CLOSED:
            raise ClientStateError("this EmojiClient is closed and cannot be reopened")
        if self.state is Lifecycle.OPEN:
            return
        key = resolve_api_key(self._api_key)
        self.base_url = resolve_base_url(
            self.base_url_arg, allow_insecure_http=self._allow_insecure_http
        )
        client = self._client
        backend = await open_pacing(client.pacing, self._limits)
        session = self._borrowed or open_session()
        self.session = session
        transport = Transport(
            session,
            base_url=self.base_url,
            api_key=key,
            workspace=self._workspace,
            timeouts=client.timeouts,
        )
        self._api = ServiceAPI(
            transport,
            self._retry,
            Pacing(self._limits, backend, notices=self.notices, notify=self._notify),
            least_call_time=least_call_time(client.retry, client.time_scale),
        )
        self._submits = Submitter(self._api, cancel_abandoned=self._cancel_abandoned)
        if self._on_event is not None:
            self._submits.subscribe(functools.partial(tell, self._on_event))
        self.state = Lifecycle.OPEN

    async def aclose(self) -> None:
        """Let a cancelled submit settle, let go of the pacing, close a session of our own."""
        if self._submits is not None:
            await self._submits.aclose(self._retry.deadline)
        if self._api is not None:
            await self._api.pacing.lanes.aclose()
            await self._api.pacing.backend.aclose()
            self.notices.relay_with(None)
        if self.state is Lifecycle.OPEN and self.session is not self._borrowed:
            assert self.session is not None
            await self.session.close()
        self.session = None
        self._api = None
        # The submitter stays: its records (abandoned tasks, orphans) outlive the client.
        self.state = Lifecycle.CLOSED

    @property
    def service(self) -> ServiceAPI:
        """The service API while open; the lifecycle's :class:`ClientStateError` otherwise."""
        if self._api is None:
            if self.state is Lifecycle.CLOSED:
                raise ClientStateError("this EmojiClient is closed")
            raise ClientStateError("use EmojiClient inside 'async with', or await open() first")
        return self._api

    @property
    def submitter(self) -> Submitter:
        """The client's submitter while open."""
        self.service  # noqa: B018  (raises the lifecycle's error when not open)
        assert self._submits is not None
        return self._submits

    @property
    def records(self) -> Submitter:
        """The submitter, for its records: they outlive the client once it was opened."""
        submits = self._submits
        if submits is None:
            raise ClientStateError("use EmojiClient inside 'async with', or await open() first")
        return submits

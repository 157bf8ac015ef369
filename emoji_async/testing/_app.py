"""The simulator as an aiohttp application, and its ground truth for assertions.

``Simulator`` puts the parts together: the account (``_service``), the record
of requests (``_recording``, the application's middleware), the pipeline every
request goes through (``_pipeline``: authentication, faults, rate limits, the
operation), the routes (``_routes``), and what the server's shutdown cuts
short (``_lifetime``). The application's startup opens the session that
fetches loopback images (``_fetch``); its cleanup closes it. With
notification targets (``SimulatorConfig.notify_targets``), the simulated
EventBridge (``_eventbridge``) hears of every task's end; it runs between
the application's startup and its shutdown.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs
from aiohttp import web
from aiohttp.typedefs import Handler

from ._chaos import Chaos
from ._chaos_source import ChaosSource
from ._config import SimulatorConfig
from ._faces import Boxes
from ._fault_play import FaultPlayer
from ._faults import FaultBook
from ._lifetime import Lifetime
from ._optional import missing_extras
from ._pipeline import Pipeline
from ._recording import Recorder
from ._records import DeliveryRecord, RequestRecord, SimulatorStats
from ._routes import UPLOAD_PATH, Routes
from ._service import Service
from ._tasks import SimulatedTask
from ._video import VideoStore

if TYPE_CHECKING:
    from ._eventbridge import EventBridge

__all__ = ["UPLOAD_PATH", "Simulator"]

log = logging.getLogger("emoji_async.testing")


class Simulator:
    """A simulated DashScope Emoji account, served by ``app`` (an aiohttp application).

    Mount ``app`` anywhere (``serve`` runs it on loopback). The attributes are the
    simulator's ground truth, for assertions: ``requests`` (every request, in
    arrival order, the simulator's own fetches of its sample portraits included;
    the newest ``config.keep_requests`` of them), ``stats`` (with
    ``faults_by_kind``), ``tasks_created``, ``task(task_id)``, ``tasks()``,
    ``task_states()``, ``boxes_for(image_url)``, ``faults`` to script failures,
    and ``set_chaos`` to change the random ones. With notification targets,
    ``deliveries`` records what the simulated EventBridge sent, and
    ``certificate_pem`` is the certificate its signatures verify against.
    ``origin`` (``http://host:port``) is where the simulator is served:
    ``serve`` sets it, and a notification's certificate URL is built from it
    (set it yourself when you mount ``app`` some other way).
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self.faults = FaultBook()
        chaos = self._chaos_source(self.config.chaos)
        self._stats = SimulatorStats()
        self._recorder = Recorder(self._stats, keep=self.config.keep_requests)
        self._service = Service(self.config, self._stats)
        self._videos = VideoStore(render=self.config.render_videos)
        self._lifetime = Lifetime()
        player = FaultPlayer(self._service.clock, self._stats, self._lifetime)
        self._pipeline = Pipeline(self.config, self._service, self.faults, player, chaos)
        self.origin: str | None = None
        self._bridge = self._eventbridge()
        self.app = self._build_app()

    # -- ground truth --------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request recorded, in arrival order (the newest ``config.keep_requests``)."""
        return self._recorder.requests

    @requests.setter
    def requests(self, records: list[RequestRecord]) -> None:
        self._recorder.requests = records

    @property
    def stats(self) -> SimulatorStats:
        """The live counters, with the task clock brought up to date first."""
        self._service.board.advance(self._service.clock.now())
        return self._stats

    @property
    def tasks_created(self) -> int:
        """How many tasks submits have created (throttled or refused ones create none)."""
        return self._stats.tasks_created

    @property
    def deliveries(self) -> list[DeliveryRecord]:
        """Every notification attempt (and lost copy), in order; empty without targets.

        The newest ``config.keep_requests`` of them; ``stats`` counts them all.
        """
        return self._bridge.records if self._bridge is not None else []

    @property
    def certificate_pem(self) -> bytes | None:
        """The PEM certificate notifications are signed for; ``None`` without targets."""
        return self._bridge.signer.certificate_pem if self._bridge is not None else None

    @property
    def renders_videos(self) -> bool:
        """Whether downloads are real MP4s (else placeholders)."""
        return self._videos.real

    @property
    def startup_warning(self) -> str | None:
        """What this simulator cannot do here (PyAV or numpy missing), as logged when it starts.

        ``None`` when it has everything it needs.
        """
        return missing_extras(render_videos=self.config.render_videos)

    @property
    def uploads_by_model(self) -> dict[str, int]:
        """How many files the upload host stored, per model the policy was for."""
        return dict(self._service.uploads.stored_by_model)

    def task(self, task_id: str) -> SimulatedTask | None:
        """The true record of a task as of now; ``None`` if unknown or expired."""
        return self._service.task(task_id)

    def tasks(self) -> tuple[SimulatedTask, ...]:
        """Every task still retained, the most recently submitted first."""
        return tuple(self._service.board.newest_first(self._service.clock.now()))

    def task_states(self) -> dict[str, str]:
        """``{task_id: status}`` of every retained task as of now, oldest submission first.

        The truth whatever the clients were told: a task whose submit was
        answered 500, reset or cut short is here all the same. Its length equals
        ``tasks_created`` until tasks pass the 24 h (scaled) retention.
        """
        return {task.task_id: task.status for task in reversed(self.tasks())}

    def set_chaos(self, chaos: Chaos | None) -> None:
        """Play ``chaos`` from the next request on (``None``: no random faults any more).

        ``config.chaos`` follows; the dice start afresh from the new seed.
        """
        self.config = attrs.evolve(self.config, chaos=chaos)
        self._pipeline.chaos = self._chaos_source(chaos)

    def _chaos_source(self, chaos: Chaos | None) -> ChaosSource | None:
        if chaos is None:
            return None
        return ChaosSource(chaos, time_scale=self.config.time_scale)

    def boxes_for(self, image_url: str) -> Boxes:
        """``(face_bbox, ext_bbox)`` as detection returns them for ``image_url``.

        A loopback URL's boxes come from its image, so they are known only once a
        detection or a submit has fetched it: before that, ``LookupError``.
        """
        return self._service.images.boxes_for(image_url)

    def _eventbridge(self) -> EventBridge | None:
        if not self.config.notify_targets:
            return None
        try:
            # Only here: signing needs cryptography, which only notifications need.
            from ._eventbridge import EventBridge
        except ModuleNotFoundError as exc:
            raise ImportError(
                f"notify_targets needs {exc.name}: pip install 'emoji-async[notify]'"
            ) from exc
        service = self._service
        return EventBridge(
            self.config, service.clock, service.board, self._stats, origin=lambda: self.origin
        )

    # -- the application -------------------------------------------------------------

    def _build_app(self) -> web.Application:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self._recorder.record(request, handler)

        app = web.Application(middlewares=[record])
        routes = Routes(
            self._pipeline, self._service, self._videos, certificate=self.certificate_pem
        )
        routes.add_to(app, self.config.api_prefix)
        app.on_startup.append(self._startup)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, app: web.Application) -> None:
        warning = self.startup_warning
        if warning is not None:  # said at every start: nobody should find it out from a file
            log.warning("emoji-async simulator: %s", warning)
        self._lifetime.start()
        await self._service.images.fetcher.start()
        if self._bridge is not None:
            await self._bridge.start()

    async def _shutdown(self, app: web.Application) -> None:
        if self._bridge is not None:
            await self._bridge.aclose()
        await self._lifetime.shut_down()

    async def _cleanup(self, app: web.Application) -> None:
        await self._lifetime.cancel_late()  # any a request still in flight at shutdown started
        await self._service.images.fetcher.aclose()
        await self._videos.aclose()

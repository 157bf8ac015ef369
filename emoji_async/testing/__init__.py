"""A simulator of the DashScope Emoji service, for tests, demos and benchmarks.

It plays the service as ``PROTOCOL.md`` describes it, over real HTTP: the same
paths, headers, JSON shapes, error codes and messages, rate limits, the single
running slot with its FIFO queue, uploads and signed, expiring result videos.
It shares no code with the client (only the template table), so it cannot
share the client's mistakes either::

    from emoji_async.testing import SimulatorConfig, serve

    async with serve(SimulatorConfig(time_scale=0.001)) as server:
        ...  # point a client at server.base_url with the key "sk-simulator"
        assert server.simulator.stats.tasks_created == 1

Time: ``SimulatorConfig.time_scale`` multiplies every provider time constant
(task run times, rate windows, the 3 h timeout, the 24 h task retention and
video-URL lifetime, the 48 h upload lifetime). Tasks advance lazily and
exactly: no timers run, each request replays what happened since the last.

Test triggers, as query parameters of the *image URL*
(``https://example.com/p.png?sim_reject=InvalidFile.FacePose``):

``sim_reject=<code>``
    Detection rejects the image with HTTP 200 and ``output.code``/``message``
    (an ``InvalidFile.*`` code of the protocol; still billed, ``image_count``
    1), and a submit with that image answers 400 with that code.
``sim_fail=<code>``
    The task is accepted, runs its time, and ends FAILED with that code and a
    plausible message.
``sim_moderation=1``
    The submit answers 400 ``DataInspectionFailed``.
``sim_duration=<seconds>``
    The task runs exactly that many provider seconds (scaled like any other);
    more than 10800 makes it fail with ``InternalError.Timeout`` at 3 h.

Scripted faults (``Simulator.faults.add(Fault(...))``) make an endpoint answer
an error status, drop the connection, or answer late, before or after the
request took effect.

Result videos are real H.264 MP4s (512x512, 15 fps, the template's length)
when PyAV is installed (``emoji-async[video]``); otherwise, or with
``render_videos=False``, a short placeholder body is served as
``application/octet-stream`` with the header ``X-Emoji-Simulator: placeholder``.
"""

from ._app import Simulator
from ._config import ServiceLimits, SimulatorConfig, fixed_duration, uniform_durations
from ._faults import Fault, FaultBook
from ._records import RequestRecord, SimulatorStats
from ._server import SimulatorServer, run_forever, serve
from ._tasks import SimulatedTask

__all__ = [
    "Fault",
    "FaultBook",
    "RequestRecord",
    "ServiceLimits",
    "SimulatedTask",
    "Simulator",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorStats",
    "fixed_duration",
    "run_forever",
    "serve",
    "uniform_durations",
]

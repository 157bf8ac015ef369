"""A simulator of the DashScope Emoji service, for tests, demos and benchmarks.

It plays the service as the provider's pages describe it (the docs page "The
wire protocol", ``docs/wire.md``), over real HTTP: the same paths, headers,
JSON shapes, error codes and messages, rate limits, the single running slot
with its FIFO queue, uploads and signed, expiring result videos.
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
``sim_echo_key=1``
    The task ends FAILED (with ``sim_fail``'s code, else ``InternalError``)
    and a message that repeats its submit's ``Authorization`` header, as a
    careless service might.

The triggers work on every URL, loopback and ``oss://`` ones included.

Images. Like the provider, the simulator downloads ``image_url``, but **only
from loopback** (``127.0.0.0/8``, ``::1``, ``localhost``): its own sample
portraits, or a test's own server. It never contacts any other host: such a URL
stands for an imagined image, whose boxes come from a digest of the URL and
whose video is a cartoon face; the provider's own example image
(``DOCUMENTED_EXAMPLES`` of ``_faces``) detects as the boxes its pages show, so
the documented submit, sent as written, is accepted. A loopback download that
fails answers 400 ``InvalidURL.ConnectionRefused``, ``InvalidURL.Timeout``
(after ``SimulatorConfig.fetch_timeout`` real seconds) or ``InvalidURL`` (any
status but 200; redirects are not followed). A fetched image is remembered by
URL (bounded), so detection and submit see the same picture. A fetched or
uploaded image is checked as the provider checks it: at most 10 MiB
(``InvalidFile.Size``, an inferred code), then a PNG, JPEG, BMP or WEBP
(``InvalidFile.Format``) 400 to 7000 px a side (``InvalidFile.Resolution``):
decoded with PyAV, or without it judged by its header alone. Detection rejects
a failing image with HTTP 200 (billed), a submit with 400. Boxes come from a
digest of the image's bytes, placed inside its real dimensions where a portrait
has its face.

Sample portraits: ``SAMPLE_PORTRAITS`` names a dozen drawn, deterministic
head-and-shoulders faces; ``sample_portrait(name)`` gives one as PNG bytes
(640x640; needs numpy and PyAV); a running simulator serves them, without
authentication, at ``SimulatorServer.sample_url(name)``
(``{origin}/samples/{name}.png``)::

    async with serve() as server:
        url = server.sample_url("ada")  # detect and submit it like any image URL

Scripted faults (``Simulator.faults.add(Fault(...))``) make an endpoint answer
an error status, drop the connection, or answer late, before or after the
request took effect (the sample host is the endpoint ``"sample"``: a delay
there makes a detection time out; the certificate host of notifications is
``"certificate"``); or send the real answer truncated (not
JSON any more), cut short (fewer bytes than its ``Content-Length``) or without
one of its fields; or answer a 3xx or 408 the protocol never lists (plain
text, a ``Location`` for a redirect); or (``late``) answer as failed at once
and process the request only later, in the background. Hostile ones send the
real answer huge (``huge``), as a gzip bomb (``gzip_bomb``), a byte at a time
(``drip``), gzip-encoded (``gzip``) or with an impossible task id
(``odd_task_id``), or answer an error that repeats the request's
``Authorization`` header (``echo_key``).

Chaos (``SimulatorConfig(chaos=Chaos.uniform(0.01, seed=1))``) plays the same
faults at random, one probability per kind (``CHAOS_KINDS``: 5xx with or
without ``Retry-After`` and after processing, resets before and after
processing, slow answers either side of processing, truncated bodies, missing
fields, 429 bursts, cut downloads, late submits created minutes afterwards
and out of order, and 302/307/408 answers after processing; and, only when
asked (``Chaos.uniform(rate, hostile=True)`` or per kind, ``HOSTILE_KINDS``), a
service that misbehaves on purpose: huge answers, gzip bombs, answers dripping
a byte at a time, a ``Retry-After`` of 10^12 s, the account's billing refusals,
a gateway page echoing the key, impossible task ids, gzip-encoded videos),
reproducibly from its seed: the n-th request to an endpoint always gets the
same fault.
Faults only change what the client is told, never the tasks (a late submit
changes only when its task appears): ``Simulator.task_states()`` and
``tasks_created`` stay the truth, and ``stats.faults_by_kind`` counts what was
played (each ``RequestRecord.fault`` says which)::

    config = SimulatorConfig(time_scale=0.01, chaos=Chaos.uniform(0.02, seed=7))
    async with serve(config) as server:
        ...  # run a batch against server.base_url
        print(server.simulator.stats.faults_by_kind)
        assert set(server.simulator.task_states().values()) <= {"SUCCEEDED"}

What the provider's documentation leaves open (docs/wire.md, "The open
points") is a knob of ``SimulatorConfig``, so a client can be tested under
every reading:
``list_zone`` (``"UTC+8"`` or ``"UTC"``: how the list reads its
``start_time`` / ``end_time`` strings), ``clock_skew`` (real seconds the
service's clock runs ahead: every time it shows or reads, the ``Date``
header included), ``list_order`` (``"newest_first"`` or ``"oldest_first"``),
``empty_page`` (``"data"`` or ``"bare"``: whether a page without rows carries
``data`` and ``total_page``) and ``pending_times`` (whether PENDING and
RUNNING queries carry ``submit_time`` / ``scheduled_time``). The defaults are
the historical readings. Each ``SimulatedTask`` records the inputs it was made
from (``image_url``, ``driven_id``, ``face_bbox``, ``ext_bbox``), which no
answer of the provider shows.

Task-finished notifications: with ``SimulatorConfig(notify_targets=(url,))``
the simulator plays the account's EventBridge too. Every task's end
(SUCCEEDED, FAILED, CANCELED) is POSTed to each target as the provider's
CloudEvent, signed (signature V2) with a key of the simulator's own whose
certificate it serves at ``SimulatorServer.certificate_url``; after a latency
drawn from ``notify_latency``, sometimes twice (``notify_duplicates``) or never
(``notify_drop``), retried per ``notify_retry``, and recorded
(``Simulator.deliveries``, ``DeliveryRecord``; counted in ``SimulatorStats``).
Signing needs ``cryptography`` (``pip install 'emoji-async[notify]'``)::

    config = SimulatorConfig(time_scale=0.01, notify_targets=("http://127.0.0.1:9000/events",))
    async with serve(config) as server:
        ...  # a receiver that trusts server.certificate_url gets each task's end

Result videos are real H.264 MP4s (512x512, 15 fps, the template's length)
when PyAV is installed (``emoji-async[video]``). When the simulator has the
task's image (fetched or uploaded) and numpy too, the video animates that
portrait: the extended box, scaled to 512x512, moved as the template says
(a bounce, a nod, a sway, a squash, a slow droop...), the same for the same
image and template. Otherwise it shows a cartoon face. Without PyAV, or with
``render_videos=False``, a short text placeholder (not an MP4: it starts
``emoji-async simulator placeholder``) is served as
``application/octet-stream`` with the header ``X-Emoji-Simulator: placeholder``.
A simulator that lacks PyAV or numpy says what it cannot do, and how to get
it (``pip install 'emoji-async[video]'``), in a warning of the
``emoji_async.testing`` logger each time it starts
(``Simulator.startup_warning``).
"""

from ._app import Simulator
from ._chaos import Chaos
from ._chaos_kinds import CHAOS_KINDS, HOSTILE_KINDS
from ._client import client_for
from ._config import ServiceLimits, SimulatorConfig, fixed_duration, uniform_durations
from ._faults import Fault, FaultBook
from ._receiving import SIMULATOR_CERTIFICATES, receiving
from ._records import DeliveryRecord, RequestRecord, SimulatorStats
from ._samples import SAMPLE_PORTRAITS, sample_portrait
from ._server import SimulatorServer, run_forever, serve
from ._tasks import SimulatedTask

# Plain code-point order, as the public-API tests check, not ruff's isort style.
__all__ = [  # noqa: RUF022
    "CHAOS_KINDS",
    "Chaos",
    "DeliveryRecord",
    "Fault",
    "FaultBook",
    "HOSTILE_KINDS",
    "RequestRecord",
    "SAMPLE_PORTRAITS",
    "SIMULATOR_CERTIFICATES",
    "ServiceLimits",
    "SimulatedTask",
    "Simulator",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorStats",
    "client_for",
    "fixed_duration",
    "receiving",
    "run_forever",
    "sample_portrait",
    "serve",
    "uniform_durations",
]

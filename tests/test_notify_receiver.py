"""The receiver hands each verified, new event to its sink once, and refuses the rest harmlessly.

Deliveries are POSTed over real loopback HTTP: to the aiohttp handler in an
aiohttp app, and to the ASGI app under a real uvicorn server started in the
test's event loop. Certificates come from a loopback host the verifier trusts
only through its explicit ``certificate_urls``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import uvicorn
from aiohttp import web
from aiohttp.test_utils import TestServer

from emoji_async import TaskStatus
from emoji_async._notice_signing import SIGNATURE
from emoji_async.notify import NotificationRefusedError, Receiver, TaskFinished, Verifier
from emoji_async.testing._eventbridge_keys import EventSigner

from .test_notify_verify import LOOPBACK, TOKEN_VALUE, CertificateHost, certificate_host

PATH = "/hooks/eventbridge"
#: The account id every body carries: the logs must never show a body.
ACCOUNT = "acct-7731-5520"


class Sink:
    """A sink that records what it is handed, optionally slowly, or failing the first times."""

    def __init__(self, *, delay: float = 0.0, failures: int = 0) -> None:
        self.events: list[TaskFinished] = []
        self.delay = delay
        self.failures = failures
        self.cancelled = 0
        #: Set when an event is recorded.
        self.delivered = asyncio.Event()

    async def deliver(self, event: TaskFinished) -> None:
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the sink is down")
        self.events.append(event)
        self.delivered.set()


def body_of(
    *, task_id: str = "task-1", event_id: str = "evt-1", status: str = "SUCCEEDED", **extra: Any
) -> bytes:
    document = {
        "id": event_id,
        "source": "acs.dashscope",
        "type": "dashscope:System:AsyncTaskFinish",
        "specversion": "1.0",
        "time": "2023-1-25T01:45:16.969Z",
        "aliyunaccountid": ACCOUNT,
        "data": {"task_id": task_id, "task_status": status, "request_id": "req-1"},
    }
    document.update(extra)
    return json.dumps(document).encode()


class Sender:
    """EventBridge's side: signs a body for the target URL and POSTs it."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, host: CertificateHost, signer: EventSigner
    ) -> None:
        self.session = session
        self.url = url
        self.host = host
        self.signer = signer
        #: Every signature sent, to look for in the logs.
        self.signatures: list[str] = []

    async def post(
        self,
        body: bytes,
        *,
        signed_url: str | None = None,
        signer: EventSigner | None = None,
        token: str | None = TOKEN_VALUE,
        cert_url: str | None = None,
        now: float | None = None,
        change: Callable[[dict[str, str]], None] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        headers = (signer or self.signer).headers(
            signed_url or self.url,
            body,
            cert_url=cert_url or self.host.cert_url,
            token=token,
            now=now,
        )
        if change is not None:
            change(headers)
        self.signatures.append(headers.get(SIGNATURE, ""))
        async with self.session.post(self.url, data=body, headers=headers) as response:
            return response.status, await response.json()


@asynccontextmanager
async def aiohttp_receiver(
    receiver_for: Callable[[CertificateHost], Receiver],
) -> AsyncIterator[tuple[Sender, Receiver]]:
    """``receiver``'s aiohttp handler in an aiohttp app on loopback, and a sender to it."""
    signer = EventSigner()
    async with certificate_host(signer.certificate_pem) as host:
        receiver = receiver_for(host)
        app = web.Application()
        app.router.add_post(PATH, receiver.aiohttp_handler)
        async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session:
            yield Sender(session, f"http://127.0.0.1:{server.port}{PATH}", host, signer), receiver
        await receiver.aclose()


def trusting(sink: Sink, **options: Any) -> Callable[[CertificateHost], Receiver]:
    """A receiver for ``sink`` that trusts the loopback certificate host, token required."""

    def make(host: CertificateHost) -> Receiver:
        verifier = Verifier(token=TOKEN_VALUE, certificate_urls=LOOPBACK)
        return Receiver(sink, verifier=verifier, **options)

    return make


async def test_a_signed_event_reaches_the_sink_once_and_a_replay_is_a_duplicate() -> None:
    sink = Sink()
    async with aiohttp_receiver(trusting(sink)) as (sender, receiver):
        body = body_of()
        assert await sender.post(body) == (200, {"status": "accepted"})
        assert await sender.post(body) == (200, {"status": "duplicate"})  # signed again
        # The very same delivery replayed, headers and all.
        headers = sender.signer.headers(
            sender.url, body, cert_url=sender.host.cert_url, token=TOKEN_VALUE
        )
        for _ in range(2):
            async with sender.session.post(sender.url, data=body, headers=headers) as response:
                assert response.status == 200
    assert [(e.task_id, e.status, e.event_id) for e in sink.events] == [
        ("task-1", TaskStatus.SUCCEEDED, "evt-1")
    ]
    assert (receiver.stats.accepted, receiver.stats.duplicates) == (1, 3)
    assert receiver.stats.refused == {}


async def test_the_same_task_and_state_under_another_event_id_is_a_duplicate() -> None:
    sink = Sink()
    async with aiohttp_receiver(trusting(sink)) as (sender, receiver):
        assert (await sender.post(body_of(event_id="a")))[0] == 200
        assert await sender.post(body_of(event_id="b")) == (200, {"status": "duplicate"})
        assert await sender.post(body_of(event_id="c", status="FAILED")) == (
            200,
            {"status": "accepted"},
        )
        assert await sender.post(body_of(event_id="d", task_id="task-2")) == (
            200,
            {"status": "accepted"},
        )
    assert [(e.task_id, e.raw_status) for e in sink.events] == [
        ("task-1", "SUCCEEDED"),
        ("task-1", "FAILED"),
        ("task-2", "SUCCEEDED"),
    ]
    assert receiver.stats.duplicates == 1


def _pop(name: str) -> Callable[[dict[str, str]], None]:
    def change(headers: dict[str, str]) -> None:
        headers.pop(name)

    return change


def _forge(headers: dict[str, str]) -> None:
    headers[SIGNATURE] = headers[SIGNATURE][:10] + "A" * 10 + headers[SIGNATURE][20:]


async def test_forged_stale_wrongly_hosted_tokenless_and_malformed_deliveries_change_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sink = Sink()
    stranger = EventSigner()
    official = "https://cn-beijing-eventbridge.oss-accelerate.aliyuncs.com"
    async with aiohttp_receiver(trusting(sink)) as (sender, receiver):
        body = body_of()
        port = sender.host.origin.rsplit(":", 1)[1]
        cases: list[tuple[str, int, str, dict[str, Any]]] = [
            ("forged signature", 403, "signature", {"change": _forge}),
            ("another key", 403, "signature", {"signer": stranger}),
            ("another URL signed", 403, "signature", {"signed_url": sender.url + "?x=1"}),
            ("stale", 403, "timestamp", {"now": time.time() - 120}),
            ("future", 403, "timestamp", {"now": time.time() + 120}),
            ("unsigned", 401, "unsigned", {"change": _pop(SIGNATURE)}),
            ("no token", 403, "token", {"token": None}),
            ("wrong token", 403, "token", {"token": "tok-guess"}),
            (
                "lookalike host",
                403,
                "certificate-url",
                {"cert_url": official + ".evil.example/cert.pem"},
            ),
            (
                "user information",
                403,
                "certificate-url",
                {"cert_url": f"http://127.0.0.1:{port}@evil.example/eventbridge/cert.pem"},
            ),
            (
                "http to the official host",
                403,
                "certificate-url",
                {"cert_url": "http" + official[5:] + "/c.pem"},
            ),
        ]
        for name, status, reason, options in cases:
            assert await sender.post(body, **options) == (status, {"error": reason}), name
        signed_junk = [
            (b"{not json", 400, "malformed"),
            (b"[1, 2]", 400, "malformed"),
            (body_of(data={"task_status": "SUCCEEDED"}), 400, "malformed"),
        ]
        for junk, status, reason in signed_junk:
            assert await sender.post(junk) == (status, {"error": reason})
        other = body_of(type="acs.ecs:Instance:StateChange")
        assert await sender.post(other) == (200, {"status": "ignored"})
        assert await sender.post(body_of(source="acs.other")) == (200, {"status": "ignored"})
        # After all that, the genuine delivery still goes through: nothing was remembered.
        assert await sender.post(body) == (200, {"status": "accepted"})
    assert len(sink.events) == 1
    assert receiver.stats.refused == {
        "signature": 3,
        "timestamp": 2,
        "unsigned": 1,
        "token": 2,
        "certificate-url": 3,
        "malformed": 3,
    }
    assert receiver.stats.ignored == 2
    warnings = [
        r for r in caplog.records if r.name == "emoji_async" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 14
    assert "'task-1'" in warnings[0].getMessage()  # the ids the refused body names, quoted
    assert "signature" in warnings[0].getMessage()
    logged = caplog.text
    assert TOKEN_VALUE not in repr(receiver)
    assert TOKEN_VALUE not in logged
    assert "tok-guess" not in logged
    assert ACCOUNT not in logged
    assert "acs.ecs" not in logged
    for signature in filter(None, sender.signatures):
        assert signature[:24] not in logged


async def test_a_body_over_the_cap_is_refused_413_without_being_read_whole() -> None:
    sink = Sink()
    async with aiohttp_receiver(trusting(sink, max_body=4096)) as (sender, receiver):
        padding = "x" * 5000
        big = body_of(padding=padding)
        assert await sender.post(big) == (413, {"error": "too-large"})

        async def pieces() -> AsyncIterator[bytes]:  # chunked: no Content-Length to go by
            for _ in range(100):
                yield b"x" * 1000

        headers = sender.signer.headers(sender.url, b"", cert_url=sender.host.cert_url)
        async with sender.session.post(sender.url, data=pieces(), headers=headers) as response:
            assert response.status == 413
        assert await sender.post(body_of(padding="x" * 3000)) == (200, {"status": "accepted"})
    assert len(sink.events) == 1
    assert receiver.stats.refused == {"too-large": 2}


async def test_a_slow_sink_is_answered_within_the_deadline_and_the_event_still_delivered() -> None:
    sink = Sink(delay=1.5)
    async with aiohttp_receiver(trusting(sink, deadline=0.3)) as (sender, receiver):
        started = time.monotonic()
        assert await sender.post(body_of()) == (202, {"status": "accepted"})
        # Answered long before the sink is done (a loaded machine gets a wide margin).
        assert time.monotonic() - started < 1.2
        assert sink.events == []
        assert await sender.post(body_of()) == (200, {"status": "duplicate"})
        await asyncio.wait_for(sink.delivered.wait(), 10)
        assert len(sink.events) == 1
    assert (receiver.stats.late, receiver.stats.accepted) == (1, 1)


async def test_a_certificate_slower_than_the_deadline_is_503_and_still_kept_for_the_retry() -> None:
    sink = Sink()
    signer = EventSigner()
    async with (
        certificate_host(signer.certificate_pem, delay=1.5) as host,
        aiohttp.ClientSession() as session,
    ):
        receiver = Receiver(sink, verifier=Verifier(certificate_urls=LOOPBACK), deadline=0.3)
        app = web.Application()
        app.router.add_post(PATH, receiver.aiohttp_handler)
        async with TestServer(app, host="127.0.0.1") as server:
            sender = Sender(session, f"http://127.0.0.1:{server.port}{PATH}", host, signer)
            started = time.monotonic()
            assert await sender.post(body_of(), token=None) == (503, {"error": "deadline"})
            assert time.monotonic() - started < 1.2  # long before the certificate came
            await asyncio.sleep(2.0)  # the fetch went on, and its certificate is kept
            assert await sender.post(body_of(), token=None) == (200, {"status": "accepted"})
    assert host.hits == {"/eventbridge/cert.pem": 1}
    assert len(sink.events) == 1


async def test_a_failing_sink_answers_500_and_the_retry_is_delivered() -> None:
    sink = Sink(failures=1)
    async with aiohttp_receiver(trusting(sink)) as (sender, receiver):
        assert await sender.post(body_of()) == (500, {"error": "sink"})
        assert await sender.post(body_of()) == (200, {"status": "accepted"})
    assert len(sink.events) == 1
    assert receiver.stats.sink_failures == 1


async def test_behind_a_proxy_the_public_url_is_what_the_signature_covers() -> None:
    public = "https://hooks.example.com/eventbridge?team=video"
    sink = Sink()
    async with aiohttp_receiver(trusting(sink, public_url=public)) as (sender, _):
        assert await sender.post(body_of(), signed_url=public) == (200, {"status": "accepted"})
        second = body_of(task_id="task-2")
        assert await sender.post(second) == (403, {"error": "signature"})
    assert [e.task_id for e in sink.events] == ["task-1"]


async def test_the_default_receiver_verifies_and_trusts_no_loopback_certificate() -> None:
    sink = Sink()
    async with aiohttp_receiver(lambda host: Receiver(sink)) as (sender, receiver):
        assert not receiver.verifier.insecure
        assert await sender.post(body_of(), token=None) == (403, {"error": "certificate-url"})
    assert sink.events == []
    assert receiver.verifier.certificates.fetches == 0


async def test_the_handle_method_serves_any_framework_with_bytes_and_a_header_mapping() -> None:
    sink = Sink()
    signer = EventSigner()
    async with certificate_host(signer.certificate_pem) as host:
        receiver = Receiver(sink, verifier=Verifier(certificate_urls=LOOPBACK))
        url = "https://hooks.example.com/eventbridge"
        body = body_of()
        headers = signer.headers(url, body, cert_url=host.cert_url)
        answer = await receiver.handle(url, headers, body)
        assert (answer.status, json.loads(answer.body)) == (200, {"status": "accepted"})
    assert len(sink.events) == 1
    assert issubclass(NotificationRefusedError, Exception)


@asynccontextmanager
async def uvicorn_serving(app: Any) -> AsyncIterator[str]:
    """``app`` under a real uvicorn server on a loopback port, in this loop; its origin."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="on", log_level="warning", ws="none"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn says so by a flag, no event)
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def test_the_asgi_app_under_uvicorn_receives_refuses_and_shuts_down() -> None:
    sink = Sink()
    signer = EventSigner()
    async with certificate_host(signer.certificate_pem) as host:
        verifier = Verifier(token=TOKEN_VALUE, certificate_urls=LOOPBACK)
        receiver = Receiver(sink, verifier=verifier, max_body=4096)
        async with uvicorn_serving(receiver.asgi) as origin, aiohttp.ClientSession() as session:
            sender = Sender(session, f"{origin}{PATH}?team=video", host, signer)
            assert await sender.post(body_of()) == (200, {"status": "accepted"})
            assert await sender.post(body_of()) == (200, {"status": "duplicate"})
            assert await sender.post(body_of(event_id="e2"), now=time.time() - 300) == (
                403,
                {"error": "timestamp"},
            )
            assert await sender.post(body_of(event_id="e3"), token="nope") == (
                403,
                {"error": "token"},
            )
            assert await sender.post(body_of(padding="x" * 5000)) == (413, {"error": "too-large"})
            assert await sender.post(b"{}") == (400, {"error": "malformed"})
            async with session.get(sender.url) as response:
                assert response.status == 405
                assert response.headers["Allow"] == "POST"
    assert [e.task_id for e in sink.events] == ["task-1"]
    assert receiver.stats.refused == {"timestamp": 1, "token": 1, "too-large": 1, "malformed": 1}


async def test_the_asgi_lifespan_shutdown_stops_a_delivery_still_running() -> None:
    sink = Sink(delay=30)
    signer = EventSigner()
    async with certificate_host(signer.certificate_pem) as host:
        verifier = Verifier(certificate_urls=LOOPBACK)
        receiver = Receiver(sink, verifier=verifier, deadline=0.2)
        async with uvicorn_serving(receiver.asgi) as origin, aiohttp.ClientSession() as session:
            sender = Sender(session, f"{origin}{PATH}", host, signer)
            assert await sender.post(body_of(), token=None) == (202, {"status": "accepted"})
    assert sink.cancelled == 1
    assert sink.events == []
    assert receiver.stats.late == 1


async def test_the_asgi_app_mounted_in_starlette_checks_the_full_url_it_was_posted_to() -> None:
    applications = pytest.importorskip("starlette.applications")
    routing = pytest.importorskip("starlette.routing")
    sink = Sink()
    signer = EventSigner()
    async with certificate_host(signer.certificate_pem) as host:
        receiver = Receiver(sink, verifier=Verifier(certificate_urls=LOOPBACK))
        app = applications.Starlette(routes=[routing.Mount("/hooks", app=receiver.asgi)])
        async with uvicorn_serving(app) as origin, aiohttp.ClientSession() as session:
            sender = Sender(session, f"{origin}/hooks/eventbridge?team=video", host, signer)
            assert await sender.post(body_of(), token=None) == (200, {"status": "accepted"})
            # Signed for the path the mount sees, not the one posted to: refused.
            cut = f"{origin}/eventbridge?team=video"
            second = body_of(task_id="task-2")
            assert await sender.post(second, token=None, signed_url=cut) == (
                403,
                {"error": "signature"},
            )
    assert [e.task_id for e in sink.events] == ["task-1"]

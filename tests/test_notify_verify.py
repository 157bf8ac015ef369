"""The verifier accepts what EventBridge signs, in every reading, and refuses everything else.

Certificates are served over real loopback HTTP by a small aiohttp app, at
``/eventbridge/cert.pem`` as the simulator serves its own; the verifier trusts
that loopback URL only when a test passes its pattern explicitly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from emoji_async import EmojiError, ValidationError
from emoji_async._notice_signing import CERT_URL, SIGNATURE, SIGNATURE_V1, TIMESTAMP
from emoji_async.notify import (
    OFFICIAL_CERTIFICATE_URLS,
    SIGN_FORMS,
    NotificationRefusedError,
    SignForm,
    Verifier,
)
from emoji_async.notify._certificates import CertificateCache, check_certificate_url
from emoji_async.testing._eventbridge_keys import EventSigner

#: The pattern a test passes to trust its loopback certificate host.
LOOPBACK = r"http://127\.0\.0\.1:\d+/eventbridge/cert\.pem"
TARGET = "https://example.com/hooks/eventbridge?from=dashscope"
TOKEN_VALUE = "tok-9f2Qz7-very-secret-token"


@attrs.define
class CertificateHost:
    """A loopback host serving certificates; ``hits`` counts the requests for each path."""

    origin: str
    hits: dict[str, int]

    @property
    def cert_url(self) -> str:
        return f"{self.origin}/eventbridge/cert.pem"


#: A route's answer: its status, body and headers.
Route = tuple[int, bytes, dict[str, str]]


@asynccontextmanager
async def certificate_host(
    pem: bytes, *, routes: dict[str, Route] | None = None, delay: float = 0.0
) -> AsyncIterator[CertificateHost]:
    """Serve ``pem`` at ``/eventbridge/cert.pem`` (after ``delay`` s), and ``routes`` beside it."""
    hits: dict[str, int] = {}
    answers: dict[str, Route] = {"/eventbridge/cert.pem": (200, pem, {}), **(routes or {})}

    async def serve(request: web.Request) -> web.Response:
        hits[request.path] = hits.get(request.path, 0) + 1
        if delay:
            await asyncio.sleep(delay)
        status, body, headers = answers[request.path]
        return web.Response(status=status, body=body, headers=headers)

    app = web.Application()
    for path in answers:
        app.router.add_get(path, serve)
    async with TestServer(app, host="127.0.0.1") as server:
        yield CertificateHost(origin=f"http://127.0.0.1:{server.port}", hits=hits)


def event_body(task_id: str = "task-1", event_id: str = "evt-1") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "source": "acs.dashscope",
            "type": "dashscope:System:AsyncTaskFinish",
            "specversion": "1.0",
            "data": {"task_id": task_id, "task_status": "SUCCEEDED"},
        }
    ).encode()


async def refusal(verifier: Verifier, url: str, headers: dict[str, str], body: bytes) -> str:
    """The reason ``verifier`` refuses the delivery with (it must refuse it)."""
    with pytest.raises(NotificationRefusedError) as refused:
        await verifier.verify(url, headers, body)
    return refused.value.reason


@pytest.mark.parametrize("form", SIGN_FORMS, ids=str)
async def test_a_signed_delivery_verifies_under_every_reading_of_the_string_to_sign(
    form: SignForm,
) -> None:
    signer = EventSigner(form=form)
    body = event_body()
    async with certificate_host(signer.certificate_pem) as host:
        verifier = Verifier(token=TOKEN_VALUE, certificate_urls=LOOPBACK)
        headers = signer.headers(TARGET, body, cert_url=host.cert_url, token=TOKEN_VALUE)
        await verifier.verify(TARGET, headers, body)
        # Header names come in any case from a server; a plain mapping or pairs will do.
        await verifier.verify(TARGET, [(k.upper(), v) for k, v in headers.items()], body)
        assert host.hits == {"/eventbridge/cert.pem": 1}  # fetched once, then kept


async def test_a_forged_body_url_or_signature_and_another_key_are_refused() -> None:
    signer, stranger = EventSigner(), EventSigner()
    body = event_body()
    async with certificate_host(signer.certificate_pem) as host:
        verifier = Verifier(certificate_urls=LOOPBACK)
        headers = signer.headers(TARGET, body, cert_url=host.cert_url)
        await verifier.verify(TARGET, headers, body)
        forged = event_body(task_id="task-2")
        assert await refusal(verifier, TARGET, headers, forged) == "signature"
        assert await refusal(verifier, TARGET + "x", headers, body) == "signature"
        other_key = stranger.headers(TARGET, body, cert_url=host.cert_url)
        assert await refusal(verifier, TARGET, other_key, body) == "signature"
        garbled = {**headers, SIGNATURE: headers[SIGNATURE][:-8] + "AAAAAAA="}
        assert await refusal(verifier, TARGET, garbled, body) == "signature"
        not_base64 = {**headers, SIGNATURE: "not base64!"}
        assert await refusal(verifier, TARGET, not_base64, body) == "signature"
        short = {**headers, SIGNATURE: "AAAA"}
        assert await refusal(verifier, TARGET, short, body) == "signature"


# 65 s, not 61: the time stamp is whole seconds (up to one less than the skew asked
# for), and a loaded machine may take a moment between signing and verifying.
@pytest.mark.parametrize("skew", [-65.0, 65.0, -3600.0, 86400.0])
async def test_a_time_stamp_more_than_a_minute_off_either_way_is_refused(skew: float) -> None:
    signer = EventSigner()
    body = event_body()
    async with certificate_host(signer.certificate_pem) as host:
        verifier = Verifier(certificate_urls=LOOPBACK)
        headers = signer.headers(TARGET, body, cert_url=host.cert_url, now=time.time() + skew)
        assert await refusal(verifier, TARGET, headers, body) == "timestamp"
        assert host.hits == {}  # refused before any certificate is fetched
        near = signer.headers(TARGET, body, cert_url=host.cert_url, now=time.time() + skew / 2)
        if abs(skew) < 100:
            await verifier.verify(TARGET, near, body)


async def test_a_time_stamp_in_milliseconds_is_read_as_such() -> None:
    signer = EventSigner()
    body = event_body()
    async with certificate_host(signer.certificate_pem) as host:
        verifier = Verifier(certificate_urls=LOOPBACK)
        now = signer.headers(TARGET, body, cert_url=host.cert_url, now=time.time() * 1000)
        assert len(now[TIMESTAMP]) == 13
        await verifier.verify(TARGET, now, body)
        stale = signer.headers(TARGET, body, cert_url=host.cert_url, now=time.time() * 1000 - 1e5)
        assert await refusal(verifier, TARGET, stale, body) == "timestamp"


@pytest.mark.parametrize(
    ("change", "reason", "status"),
    [
        ({SIGNATURE: None}, "unsigned", 401),
        ({SIGNATURE: None, SIGNATURE_V1: "c2lnbmF0dXJl"}, "legacy-signature", 401),
        ({TIMESTAMP: None}, "headers", 401),
        ({TIMESTAMP: "yesterday"}, "headers", 403),
        ({TIMESTAMP: "-5"}, "headers", 403),
        ({CERT_URL: None}, "headers", 401),
        ({"x-eventbridge-hash-method": "SHA1"}, "headers", 403),
    ],
)
async def test_missing_or_garbled_signature_headers_are_refused(
    change: dict[str, str | None], reason: str, status: int
) -> None:
    signer = EventSigner()
    body = event_body()
    async with certificate_host(signer.certificate_pem) as host:
        verifier = Verifier(certificate_urls=LOOPBACK)
        headers = signer.headers(TARGET, body, cert_url=host.cert_url)
        for name, value in change.items():
            if value is None:
                headers.pop(name)
            else:
                headers[name] = value
        with pytest.raises(NotificationRefusedError) as refused:
            await verifier.verify(TARGET, headers, body)
        assert (refused.value.reason, refused.value.http_status) == (reason, status)
        assert isinstance(refused.value, EmojiError)
        assert host.hits == {}


async def test_a_repeated_signature_header_is_refused() -> None:
    signer = EventSigner()
    body = event_body()
    async with certificate_host(signer.certificate_pem) as host:
        verifier = Verifier(certificate_urls=LOOPBACK)
        headers = signer.headers(TARGET, body, cert_url=host.cert_url)
        pairs = [*headers.items(), (TIMESTAMP.upper(), "1")]
        with pytest.raises(NotificationRefusedError) as refused:
            await verifier.verify(TARGET, pairs, body)
        assert refused.value.reason == "headers"


LOOKALIKES = [
    # Another host that starts like the official one.
    "https://cn-beijing-eventbridge.oss-accelerate.aliyuncs.com.evil.example/cert.pem",
    # The official host as a user name, the real host after it.
    "https://cn-beijing-eventbridge.oss-accelerate.aliyuncs.com@evil.example/cert.pem",
    "https://cn-beijing-eventbridge.oss-accelerate.aliyuncs.com:443@evil.example/cert.pem",
    # Plain http, even to the official host.
    "http://cn-beijing-eventbridge.oss-accelerate.aliyuncs.com/cert.pem",
    # Not the official host at all, or a part of it only.
    "https://evil.example/cn-beijing-eventbridge.oss-accelerate.aliyuncs.com/cert.pem",
    "https://eventbridge.oss-accelerate.aliyuncs.com/cert.pem",
    "https://cn-beijing-eventbridge.oss-cn-beijing.aliyuncs.com/cert.pem",
    "https://cn-beijing-eventbridge.oss-accelerate.aliyuncs.com/",
    "https://cn-beijing-eventbridge.oss-accelerate.aliyuncs.com/cert.pem?x=@evil.example",
    "https://cn-beijing-eventbridge.oss-accelerate.aliyuncs.com/cert.pem#@evil.example",
    "https://cn-beijing-eventbridge.oss-accelerate.aliyuncs.com\\@evil.example/cert.pem",
    " https://cn-beijing-eventbridge.oss-accelerate.aliyuncs.com/cert.pem",
]


@pytest.mark.parametrize("url", LOOKALIKES)
def test_the_official_pattern_refuses_lookalike_certificate_urls(url: str) -> None:
    with pytest.raises(NotificationRefusedError) as refused:
        check_certificate_url(url, OFFICIAL_CERTIFICATE_URLS)
    assert refused.value.reason == "certificate-url"


@pytest.mark.parametrize(
    "url",
    [
        "https://cn-beijing-eventbridge.oss-accelerate.aliyuncs.com/x509/public.crt",
        "https://ap-southeast-1-eventbridge.oss-accelerate.aliyuncs.com/cert/eb-v2.pem",
    ],
)
def test_the_official_pattern_takes_the_official_host_over_https(url: str) -> None:
    check_certificate_url(url, OFFICIAL_CERTIFICATE_URLS)


def test_even_a_loose_test_pattern_refuses_a_url_with_user_information() -> None:
    anything = re.compile(r".*")
    for url in ("http://user:pw@127.0.0.1:80/eventbridge/cert.pem", "ftp://127.0.0.1/cert.pem"):
        with pytest.raises(NotificationRefusedError):
            check_certificate_url(url, anything)


async def test_the_default_verifier_trusts_no_loopback_certificate_and_fetches_nothing() -> None:
    signer = EventSigner()
    body = event_body()
    async with certificate_host(signer.certificate_pem) as host:
        verifier = Verifier()
        headers = signer.headers(TARGET, body, cert_url=host.cert_url)
        assert await refusal(verifier, TARGET, headers, body) == "certificate-url"
        for url in LOOKALIKES:
            lookalike = signer.headers(TARGET, body, cert_url=url)
            assert await refusal(verifier, TARGET, lookalike, body) == "certificate-url"
        assert host.hits == {}
        assert verifier.certificates.fetches == 0


async def test_the_token_is_required_when_configured_and_never_shown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    signer = EventSigner()
    body = event_body()
    async with certificate_host(signer.certificate_pem) as host:
        verifier = Verifier(token=TOKEN_VALUE, certificate_urls=LOOPBACK)
        messages = [repr(verifier), str(verifier)]
        for token in (None, "wrong", TOKEN_VALUE[:-1], TOKEN_VALUE + "x"):
            headers = signer.headers(TARGET, body, cert_url=host.cert_url, token=token)
            with pytest.raises(NotificationRefusedError) as refused:
                await verifier.verify(TARGET, headers, body)
            assert refused.value.reason == "token"
            messages += [str(refused.value), repr(refused.value), refused.value.message]
        good = signer.headers(TARGET, body, cert_url=host.cert_url, token=TOKEN_VALUE)
        await verifier.verify(TARGET, good, body)
        # A token on a delivery to a verifier without one is part of what is signed, no more.
        await Verifier(certificate_urls=LOOPBACK).verify(TARGET, good, body)
    shown = "\n".join([*messages, caplog.text])
    assert TOKEN_VALUE not in shown
    assert TOKEN_VALUE[4:-4] not in shown


async def test_a_certificate_is_fetched_once_and_kept_and_a_failure_briefly() -> None:
    signer = EventSigner()
    body = event_body()
    missing: dict[str, Route] = {"/eventbridge/gone.pem": (404, b"", {})}
    async with certificate_host(signer.certificate_pem, routes=missing) as host:
        verifier = Verifier(certificate_urls=r"http://127\.0\.0\.1:\d+/eventbridge/\w+\.pem")
        verifier.certificates.failure_ttl = 1.0
        gone = signer.headers(TARGET, body, cert_url=f"{host.origin}/eventbridge/gone.pem")
        results = await asyncio.gather(
            *(verifier.verify(TARGET, gone, body) for _ in range(5)), return_exceptions=True
        )
        assert {r.reason for r in results if isinstance(r, NotificationRefusedError)} == {
            "certificate"
        }
        assert len(results) == 5
        assert host.hits == {"/eventbridge/gone.pem": 1}  # five deliveries, one fetch
        assert await refusal(verifier, TARGET, gone, body) == "certificate"
        assert host.hits == {"/eventbridge/gone.pem": 1}  # the failure is kept a moment
        await asyncio.sleep(1.1)
        assert await refusal(verifier, TARGET, gone, body) == "certificate"
        assert host.hits == {"/eventbridge/gone.pem": 2}  # and fetched again after it
        good = signer.headers(TARGET, body, cert_url=host.cert_url)
        await asyncio.gather(*(verifier.verify(TARGET, good, body) for _ in range(5)))
        assert host.hits["/eventbridge/cert.pem"] == 1


async def test_a_certificate_fetch_follows_no_redirect_and_is_capped_in_size_and_time() -> None:
    signer = EventSigner()
    body = event_body()
    routes: dict[str, Route] = {
        "/eventbridge/moved.pem": (302, b"", {"Location": "/eventbridge/cert.pem"}),
        "/eventbridge/huge.pem": (200, signer.certificate_pem * 40, {}),
        "/eventbridge/junk.pem": (200, b"-----BEGIN CERTIFICATE-----\nno\n", {}),
        "/eventbridge/down.pem": (503, b"", {}),
    }
    pattern = r"http://127\.0\.0\.1:\d+/eventbridge/\w+\.pem"
    async with certificate_host(signer.certificate_pem, routes=routes) as host:
        verifier = Verifier(certificate_urls=pattern, certificate_max_bytes=16 * 1024)
        for name, reason, status in [
            ("moved", "certificate", 403),
            ("huge", "certificate", 403),
            ("junk", "certificate", 403),
            ("down", "certificate-unavailable", 503),
        ]:
            url = f"{host.origin}/eventbridge/{name}.pem"
            headers = signer.headers(TARGET, body, cert_url=url)
            with pytest.raises(NotificationRefusedError) as refused:
                await verifier.verify(TARGET, headers, body)
            assert (refused.value.reason, refused.value.http_status) == (reason, status), name
        assert "/eventbridge/cert.pem" not in host.hits  # the redirect was not followed
    async with certificate_host(signer.certificate_pem, delay=2.0) as slow:
        verifier = Verifier(certificate_urls=LOOPBACK, certificate_timeout=0.3)
        headers = signer.headers(TARGET, body, cert_url=slow.cert_url)
        started = time.monotonic()
        with pytest.raises(NotificationRefusedError) as refused:
            await verifier.verify(TARGET, headers, body)
        assert (refused.value.reason, refused.value.http_status) == ("certificate-unavailable", 503)
        assert time.monotonic() - started < 1.5


async def test_a_given_session_fetches_the_certificate_and_is_left_open() -> None:
    signer = EventSigner()
    body = event_body()
    async with certificate_host(signer.certificate_pem) as host, aiohttp.ClientSession() as session:
        verifier = Verifier(certificate_urls=LOOPBACK, session=session)
        await verifier.verify(TARGET, signer.headers(TARGET, body, cert_url=host.cert_url), body)
        assert not session.closed
        assert host.hits == {"/eventbridge/cert.pem": 1}


def test_an_empty_token_is_refused_when_the_verifier_is_made() -> None:
    with pytest.raises(ValidationError):
        Verifier(token="")


async def test_a_certificate_in_der_form_verifies_too() -> None:
    signer = EventSigner()
    der = x509.load_pem_x509_certificate(signer.certificate_pem).public_bytes(
        serialization.Encoding.DER
    )
    body = event_body()
    async with certificate_host(der) as host:
        verifier = Verifier(certificate_urls=LOOPBACK)
        await verifier.verify(TARGET, signer.headers(TARGET, body, cert_url=host.cert_url), body)


async def test_a_kept_certificate_is_bounded_in_number() -> None:
    signer = EventSigner()
    async with certificate_host(signer.certificate_pem) as host:
        cache = CertificateCache(size=2)
        for query in range(4):
            await cache.public_key(f"{host.cert_url}?n={query}")
        await cache.public_key(f"{host.cert_url}?n=0")
        assert cache.fetches == 5  # the first was let go to keep two


async def test_the_insecure_verifier_checks_nothing_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    verifier = Verifier.insecure_for_tests()
    assert verifier.insecure
    assert not Verifier().insecure
    assert "OFF" in caplog.text
    assert "insecure" in repr(verifier)
    await verifier.verify(TARGET, {}, b"anything")

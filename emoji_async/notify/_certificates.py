"""The certificates EventBridge signs with: which URLs are trusted, fetched with caps, kept a while.

The one module of the package that uses ``cryptography`` (the ``notify``
extra): reading a certificate and checking an RSA-SHA256 signature with it.

A delivery names its certificate's URL (``x-eventbridge-signature-url``), so
the URL is the trust anchor: only the official host pattern over https
(``https://<region>-eventbridge.oss-accelerate.aliyuncs.com/...``) is fetched,
unless a test says otherwise with an explicit pattern. The certificate is
self-standing (no chain is checked, nor its dates: the provider's page asks
for neither, and an expired official certificate would stop every delivery).

A fetch is capped in size and time, follows no redirect (a redirect would
lead off the trusted host), and its result is kept by URL in a small cache:
a certificate for an hour, a failure for a few seconds only (so a passing
outage does not refuse deliveries for long, and a flood of forged URLs on
the official host does not fetch one each time). Concurrent deliveries
naming the same URL share one fetch.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from .._notice_errors import NotificationRefusedError

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
except ImportError as exc:  # pragma: no cover - the extra is part of the test set-up
    raise ImportError(
        "verifying notifications needs cryptography: pip install 'emoji-async[notify]'"
    ) from exc

__all__ = [
    "OFFICIAL_CERTIFICATE_URLS",
    "CertificateCache",
    "check_certificate_url",
    "public_key_of",
    "signature_matches",
]

#: The official certificate host pattern, over https: a region (``cn-beijing``,
#: ``ap-southeast-1``), ``-eventbridge.oss-accelerate.aliyuncs.com``, then a plain path.
#: The whole URL must match, so ``...aliyuncs.com.evil.example/`` or ``...aliyuncs.com@evil``
#: do not.
OFFICIAL_CERTIFICATE_URLS = re.compile(
    r"https://[a-z]{2,}(?:-[a-z0-9]+)+-eventbridge\.oss-accelerate\.aliyuncs\.com"
    r"/[A-Za-z0-9._~%+/-]+"
)
#: The longest certificate URL considered.
_MAX_URL = 512


def check_certificate_url(url: str, trusted: re.Pattern[str]) -> None:
    """Refuse ``url`` unless ``trusted`` matches all of it and it is a plain URL.

    Plain: printable ASCII, no user name or password, no fragment, http(s). The
    pattern decides the rest; these checks hold even a loose test pattern to
    URLs that mean what they say.
    """
    refused = NotificationRefusedError(
        "the certificate URL is not one this receiver trusts", reason="certificate-url"
    )
    if len(url) > _MAX_URL or not url.isascii() or not url.isprintable() or " " in url:
        raise refused
    if trusted.fullmatch(url) is None:
        raise refused
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise refused from None
    if (
        parts.scheme not in ("http", "https")
        or parts.username is not None
        or parts.password is not None
        or "@" in parts.netloc
        or "\\" in url
        or parts.fragment
        or not parts.hostname
        or not port_ok
    ):
        raise refused


def public_key_of(data: bytes) -> rsa.RSAPublicKey:
    """The RSA public key of an X.509 certificate in PEM or DER; refused if it is not one."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            certificate = x509.load_pem_x509_certificate(data)
        else:
            certificate = x509.load_der_x509_certificate(data)
        key = certificate.public_key()
    except ValueError:
        raise NotificationRefusedError(
            "the certificate URL did not serve an X.509 certificate", reason="certificate"
        ) from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise NotificationRefusedError(
            "the certificate's key is not an RSA key of 2048 bits or more", reason="certificate"
        )
    return key


def signature_matches(key: rsa.RSAPublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``key``'s RSA-SHA256 (PKCS #1 v1.5) signature of ``message``."""
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


class CertificateCache:
    """Public keys by certificate URL: fetched once with caps, kept ``ttl`` seconds.

    ``session``: an aiohttp session to fetch with (never closed here); without
    one, each fetch opens and closes its own small session. Fetches are rare
    (one per certificate an hour), and a receiver mounted in another
    framework's app has no shutdown hook to close a long-lived one with.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 3.0,
        max_bytes: int = 64 * 1024,
        ttl: float = 3600.0,
        failure_ttl: float = 5.0,
        size: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.size = size
        self._clock = clock
        self._kept: OrderedDict[str, tuple[float, rsa.RSAPublicKey | NotificationRefusedError]]
        self._kept = OrderedDict()
        self._fetching: dict[str, asyncio.Task[rsa.RSAPublicKey]] = {}
        #: How many fetches were started (a test's way to see the cache at work).
        self.fetches = 0

    async def public_key(self, url: str) -> rsa.RSAPublicKey:
        """The key of the certificate at ``url`` (a URL already checked against the pattern)."""
        now = self._clock()
        kept = self._kept.get(url)
        if kept is not None and kept[0] > now:
            self._kept.move_to_end(url)
            if isinstance(kept[1], NotificationRefusedError):
                raise _again(kept[1])
            return kept[1]
        task = self._fetching.get(url)
        if task is None:
            self.fetches += 1
            task = asyncio.ensure_future(self._fetch_and_keep(url))
            self._fetching[url] = task
            task.add_done_callback(lambda done: self._fetched(url, done))
        # Shielded: a delivery that gives up waiting (its deadline) leaves the fetch to
        # finish and fill the cache for the retry, instead of cancelling it for everyone.
        try:
            return await asyncio.shield(task)
        except NotificationRefusedError as refusal:
            raise _again(refusal) from None

    def _fetched(self, url: str, task: asyncio.Task[rsa.RSAPublicKey]) -> None:
        self._fetching.pop(url, None)
        if not task.cancelled():
            task.exception()  # retrieved, should every delivery waiting for it have given up

    async def _fetch_and_keep(self, url: str) -> rsa.RSAPublicKey:
        try:
            key = public_key_of(await self._fetch(url))
        except NotificationRefusedError as refusal:
            self._keep(url, refusal, self.failure_ttl)
            raise
        self._keep(url, key, self.ttl)
        return key

    def _keep(
        self, url: str, value: rsa.RSAPublicKey | NotificationRefusedError, ttl: float
    ) -> None:
        self._kept[url] = (self._clock() + ttl, value)
        self._kept.move_to_end(url)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)

    async def _fetch(self, url: str) -> bytes:
        try:
            async with asyncio.timeout(self.timeout):
                if self._session is not None:
                    return await self._get(self._session, url)
                connector = aiohttp.TCPConnector(limit=2)
                async with aiohttp.ClientSession(connector=connector) as session:
                    return await self._get(session, url)
        except TimeoutError:
            message = f"the certificate did not arrive within {self.timeout:g} s"
            raise _unavailable(message) from None
        except aiohttp.ClientError as exc:
            message = f"the certificate could not be fetched ({type(exc).__name__})"
            raise _unavailable(message) from None

    async def _get(self, session: aiohttp.ClientSession, url: str) -> bytes:
        limit = aiohttp.ClientTimeout(total=self.timeout)
        async with session.get(url, allow_redirects=False, timeout=limit) as response:
            if response.status != 200:
                message = f"the certificate URL answered HTTP {response.status}"
                if response.status >= 500 or response.status == 429:
                    raise _unavailable(message)
                raise NotificationRefusedError(message, reason="certificate")
            data = bytearray()
            async for chunk in response.content.iter_chunked(8192):
                data += chunk
                if len(data) > self.max_bytes:
                    raise NotificationRefusedError(
                        f"the certificate is over {self.max_bytes} bytes", reason="certificate"
                    )
            return bytes(data)


def _unavailable(message: str) -> NotificationRefusedError:
    """A certificate that could not be had for now: 503, so that the sender retries later."""
    return NotificationRefusedError(message, reason="certificate-unavailable", http_status=503)


def _again(refusal: NotificationRefusedError) -> NotificationRefusedError:
    """A fresh copy of a kept refusal (one exception object is never raised twice)."""
    return NotificationRefusedError(
        refusal.message, reason=refusal.reason, http_status=refusal.http_status
    )

"""Whether a delivery comes from EventBridge: signature V2, checked by default.

The checks, cheapest first, each a :class:`NotificationRefusedError` with its
reason: a V2 signature is there (``unsigned``; ``legacy-signature`` for V1
alone), the signature headers are whole (``headers``), the time stamp is
within 60 s of now either way (``timestamp``), the static token matches when
one is configured (``token``, compared in constant time), the certificate URL
is a trusted one (``certificate-url``), its certificate can be had
(``certificate``; ``certificate-unavailable`` for a passing failure, 503),
and the RSA-SHA256 signature matches one of the readings of the
string-to-sign (``signature``, :data:`SIGN_FORMS`).

The legacy V1 scheme is refused, not checked: its HMAC secret travels
"encrypted" with EventBridge's private key, which anyone holding the public
certificate can undo, so one delivery seen is enough to sign any body with
that secret. V1 proves nothing a receiver could rely on; an HTTP target sends
V2 when it is set so.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from .._errors import ValidationError
from .._notice_errors import NotificationRefusedError
from .._notice_signing import (
    CERT_URL,
    HASH_METHOD,
    SIGN_FORMS,
    SIGNATURE,
    SIGNATURE_V1,
    TIMESTAMP,
    TOKEN,
    string_to_sign,
)
from ._certificates import (
    OFFICIAL_CERTIFICATE_URLS,
    CertificateCache,
    check_certificate_url,
    signature_matches,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = ["Verifier", "header_map"]

log = logging.getLogger("emoji_async")

#: The header names' common prefix: a repeated one makes the signature ambiguous.
_PREFIX = "x-eventbridge-"
#: The hash method words that mean SHA-256.
_SHA256 = frozenset({"sha256", "sha-256", "rsa-sha256", "sha256withrsa"})


def header_map(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers by lower-case name; refused when an EventBridge header comes twice."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    for name, value in pairs:
        lower = name.lower()
        if lower in found and lower.startswith(_PREFIX):
            raise NotificationRefusedError(f"the header {lower} comes twice", reason="headers")
        found.setdefault(lower, value)
    return found


class Verifier:
    """Checks EventBridge's signature V2 on a delivery; refuses with NotificationRefusedError.

    ``token``: the static token configured on the EventBridge target; when set,
    a delivery must carry it (it is never shown, in a ``repr``, a log line or a
    message). ``certificate_urls``: the pattern a certificate URL must match
    whole (default :data:`OFFICIAL_CERTIFICATE_URLS`, the official host over
    https); a test passes its loopback certificate URL's pattern. ``max_skew``:
    seconds a time stamp may be off either way. ``session``: an aiohttp session
    to fetch certificates with (default: a small one per fetch).
    ``certificate_timeout`` and ``certificate_max_bytes`` cap a fetch. ``clock``
    is the wall clock time stamps are compared with.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        certificate_urls: str | re.Pattern[str] = OFFICIAL_CERTIFICATE_URLS,
        max_skew: float = 60.0,
        session: aiohttp.ClientSession | None = None,
        certificate_timeout: float = 3.0,
        certificate_max_bytes: int = 64 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if token is not None and not token:
            raise ValidationError("token", "the target's token, or None for none", "")
        self._token = None if token is None else token.encode()
        self.certificate_urls = (
            re.compile(certificate_urls) if isinstance(certificate_urls, str) else certificate_urls
        )
        self.max_skew = max_skew
        self.certificates = CertificateCache(
            session=session, timeout=certificate_timeout, max_bytes=certificate_max_bytes
        )
        self._clock = clock
        self._insecure = False

    @classmethod
    def insecure_for_tests(cls) -> Verifier:
        """A verifier that checks nothing: every delivery passes. For tests only, never deployed.

        It says so at warning level when made, and in its ``repr``.
        """
        verifier = cls()
        verifier._insecure = True
        log.warning("notifications: signature verification is OFF (Verifier.insecure_for_tests)")
        return verifier

    @property
    def insecure(self) -> bool:
        """Whether this verifier checks nothing (:meth:`insecure_for_tests`)."""
        return self._insecure

    def __repr__(self) -> str:
        if self._insecure:
            return "Verifier.insecure_for_tests()"
        token = "<set>" if self._token is not None else None
        return (
            f"Verifier(certificate_urls={self.certificate_urls.pattern!r},"
            f" token={token}, max_skew={self.max_skew:g})"
        )

    async def verify(
        self, url: str, headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes
    ) -> None:
        """Return if the delivery of ``body`` to ``url`` is EventBridge's; refuse it otherwise.

        ``url`` is the URL EventBridge posted to (the target's URL, query
        included): it is part of what is signed.
        """
        if self._insecure:
            return
        signed = header_map(headers)
        signature = signed.get(SIGNATURE)
        if signature is None:
            if SIGNATURE_V1 in signed:
                raise NotificationRefusedError(
                    "only the legacy signature V1 came, which cannot prove its sender;"
                    " set the target to signature V2",
                    reason="legacy-signature",
                    http_status=401,
                )
            raise NotificationRefusedError(
                "the delivery is not signed", reason="unsigned", http_status=401
            )
        self._check_time(signed.get(TIMESTAMP))
        method = signed.get(HASH_METHOD)
        if method is not None and method.strip().lower() not in _SHA256:
            raise NotificationRefusedError("the hash method is not SHA-256", reason="headers")
        self._check_token(signed.get(TOKEN))
        cert_url = signed.get(CERT_URL)
        if cert_url is None:
            raise NotificationRefusedError(
                "the certificate URL header is missing", reason="headers", http_status=401
            )
        check_certificate_url(cert_url, self.certificate_urls)
        try:
            raw = base64.b64decode(signature.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise NotificationRefusedError(
                "the signature is not Base64", reason="signature"
            ) from None
        key = await self.certificates.public_key(cert_url)
        if len(raw) != (key.key_size + 7) // 8:
            raise NotificationRefusedError("the signature does not match", reason="signature")
        tried: set[bytes] = set()
        for form in SIGN_FORMS:
            message = string_to_sign(form, url, signed, body)
            if message in tried:  # without a token, two readings sign the same bytes
                continue
            tried.add(message)
            if signature_matches(key, raw, message):
                return
        raise NotificationRefusedError("the signature does not match", reason="signature")

    def _check_time(self, stamp: str | None) -> None:
        if stamp is None:
            raise NotificationRefusedError(
                "the time stamp header is missing", reason="headers", http_status=401
            )
        text = stamp.strip()
        if not text.isdigit() or len(text) > 13:
            raise NotificationRefusedError("the time stamp is not a number", reason="headers")
        seconds = int(text)
        if len(text) > 11:  # milliseconds: no time in seconds near now has 12 digits
            seconds //= 1000
        if abs(self._clock() - seconds) > self.max_skew:
            raise NotificationRefusedError(
                f"the time stamp is more than {self.max_skew:g} s from now", reason="timestamp"
            )

    def _check_token(self, given: str | None) -> None:
        if self._token is None:
            return
        if given is None:
            raise NotificationRefusedError("the token header is missing", reason="token")
        if not hmac.compare_digest(given.encode(), self._token):
            raise NotificationRefusedError("the token does not match", reason="token")

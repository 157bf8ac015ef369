"""The simulated EventBridge's signing key and certificate.

A fresh 2048-bit RSA key per simulator and a self-signed certificate for it,
served by the simulator on loopback (never at the official certificate host:
a receiver trusts it only when a test says so). :meth:`EventSigner.headers`
signs a delivery the way EventBridge does (signature V2), in the
:class:`~emoji_async._notice_signing.SignForm` it is given.
"""

from __future__ import annotations

import base64
import datetime as dt
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from .._notice_signing import (
    CERT_URL,
    HASH_METHOD,
    SIGN_FORMS,
    SIGNATURE,
    TIMESTAMP,
    TOKEN,
    VERSION,
    SignForm,
    string_to_sign,
)

__all__ = ["EventSigner"]


class EventSigner:
    """Signs deliveries with its own key; ``certificate_pem`` is what its certificate URL serves."""

    def __init__(self, *, form: SignForm = SIGN_FORMS[0]) -> None:
        self.form = form
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "simulated eventbridge")])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self._key, hashes.SHA256())
        )
        self.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)

    def __repr__(self) -> str:
        return f"EventSigner(form={self.form})"

    def headers(
        self,
        url: str,
        body: bytes,
        *,
        cert_url: str,
        token: str | None = None,
        now: float | None = None,
        form: SignForm | None = None,
    ) -> dict[str, str]:
        """The signature headers of a delivery of ``body`` to ``url``, signed at ``now``."""
        headers = {
            TIMESTAMP: str(int(time.time() if now is None else now)),
            VERSION: "v2",
            HASH_METHOD: "SHA256",
            CERT_URL: cert_url,
        }
        if token is not None:
            headers[TOKEN] = token
        signed = string_to_sign(form or self.form, url, headers, body)
        signature = self._key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        headers[SIGNATURE] = base64.b64encode(signature).decode()
        return headers

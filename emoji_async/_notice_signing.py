"""EventBridge's signature V2 headers, and the strings it may sign.

EventBridge signs each HTTP delivery: ``x-eventbridge-signature-v2`` is
Base64(RSA-SHA256) over a string-to-sign made of the target URL, the signature
headers as ``name: value`` lines, and the body; the public certificate is at
the URL in ``x-eventbridge-signature-url``. The provider's prose and its Java
sample disagree on two points (a newline after the body; whether the optional
token header is one of the lines), and neither spells out the lines' order
beyond a list. Each reading is a :class:`SignForm`; a verifier accepts a
signature that matches any of :data:`SIGN_FORMS` (all of them made with the
official key, so none is weaker than another), and the simulator signs with
the one it is told to, so the client is tested under every reading.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = [
    "CERT_URL",
    "HASH_METHOD",
    "SIGNATURE",
    "SIGNATURE_V1",
    "SIGN_FORMS",
    "TIMESTAMP",
    "TOKEN",
    "VERSION",
    "SignForm",
    "string_to_sign",
]

TIMESTAMP = "x-eventbridge-signature-timestamp"
VERSION = "x-eventbridge-signature-version"
HASH_METHOD = "x-eventbridge-hash-method"
CERT_URL = "x-eventbridge-signature-url"
TOKEN = "x-eventbridge-signature-token"  # noqa: S105  (a header name, not a token)
SIGNATURE = "x-eventbridge-signature-v2"
#: The legacy V1 scheme's header (HMAC-SHA1 with a secret sent RSA-encrypted).
SIGNATURE_V1 = "x-eventbridge-signature"

#: The signature headers in the order the provider's page lists them.
_LISTED = (TIMESTAMP, VERSION, HASH_METHOD, CERT_URL, TOKEN)


@attrs.frozen
class SignForm:
    """One reading of the string-to-sign.

    ``sorted_lines``: the header lines sorted by name (else in the order the
    page lists them); ``token_line``: the token header is a line when the
    delivery carries one; ``trailing_newline``: a newline follows the body.
    """

    sorted_lines: bool = False
    token_line: bool = True
    trailing_newline: bool = False

    def __str__(self) -> str:
        return (
            f"{'sorted' if self.sorted_lines else 'listed'} lines,"
            f" token {'signed' if self.token_line else 'unsigned'},"
            f" {'a newline' if self.trailing_newline else 'nothing'} after the body"
        )


#: Every reading a verifier accepts (the first is the simulator's default).
SIGN_FORMS = tuple(
    SignForm(sorted_lines=s, token_line=t, trailing_newline=n)
    for s in (False, True)
    for t in (True, False)
    for n in (False, True)
)


def string_to_sign(form: SignForm, url: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """The bytes ``form`` signs for a delivery to ``url`` with ``headers`` (names in lower case)."""
    names = [name for name in _LISTED if name in headers and (name != TOKEN or form.token_line)]
    if form.sorted_lines:
        names.sort()
    lines = "\n".join(f"{name}: {headers[name]}" for name in names)
    signed = url.encode() + b"\n" + lines.encode() + b"\n" + body
    return signed + b"\n" if form.trailing_newline else signed

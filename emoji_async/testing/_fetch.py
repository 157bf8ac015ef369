"""Downloading ``image_url`` as the provider does, but only from loopback.

The provider fetches every ``image_url`` it is given. The simulator fetches
only those whose host is a loopback address (``127.0.0.0/8``, ``::1``) or
``localhost``: images served by the simulator itself (the sample portraits)
or by a test's own server. Any other host is never contacted, and its URL keeps
standing for an imagined image (boxes from the URL's digest, the cartoon
video), so the simulator never reaches the internet.

A fetch that fails answers what the provider answers (the messages are
inferred): connection refused -> 400 ``InvalidURL.ConnectionRefused``; no
answer within the fetch timeout -> 400 ``InvalidURL.Timeout``; any status but
200 (redirects are not followed), or a connection that breaks -> 400
``InvalidURL``. At most ``MAX_IMAGE_BYTES`` + 1 bytes are read: a larger image
is only measured, to be refused as too large.

This module is the simulator's only aiohttp *client*: one session, opened when
the application starts and closed when it stops, with no keep-alive so no
connection outlives a request.
"""

from __future__ import annotations

import errno
import ipaddress
from urllib.parse import urlsplit

import aiohttp
import attrs

from ._images import MAX_IMAGE_BYTES
from ._wire import ServiceError

__all__ = ["Fetched", "ImageFetcher", "is_loopback"]

_CHUNK = 64 * 1024


def is_loopback(url: str) -> bool:
    """Whether ``url`` is an http(s) URL whose host is a loopback address or ``localhost``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not host:
        return False
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: never resolved, never fetched
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@attrs.frozen
class Fetched:
    """What a loopback URL served: its bytes, or only its size when over the limit."""

    data: bytes | None = attrs.field(repr=lambda data: "None" if data is None else f"<{len(data)}>")
    size: int


def _where(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


class ImageFetcher:
    """Fetches loopback images with one session, opened by ``start`` and closed by ``aclose``."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the session (inside the running loop, when the application starts)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True, limit=16),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                trust_env=False,  # never through a proxy: loopback means this machine
            )

    async def aclose(self) -> None:
        """Close the session, if open."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def fetch(self, url: str) -> Fetched:
        """Download ``url`` (a loopback URL) or raise the provider's ``ServiceError``."""
        if not is_loopback(url):  # pragma: no cover - callers check first; this is the guard
            raise ValueError(f"refusing to fetch a non-loopback URL: {url}")
        if self._session is None:
            raise RuntimeError("the image fetcher is not started: serve the simulator's app")
        where = _where(url)
        try:
            # Loopback https is a test server with a self-signed certificate: not verified.
            async with self._session.get(url, allow_redirects=False, ssl=False) as response:
                if response.status != 200:
                    raise ServiceError(
                        400,
                        "InvalidURL",
                        f"Failed to download the input file from {where}: "
                        f"the server answered HTTP {response.status}.",
                    )
                declared = response.content_length
                if declared is not None and declared > MAX_IMAGE_BYTES:
                    return Fetched(None, declared)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(_CHUNK):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_IMAGE_BYTES:
                        return Fetched(None, size)
                return Fetched(b"".join(chunks), size)
        except TimeoutError:
            raise ServiceError(
                400,
                "InvalidURL.Timeout",
                f"Failed to download the input file from {where}: "
                f"no answer within {self.timeout:g} seconds.",
            ) from None
        except aiohttp.ClientConnectorError as exc:
            if exc.os_error.errno == errno.ECONNREFUSED:
                raise ServiceError(
                    400,
                    "InvalidURL.ConnectionRefused",
                    f"Failed to download the input file: the connection to {where} was refused.",
                ) from None
            raise ServiceError(
                400, "InvalidURL", f"Failed to download the input file: cannot connect to {where}."
            ) from None
        except aiohttp.InvalidURL:  # a port out of range, say
            raise ServiceError(
                400,
                "InvalidURL",
                "The provided URL does not appear to be valid. Ensure it is correctly formatted.",
            ) from None
        except (aiohttp.ClientError, OSError):
            raise ServiceError(
                400,
                "InvalidURL",
                f"Failed to download the input file from {where}: the connection broke.",
            ) from None

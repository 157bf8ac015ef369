"""URLs in one place: how each kind is read, and shown without what it may carry.

A URL the client is given or told may carry a credential: a base URL passed
where the key belongs (or holding it in its path, query or user part), a Redis
URL's password, a signed URL's query. Whatever repeats a URL in a message, a
``repr`` or a log line goes through one of these helpers, each keeping only
the parts it names. Each also reads a malformed URL (a broken IPv6 host, a
port that is no number) without raising, where ``urllib.parse`` would.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

__all__ = [
    "check_http_url",
    "http_hostname",
    "is_redis_url",
    "origin",
    "path_segment",
    "redis_origin",
    "shown_base_url",
    "shown_image",
    "url_password",
    "url_path",
]


def origin(url: object) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL not yet checked; ``None`` if it is not one.

    A value not yet checked may be the API key itself (``EmojiClient(base_url,
    api_key)``) or a URL carrying it in its path, query or credentials: none of
    those parts is shown.
    """
    if not isinstance(url, str):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a malformed IPv6 host or port
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + ("" if port is None else f":{port}")


def shown_base_url(parts: urllib.parse.SplitResult) -> str:
    """A base URL as an error may show it: never its query, credentials, or a bare word.

    A value that is not a URL at all may be the API key given in the wrong
    place (``EmojiClient(base_url, api_key)``), so it is not repeated.
    """
    if not parts.scheme or not parts.netloc:
        return "a value that is not a URL (not shown: it may be a key)"
    host = parts.netloc.rpartition("@")[2]
    return repr(f"{parts.scheme}://{host}{parts.path}")


def shown_image(text: str) -> str:
    """How messages name an image: a file by its name, a URL without its query.

    An http(s) or ``oss://`` URL is shown up to its query, without a user
    part (at most 200 characters); anything else is a file, named by its last
    part. A malformed URL, and a value with no last part, is shown cut to 80
    characters.
    """
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:
        return text[:80]
    if parts.scheme in ("http", "https", "oss"):
        # A signed URL's query is a credential, and so is a user part
        # (``user:password@``): neither goes into a message or a log line.
        host = parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))[:200]
    return Path(text).name or text[:80]


def url_path(text: str) -> str:
    """The path of a URL (all of a plain file path); ``""`` if the URL is malformed."""
    try:
        return urllib.parse.urlsplit(text).path
    except ValueError:  # a malformed IPv6 host
        return ""


def http_hostname(url: str) -> str | None:
    """The host of an http(s) URL; ``None`` if it is another scheme or has none.

    :class:`ValueError` if the host or the port is malformed.
    """
    parts = urllib.parse.urlsplit(url)
    hostname, _ = parts.hostname, parts.port
    if parts.scheme not in ("http", "https") or not hostname:
        return None
    return hostname


def check_http_url(value: str, name: str) -> None:
    """:class:`ValueError` naming ``name`` unless ``value`` is an http(s) URL with a host."""
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError as exc:
        raise ValueError(f"{name} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} is not an http(s) URL with a host")


def is_redis_url(value: str) -> bool:
    """Whether ``value`` is a ``redis://`` or ``rediss://`` URL with a host, or ``unix://``."""
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        return False
    return parts.scheme in ("redis", "rediss", "unix") and (
        parts.scheme == "unix" or bool(parts.hostname)
    )


def redis_origin(url: object) -> str:
    """``scheme://host[:port][/db]`` of a Redis URL: never its password, user or options."""
    if not isinstance(url, str):
        return "(not a URL)"
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "(a malformed URL)"
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    if parts.scheme not in ("redis", "rediss") or not host:
        return "(not a Redis URL)"
    if ":" in host:
        host = f"[{host}]"
    db = parts.path if re.fullmatch(r"/\d{1,5}", parts.path) else ""
    return f"{parts.scheme}://{host}" + ("" if port is None else f":{port}") + db


def url_password(url: str) -> str | None:
    """The password a URL carries, to take out of a text; ``None`` if none, or malformed."""
    try:
        return urllib.parse.urlsplit(url).password
    except ValueError:
        return None


def path_segment(value: str) -> str:
    """``value`` escaped as one segment of a path: a ``/``, ``?`` or ``#`` in it cannot end it."""
    return urllib.parse.quote(value, safe="")

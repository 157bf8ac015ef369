"""Where the client connects and with which key: arguments first, then the environment."""

from __future__ import annotations

import ipaddress
import os
import urllib.parse

from ._errors import ConfigurationError
from ._urls import shown_base_url
from ._values import Secret

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "resolve_api_key",
    "resolve_base_url",
]

#: The Beijing host: the only region that serves Emoji.
DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com/api/v1"
ENV_API_KEY = "DASHSCOPE_API_KEY"
ENV_BASE_URL = "DASHSCOPE_BASE_URL"


def resolve_api_key(api_key: str | Secret | None) -> Secret:
    """The key given, else ``DASHSCOPE_API_KEY``; a clear error when neither is set."""
    if isinstance(api_key, Secret):
        api_key = api_key.reveal()
    key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
    if key is None or not key.strip():
        raise ConfigurationError(f"no API key: pass api_key= to EmojiClient or set {ENV_API_KEY}")
    if any(ch.isspace() for ch in key.strip()) or not key.isprintable():
        raise ConfigurationError("the API key holds white space or unprintable characters")
    return Secret(key.strip())


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_base_url(
    base_url: str | None,
    *,
    allow_insecure_http: bool = False,
    opt_in: str = "pass allow_insecure_http=True",
) -> str:
    """The base URL given, else ``DASHSCOPE_BASE_URL``, else the Beijing host.

    Any path prefix is kept (gateways mount the API under ``/qwen/api/v1``).
    Plain ``http://`` would send the key in the clear, so it is refused unless
    the host is loopback (a local simulator) or ``allow_insecure_http`` is set.
    ``opt_in`` is how the refusal tells the caller to set it: a command line
    names its own option, not the library's argument.
    """
    url = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    try:
        parts = urllib.parse.urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # a malformed IPv6 host
        raise ConfigurationError(
            "base_url must be an http(s) URL with a host, got a malformed one"
        ) from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise ConfigurationError(
            f"base_url must be an http(s) URL with a host, got {shown_base_url(parts)}"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"base_url must not carry a query or fragment (one follows {shown_base_url(parts)})"
        )
    if parts.username or parts.password:
        raise ConfigurationError("base_url must not carry credentials")
    if parts.scheme == "http" and not (_is_loopback(hostname) or allow_insecure_http):
        raise ConfigurationError(
            f"refusing plain http:// to {hostname}: the API key would travel unencrypted "
            f"(use https://, or {opt_in})"
        )
    return url.rstrip("/")

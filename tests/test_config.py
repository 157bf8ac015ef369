"""The client resolves its key and URL when it opens, and never shows the key."""

from __future__ import annotations

import pytest

from emoji_async import ClientStateError, ConfigurationError, EmojiClient
from emoji_async._config import DEFAULT_BASE_URL, resolve_api_key, resolve_base_url
from emoji_async._values import Secret

KEY = "sk-0123456789abcdef-secret"


async def test_a_missing_key_fails_when_the_client_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    client = EmojiClient(base_url="http://127.0.0.1:9/api/v1")
    with pytest.raises(ConfigurationError, match="DASHSCOPE_API_KEY"):
        await client.__aenter__()


def test_the_key_and_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.setenv("DASHSCOPE_BASE_URL", "https://gw.example.com/qwen/api/v1/")
    assert resolve_api_key(None) == Secret(KEY)
    assert resolve_base_url(None) == "https://gw.example.com/qwen/api/v1"
    monkeypatch.delenv("DASHSCOPE_BASE_URL")
    assert resolve_base_url(None) == DEFAULT_BASE_URL
    assert resolve_api_key("sk-given") == Secret("sk-given")


@pytest.mark.parametrize(
    "url", ["dashscope.aliyuncs.com", "ftp://x/api", "https://x/api?a=1", "https://u:p@x/api"]
)
def test_a_malformed_base_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        resolve_base_url(url)


def test_plain_http_is_refused_unless_loopback_or_opted_in() -> None:
    with pytest.raises(ConfigurationError, match="unencrypted"):
        resolve_base_url("http://gw.example.com/api/v1")
    assert resolve_base_url("http://gw.example.com/api/v1", allow_insecure_http=True)
    assert resolve_base_url("http://127.0.0.1:8000/api/v1")
    assert resolve_base_url("http://localhost:8000/api/v1")
    assert resolve_base_url("http://[::1]:8000/api/v1")


async def test_the_key_shows_in_no_repr_or_str() -> None:
    client = EmojiClient(api_key=KEY, base_url="http://127.0.0.1:9/api/v1")
    async with client:
        shown = " ".join(
            [repr(client), str(client), repr(vars(client)), repr(client._life.service.transport)]
        )
    assert KEY not in shown
    assert KEY not in repr(Secret(KEY))
    assert KEY not in str(Secret(KEY))


async def test_a_client_outside_async_with_says_so() -> None:
    client = EmojiClient(api_key=KEY, base_url="http://127.0.0.1:9/api/v1")
    with pytest.raises(ClientStateError, match="async with"):
        await client.detect("https://example.com/a.png")
    with pytest.raises(ClientStateError, match="async with"):
        client.task("t")


async def test_a_closed_client_cannot_be_used_or_reopened() -> None:
    client = EmojiClient(api_key=KEY, base_url="http://127.0.0.1:9/api/v1")
    async with client:
        pass
    with pytest.raises(ClientStateError, match="closed"):
        await client.detect("https://example.com/a.png")
    with pytest.raises(ClientStateError, match="cannot be reopened"):
        await client.__aenter__()
    await client.aclose()  # closing twice is harmless


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("", "no API key"),
        ("   ", "no API key"),
        ("sk bad", "white space"),
        ("sk-\x00", "unprintable"),
    ],
)
async def test_an_empty_or_malformed_key_fails_at_open_without_echoing_it(
    key: str, says: str
) -> None:
    client = EmojiClient(api_key=key, base_url="http://127.0.0.1:9/api/v1")
    with pytest.raises(ConfigurationError, match=says) as caught:
        await client.__aenter__()
    assert "sk" not in str(caught.value)

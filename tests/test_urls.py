"""The URL helpers show a URL without its credentials, and read a malformed one without raising."""

from __future__ import annotations

import urllib.parse

import pytest

from emoji_async._urls import (
    check_http_url,
    http_hostname,
    is_redis_url,
    origin,
    path_segment,
    redis_origin,
    shown_base_url,
    shown_image,
    url_password,
    url_path,
)


def test_origin_keeps_scheme_host_and_port_only() -> None:
    assert (
        origin("https://user:sk-secret@h.example:8443/api/v1?key=sk-x") == "https://h.example:8443"
    )
    assert origin("http://[::1]:80/x") == "http://[::1]:80"
    for not_one in ("sk-0123456789abcdef", "http://[::1", "ftp://h", None, 7):
        assert origin(not_one) is None


def test_a_base_url_is_shown_without_its_query_or_credentials_and_a_bare_word_not_at_all() -> None:
    shown = shown_base_url(urllib.parse.urlsplit("https://u:pw@h.example/api?key=k"))
    assert shown == repr("https://h.example/api")
    bare = shown_base_url(urllib.parse.urlsplit("sk-0123456789abcdef"))
    assert "sk-" not in bare


def test_a_redis_url_is_shown_without_password_user_or_options() -> None:
    assert redis_origin("redis://u:pw@r.example:6380/2?ssl=1") == "redis://r.example:6380/2"
    assert redis_origin("redis://:pw@[::1]:6379") == "redis://[::1]:6379"
    assert redis_origin("unix:///run/redis.sock") == "unix:///run/redis.sock"
    assert redis_origin("redis://h:port") == "(a malformed URL)"
    assert redis_origin("http://h") == "(not a Redis URL)"
    assert redis_origin(None) == "(not a URL)"
    assert url_password("redis://u:pw@h") == "pw"
    assert url_password("redis://[::1") is None


def test_which_urls_each_check_accepts() -> None:
    assert is_redis_url("rediss://h:6380/0")
    assert is_redis_url("unix:///tmp/r.sock")
    assert not is_redis_url("redis://h:port")
    assert not is_redis_url("redis:///0")
    assert http_hostname("https://up.example:443/") == "up.example"
    assert http_hostname("oss://bucket/key") is None
    with pytest.raises(ValueError, match="port"):
        http_hostname("https://up.example:port/")
    check_http_url("https://v.example/a.mp4", "video_url")
    with pytest.raises(ValueError, match="video_url is not an http"):
        check_http_url("file:///etc/passwd", "video_url")


def test_a_path_segment_keeps_slashes_queries_and_fragments_inside_it() -> None:
    assert path_segment("a/b?c#d") == "a%2Fb%3Fc%23d"


def test_an_image_is_shown_as_a_url_without_its_query_or_a_file_by_its_name() -> None:
    assert shown_image("https://h.example/a/b.png?Signature=s#f") == "https://h.example/a/b.png"
    assert shown_image("oss://bucket/dir/a.png?x=1") == "oss://bucket/dir/a.png"
    # A user part is a credential too: the host alone is shown.
    assert shown_image("https://ada:pw@h.example:8443/a.png") == "https://h.example:8443/a.png"
    assert shown_image("photos/ada.png") == "ada.png"
    assert shown_image("http://[::1/a.png?sig=s") == "http://[::1/a.png?sig=s"  # cut, not read
    assert len(shown_image("https://h/" + "p" * 300)) == 200
    assert shown_image("/" + "x" * 100) == "x" * 100
    assert shown_image("/") == "/"


def test_a_url_path_is_its_path_a_file_path_all_of_it_and_a_malformed_url_none() -> None:
    assert url_path("https://h.example/a/b.png?x=1#f") == "/a/b.png"
    assert url_path("oss://bucket/dir/a.png") == "/dir/a.png"
    assert url_path("photos/ada.png") == "photos/ada.png"
    assert url_path("http://[::1/a.png") == ""

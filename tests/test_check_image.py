"""check_image checks an image as a submit would, a local file's content too, before sending."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emoji_async import ValidationError, check_image
from emoji_async.testing import sample_portrait


def portrait(directory: Path, name: str = "ada") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    path.write_bytes(sample_portrait(name))
    return path


@pytest.mark.parametrize(
    "url", ["https://example.com/ada.png", "http://example.com/a.png?x=1", "oss://dir/ada.png"]
)
def test_a_url_is_returned_as_given_and_no_file_is_read(url: str) -> None:
    assert check_image(url) == url


@pytest.mark.parametrize("value", ["ftp://example.com/a.png", "", "https://", 42])
def test_a_value_of_the_wrong_form_is_refused_on_the_field_named(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        check_image(value, field="portrait")
    assert caught.value.field == "portrait"


def test_a_local_file_is_read_and_checked_and_its_absolute_path_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = portrait(tmp_path / "in")
    assert check_image(str(path)) == os.path.abspath(path)
    assert check_image(path) == os.path.abspath(path)
    assert check_image(path.as_uri()) == os.path.abspath(path)
    # A relative path is the working directory's, or that of relative_to.
    monkeypatch.chdir(tmp_path)
    assert check_image("in/ada.png") == os.path.abspath(path)
    assert check_image("ada.png", relative_to=tmp_path / "in") == os.path.abspath(path)


def test_a_missing_file_is_refused_naming_its_path(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="the path of an existing file") as caught:
        check_image("gone.png", field="image", relative_to=tmp_path)
    assert caught.value.field == "image"
    assert caught.value.value == os.path.abspath(tmp_path / "gone.png")


def test_a_file_that_is_no_image_the_provider_takes_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image", encoding="utf-8")
    with pytest.raises(ValidationError, match="PNG, JPEG, BMP or WEBP"):
        check_image(text)
    with pytest.raises(ValidationError, match="a file, not a directory"):
        check_image(tmp_path)

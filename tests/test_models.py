"""Models validate what callers give them and describe tasks without wire spellings."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from emoji_async import BBox, TaskStatus, ValidationError, VideoResult, templates
from emoji_async._templates import MAX_VIDEO_SECONDS, Template, template_info
from emoji_async._validation import check_boxes, check_driven_id, check_image_url


def test_a_box_parses_from_four_ordered_non_negative_ints() -> None:
    assert BBox.parse([1, 2, 30, 40]) == BBox(1, 2, 30, 40)
    assert BBox.parse((1, 2, 30, 40)).as_list() == [1, 2, 30, 40]


@pytest.mark.parametrize(
    "value",
    [
        None,
        "1,2,3,4",
        [1, 2, 3],
        [1, 2, 3, 4, 5],
        [3, 2, 1, 4],
        [1, 4, 3, 2],
        [-1, 0, 2, 2],
        [0, 0, 2.0, 2],
        [False, 0, 2, 2],
        [1, 1, 1, 5],
    ],
)
def test_a_bad_box_names_its_field_and_the_allowed_form(value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        BBox.parse(value, field="face_bbox")
    assert caught.value.field == "face_bbox"
    assert "x1 < x2" in str(caught.value)


def test_the_extended_box_need_not_contain_the_face_box() -> None:
    # The provider never promises that they nest (docs/wire.md): both pass as given.
    face, ext = check_boxes([212, 194, 460, 441], [63, 30, 609, 575])
    assert ext.contains(face)
    face, ext = check_boxes([212, 194, 460, 441], [300, 30, 609, 575])
    assert not ext.contains(face)
    assert ext.as_list() == [300, 30, 609, 575]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.png",
        "http://127.0.0.1:8000/a.png",
        "oss://dir/key.png",
        "/tmp/a.png",  # a local file: checked on disk, then uploaded
    ],
)
def test_image_urls_may_be_http_https_oss_or_a_local_path(url: str) -> None:
    assert check_image_url(url) == url


@pytest.mark.parametrize(
    "url",
    ["", "ftp://example.com/a.png", "https://", "https://ex ample.com/a", 5, None],
)
def test_other_image_urls_are_refused_by_name(url: Any) -> None:
    with pytest.raises(ValidationError, match="image_url: expected an http://, https:// or oss://"):
        check_image_url(url)


def test_templates_are_the_twenty_documented_ids() -> None:
    listed = templates()
    assert len(listed) == 20 == len(Template)
    assert {info.series for info in listed} == {"mengwa", "dagong", "jingdian"}
    assert all(1 <= info.video_seconds <= MAX_VIDEO_SECONDS for info in listed)
    assert template_info("mengwa_kaixin") is listed[0]


def test_a_template_id_is_checked_against_the_table_or_an_explicit_opt_in() -> None:
    assert check_driven_id(Template.DAGONG_WEIXIAO) == "dagong_weixiao"
    assert check_driven_id("jingdian_lei") == "jingdian_lei"
    with pytest.raises(ValidationError, match="driven_id: expected one of the 20 templates"):
        check_driven_id("mengwa_new")
    assert check_driven_id("mengwa_new", extra={"mengwa_new"}) == "mengwa_new"


def test_status_progress_never_goes_back_from_terminal() -> None:
    order = [TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUCCEEDED]
    assert [s.progress for s in order] == [0, 1, 2]
    assert all(s.progress == 2 for s in TaskStatus if s.is_terminal)
    assert TaskStatus.from_wire("SUSPENDED") is TaskStatus.OTHER
    assert TaskStatus.from_wire("OTHER") is TaskStatus.OTHER
    assert not TaskStatus.OTHER.is_terminal


def test_a_video_url_expires_a_day_after_the_task_ended() -> None:
    end = dt.datetime(2025, 10, 14, 11, 29, tzinfo=dt.UTC)
    video = VideoResult(task_id="t", video_url="u", video_duration=3, end_time=end)
    assert video.url_expires_at == end + dt.timedelta(hours=24)
    assert VideoResult(task_id="t", video_url="u", video_duration=3).url_expires_at is None

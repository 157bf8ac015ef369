"""The wire layer turns the JSON of docs/wire.md into models, and anything else into one error."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest

from emoji_async import BBox, FaceRejectedError, TaskStatus, UnexpectedResponseError
from emoji_async._wire import (
    BEIJING,
    format_list_time,
    parse_detection,
    parse_error_body,
    parse_submit,
    parse_task,
    parse_task_page,
)


def test_a_passed_detection_renames_the_boxes_for_the_submit() -> None:
    body = {
        "output": {"bbox_face": [212, 194, 460, 441], "ext_bbox_face": [63, 30, 609, 575]},
        "usage": {"image_count": 1},
        "request_id": "78becbc4",
    }
    face = parse_detection(body)
    assert face.face_bbox == BBox(212, 194, 460, 441)
    assert face.ext_bbox == BBox(63, 30, 609, 575)
    assert face.request_id == "78becbc4"
    assert face.image_count == 1


def test_a_rejected_detection_is_an_error_that_keeps_the_billed_count() -> None:
    body = {
        "output": {"code": "InvalidFile.FacePose", "message": "The pose is invalid"},
        "usage": {"image_count": 1},
        "request_id": "ed0d0d8f",
    }
    with pytest.raises(FaceRejectedError) as caught:
        parse_detection(body)
    assert caught.value.code == "InvalidFile.FacePose"
    assert caught.value.request_id == "ed0d0d8f"
    assert caught.value.image_count == 1


def test_a_detection_with_neither_boxes_nor_code_is_unexpected() -> None:
    with pytest.raises(UnexpectedResponseError, match="neither boxes"):
        parse_detection({"output": {}, "request_id": "r"})


def test_the_submit_answer_gives_the_task_id_and_first_status() -> None:
    snap = parse_submit(
        {"output": {"task_status": "PENDING", "task_id": "0385dc79"}, "request_id": "4909"}
    )
    assert (snap.task_id, snap.status, snap.request_id) == ("0385dc79", TaskStatus.PENDING, "4909")


def test_a_succeeded_task_carries_video_usage_and_beijing_times() -> None:
    body = {
        "request_id": "ad225054",
        "output": {
            "task_id": "b56f509a",
            "task_status": "SUCCEEDED",
            "submit_time": "2025-10-14 11:28:04.372",
            "scheduled_time": "2025-10-14 11:28:04.400",
            "end_time": "2025-10-14 11:29:03.924",
            "video_url": "http://example.com/xx.mp4?Expires=1",
        },
        "usage": {"video_duration": 2, "video_ratio": "standard"},
    }
    snap = parse_task(body)
    assert snap.status is TaskStatus.SUCCEEDED
    assert snap.video_url == "http://example.com/xx.mp4?Expires=1"
    assert snap.usage is not None
    assert snap.usage.video_duration == 2
    assert snap.end_time == dt.datetime(2025, 10, 14, 3, 29, 3, 924000, tzinfo=dt.UTC)
    assert snap.submit_time is not None
    assert snap.submit_time.utcoffset() == dt.timedelta(hours=8)


def test_a_succeeded_task_without_a_video_url_is_unexpected() -> None:
    body = {"output": {"task_id": "t", "task_status": "SUCCEEDED"}, "request_id": "r"}
    with pytest.raises(UnexpectedResponseError, match="video_url") as caught:
        parse_task(body)
    assert caught.value.request_id == "r"


def test_a_failed_task_carries_the_providers_code_and_message() -> None:
    body = {
        "request_id": "e5d70b02",
        "output": {
            "task_id": "86ecf553",
            "task_status": "FAILED",
            "code": "InvalidParameter",
            "message": "The size is not match",
        },
    }
    snap = parse_task(body)
    assert (snap.status, snap.code, snap.message) == (
        TaskStatus.FAILED,
        "InvalidParameter",
        "The size is not match",
    )
    assert snap.usage is None


def test_a_status_added_by_the_provider_later_is_carried_not_fatal() -> None:
    snap = parse_task({"output": {"task_id": "t", "task_status": "SUSPENDED"}})
    assert snap.status is TaskStatus.OTHER
    assert snap.raw_status == "SUSPENDED"
    assert not snap.is_terminal


def test_unknown_is_terminal() -> None:
    snap = parse_task({"output": {"task_id": "t", "task_status": "UNKNOWN"}})
    assert snap.status is TaskStatus.UNKNOWN
    assert snap.is_terminal


@pytest.mark.parametrize(
    "body",
    [
        [],
        "PENDING",
        {"output": None},
        {"output": {"task_status": "RUNNING"}},
        {"output": {"task_id": 7, "task_status": "RUNNING"}},
        {"output": {"task_id": "t", "task_status": "RUNNING", "submit_time": "yesterday"}},
        {"output": {"task_id": "t", "task_status": "RUNNING"}, "request_id": 5},
        {"output": {"task_id": "t"}},
    ],
)
def test_answers_that_break_the_protocol_raise_only_unexpected_response(body: Any) -> None:
    with pytest.raises(UnexpectedResponseError):
        parse_task(body)


@pytest.mark.parametrize(
    "boxes",
    [[1, 2, 3], [1, 2, 3, "4"], [5, 5, 1, 1], [-1, 0, 4, 4], [1.5, 0, 4, 4], [True, 0, 4, 4]],
)
def test_malformed_detection_boxes_are_unexpected(boxes: Any) -> None:
    body = {"output": {"bbox_face": boxes, "ext_bbox_face": [0, 0, 9, 9]}}
    with pytest.raises(UnexpectedResponseError, match="bbox"):
        parse_detection(body)


def test_the_task_list_uses_its_own_spelling_and_epoch_milliseconds() -> None:
    body = {
        "total": 2,
        "total_page": 1,
        "page_no": 1,
        "page_size": 10,
        "request_id": "r",
        "data": [
            {
                "task_id": "50e2ccea",
                "status": "RUNNING",
                "model_name": "emoji-v1",
                "region": "cn-beijing",
                "request_id": "1abfc3c8",
                "gmt_create": 1745568428109,
                "start_time": 1745568428138,
            },
            {"task_id": "x", "status": "SUCCEEDED"},
        ],
    }
    page = parse_task_page(body)
    assert page.total == 2
    assert page.total_pages == 1
    first = page.tasks[0]
    assert first.status is TaskStatus.RUNNING
    assert first.model_name == "emoji-v1"
    assert first.created_at == dt.datetime(2025, 4, 25, 8, 7, 8, 109000, tzinfo=dt.UTC)
    assert first.ended_at is None
    assert page.tasks[1].status is TaskStatus.SUCCEEDED


#: A page of three rows whose middle one has no status, and one row that is no object.
ROWS_UNREAD: dict[str, Any] = {
    "total": 4,
    "page_no": 2,
    "page_size": 4,
    "data": [
        {"task_id": "a-1", "status": "RUNNING"},
        {"task_id": "b-2"},
        {"task_id": "c-3", "status": "PENDING"},
        "d-4",
    ],
}


def test_a_task_list_row_that_cannot_be_read_is_left_out_named_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="emoji_async"):
        page = parse_task_page(ROWS_UNREAD)
    assert [t.task_id for t in page.tasks] == ["a-1", "c-3"]
    assert page.unreadable == 2
    assert page.total == 4
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2
    assert "page 2: row 1 (task b-2)" in warned[0]
    assert "status" in warned[0]
    assert "page 2: row 3 (no task id readable)" in warned[1]


def test_a_row_with_an_impossible_task_id_is_left_out_without_repeating_the_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = {"total": 2, "data": [{"task_id": "..", "status": "RUNNING"}, ROWS_UNREAD["data"][0]]}
    with caplog.at_level(logging.WARNING, logger="emoji_async"):
        page = parse_task_page(body)
    assert [t.task_id for t in page.tasks] == ["a-1"]
    assert page.unreadable == 1
    assert "row 0 (no task id readable)" in caplog.text
    assert "task .." not in caplog.text


def test_a_task_list_read_whole_refuses_a_page_with_a_row_that_cannot_be_read() -> None:
    with pytest.raises(UnexpectedResponseError, match="row 1"):
        parse_task_page(ROWS_UNREAD, whole=True)
    readable = {**ROWS_UNREAD, "data": [ROWS_UNREAD["data"][0]], "total": 1}
    assert parse_task_page(readable, whole=True).unreadable == 0


def test_a_task_list_whose_data_is_no_list_is_unreadable_whole() -> None:
    for data in ("abc", {"task_id": "a-1", "status": "RUNNING"}, 5):
        with pytest.raises(UnexpectedResponseError):
            parse_task_page({"total": 1, "data": data})


def test_error_bodies_give_code_message_and_request_id_or_nothing() -> None:
    assert parse_error_body({"code": "Throttling", "message": "slow", "request_id": "r"}) == (
        "Throttling",
        "slow",
        "r",
    )
    assert parse_error_body("<html>") == (None, None, None)
    assert parse_error_body({"code": 5}) == (None, None, None)


def test_list_times_are_written_in_beijing_time() -> None:
    moment = dt.datetime(2025, 1, 1, 0, 0, 0, tzinfo=dt.UTC)
    assert format_list_time(moment) == "20250101080000"
    assert format_list_time(moment.astimezone(BEIJING)) == "20250101080000"

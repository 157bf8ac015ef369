"""Fuzzing: whatever the service answers or a caller passes, only the project's errors come out.

Every parser the client runs on an answer, fed any JSON or a valid answer
broken in small ways, returns a value that is safe to compute with or raises
:class:`UnexpectedResponseError`; every validator, fed any object, raises
only :class:`ValidationError`; and neither a task handle nor the journal ever
moves a job backwards, whatever order the answers and steps come in.

Example counts: 200 per parser and validator test, 150 runs of up to 15
steps per state machine. Hypothesis keeps no database here (``database=None``),
so a run leaves no files behind.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import math
import os
import tempfile
import urllib.parse
from collections.abc import Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from emoji_async import (
    APIError,
    BBox,
    EmojiClient,
    EmojiJob,
    FaceDetection,
    FaceRejectedError,
    PollPolicy,
    PollSchedule,
    RateLimits,
    RetryPolicy,
    TaskCanceledError,
    TaskFailedError,
    TaskNotFoundError,
    TaskPage,
    TaskSnapshot,
    TaskStatus,
    Timeouts,
    UnexpectedResponseError,
    ValidationError,
    VideoResult,
    templates,
)
from emoji_async._answers import (
    MAX_RETRY_AFTER,
    Response,
    decode_answer,
    parse_retry_after,
)
from emoji_async._errors import InvalidRequestError, JournalError, RateLimitError, ServerError
from emoji_async._jobs import check_unique_keys, file_name_for
from emoji_async._journal import JobState, Journal
from emoji_async._models import MAX_COORDINATE, TASK_ID, check_task_id
from emoji_async._task import Task, check_timeout, outcome_of
from emoji_async._uploads import UploadPolicy
from emoji_async._validation import check_boxes, check_driven_id, check_image_url
from emoji_async._values import Endpoint
from emoji_async._wire import (
    parse_detection,
    parse_error_body,
    parse_submit,
    parse_task,
    parse_task_page,
)

_T = TypeVar("_T")
_E = TypeVar("_E", bound=Exception)

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
MACHINE = settings(max_examples=150, stateful_step_count=15, deadline=None, database=None)


def outcome(call: Callable[[], _T], *errors: type[_E]) -> _T | _E:
    """What ``call`` returned, or which of ``errors`` it raised (anything else propagates)."""
    try:
        return call()
    except errors as exc:
        return exc


# --- what an answer may hold ------------------------------------------------------------

STATUS_WORDS = (
    "PENDING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
    "UNKNOWN",
    "OTHER",
    "SUSPENDED",
    "succeeded",
    "",
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)

#: Values a field of a nearly valid answer is replaced with.
ODD = st.one_of(
    JSON,
    st.sampled_from(
        [
            "",
            "yesterday",
            "2025-10-14",
            "2025-10-14T11:28:04Z",
            "2025-10-14 11:28:04.372+08:00",
            "2025-13-40 25:61:61",
            "20251014112804",
            "0001-01-01 00:00:00",
            "0001-01-01 00:00:00+23:59",
            "1969-12-31 23:59:59",
            "9999-12-31 23:59:59.999",
            "9999-12-31 23:59:59-23:59",
            "NaN",
            "nan",
            "Infinity",
            "-1",
            "1e309",
            "file:///etc/passwd",
            "http://[::1",
            "//no-scheme/x.mp4",
        ]
    ),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, -1, 0, 2**63, 10**30, True]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(STATUS_WORDS),
    st.sampled_from(["..", ".", "a/b", "%2e%2e", "x" * 10_000, "t-1\n", "0385dc79-5ff8"]),
    st.text(),
)

TIME = "2025-10-14 11:28:04.372"
IMG_URL = "https://example.com/portraits/ada.png"


def task_answer(word: str) -> dict[str, Any]:
    """A valid task answer in state ``word``, with every field that state may carry."""
    output: dict[str, Any] = {"task_id": "b56f509a", "task_status": word, "submit_time": TIME}
    body: dict[str, Any] = {"request_id": "ad225054", "output": output}
    if word not in ("PENDING", "UNKNOWN"):
        output["scheduled_time"] = "2025-10-14 11:28:04.400"
    if word in ("SUCCEEDED", "FAILED", "CANCELED"):
        output["end_time"] = "2025-10-14 11:29:03.924"
    if word == "SUCCEEDED":
        output["video_url"] = "http://results.example.com/xx.mp4?Expires=1&Signature=s"
        body["usage"] = {"video_duration": 2, "video_ratio": "standard"}
    if word == "FAILED":
        output["code"] = "InvalidParameter"
        output["message"] = "The size is not match"
    return body


DETECTION = {
    "output": {"bbox_face": [212, 194, 460, 441], "ext_bbox_face": [63, 30, 609, 575]},
    "usage": {"image_count": 1},
    "request_id": "78becbc4",
}
REJECTION = {
    "output": {"code": "InvalidFile.FacePose", "message": "The pose is invalid"},
    "usage": {"image_count": 1},
    "request_id": "ed0d0d8f",
}
SUBMITTED = {"output": {"task_status": "PENDING", "task_id": "0385dc79"}, "request_id": "4909"}
PAGE = {
    "request_id": "r",
    "total": 2,
    "total_page": 1,
    "page_no": 1,
    "page_size": 10,
    "data": [
        {
            "task_id": "t1",
            "status": "SUCCEEDED",
            "model_name": "emoji-v1",
            "region": "cn-beijing",
            "request_id": "q1",
            "gmt_create": 1_760_412_484_372,
            "start_time": 1_760_412_484_400,
            "end_time": 1_760_412_543_924,
        },
        {"task_id": "t2", "status": "PENDING", "gmt_create": 1_760_412_484_372},
    ],
}
ERROR = {"code": "InvalidParameter", "message": "Driven not exist", "request_id": "e1"}
UPLOAD_POLICY: dict[str, Any] = {
    "request_id": "u1",
    "data": {
        "upload_host": "https://dashscope-file-mgr.oss-cn-beijing.aliyuncs.com",
        "upload_dir": "dashscope-instant/abc/2025-10-14/x",
        "policy": "eyJleHBpcmF0aW9uIjoi",
        "signature": "c2lnbmF0dXJl",
        "oss_access_key_id": "LTAI5t",
        "x_oss_object_acl": "private",
        "x_oss_forbid_overwrite": "true",
        "max_file_size_mb": 100,
        "expire_in_seconds": 300,
    },
}

Path_ = tuple[str | int, ...]


def _paths(doc: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every place in ``doc`` a value sits at: dict keys and list indices, nested."""
    found: list[Path_] = []
    items: list[tuple[str | int, Any]] = (
        list(doc.items()) if isinstance(doc, dict) else list(enumerate(doc))
    )
    for key, value in items:
        found.append((*prefix, key))
        if isinstance(value, dict | list):
            found.extend(_paths(value, (*prefix, key)))
    return found


def _at(doc: Any, path: Path_) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def broken(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """``valid`` with one to three fields removed, retyped, given odd values, or added."""
    doc = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, 3))):
        places = _paths(doc)
        if not places:
            break
        path = draw(st.sampled_from(places))
        parent, last = _at(doc, path[:-1]), path[-1]
        action = draw(st.sampled_from(["drop", "replace", "replace", "add"]))
        if action == "drop":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(ODD)
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(ODD)
    return doc


def answers(*valid: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Any JSON, the valid answers themselves, and the valid answers broken."""
    return st.one_of(JSON, st.sampled_from(valid), *(broken(v) for v in valid))


TASK_ANSWERS = answers(*(task_answer(word) for word in STATUS_WORDS))


# --- what a parsed value must be -------------------------------------------------------


def _usable_time(moment: dt.datetime | None) -> None:
    """Aware, and far enough from the calendar's ends to convert and add a day to."""
    if moment is None:
        return
    assert moment.tzinfo is not None
    moment.astimezone(dt.UTC)
    _ = moment + dt.timedelta(days=1), moment - dt.timedelta(days=1)


def _optional_text(*values: object) -> None:
    assert all(value is None or isinstance(value, str) for value in values)


def _http_url(url: object) -> None:
    assert isinstance(url, str)
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme in ("http", "https")
    assert parts.netloc


def check_snapshot(snap: TaskSnapshot) -> None:
    """Everything the client does with a snapshot works on it."""
    assert isinstance(snap.task_id, str)
    assert TASK_ID.fullmatch(snap.task_id)  # safe to put in a URL
    assert isinstance(snap.status, TaskStatus)
    assert isinstance(snap.raw_status, str)
    assert snap.status is TaskStatus.from_wire(snap.raw_status)
    for moment in (snap.submit_time, snap.scheduled_time, snap.end_time):
        _usable_time(moment)
    _optional_text(snap.code, snap.message, snap.request_id)
    if snap.status is TaskStatus.SUCCEEDED and snap.video_url is not None:
        _http_url(snap.video_url)
    if snap.status is not TaskStatus.SUCCEEDED:
        assert snap.video_url is None
        assert snap.usage is None
    if snap.usage is not None:
        assert type(snap.usage.video_duration) is int
        assert snap.usage.video_duration >= 0
        _optional_text(snap.usage.video_ratio)


def check_outcome(snap: TaskSnapshot) -> None:
    """What ``Task.wait()`` makes of a terminal snapshot: a usable video, or its task error."""
    video = outcome(lambda: outcome_of(snap), TaskFailedError, TaskCanceledError, TaskNotFoundError)
    if isinstance(video, Exception):
        assert video.task_id == snap.task_id
        assert str(video)
        return
    assert isinstance(video, VideoResult)
    _http_url(video.video_url)
    assert video.video_duration >= 0
    _usable_time(video.url_expires_at)


def check_unexpected(exc: UnexpectedResponseError) -> None:
    assert str(exc)
    _optional_text(exc.request_id)


# --- parsers ---------------------------------------------------------------------------


def test_the_valid_answers_the_fuzzing_starts_from_parse() -> None:
    """The seeds are valid, so the broken variants are near misses, not noise."""
    for word in ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN", "SUSPENDED"):
        check_snapshot(parse_task(task_answer(word)))
    assert isinstance(parse_detection(DETECTION), FaceDetection)
    with pytest.raises(FaceRejectedError):
        parse_detection(REJECTION)
    check_snapshot(parse_submit(SUBMITTED))
    assert len(parse_task_page(PAGE).tasks) == 2
    assert parse_error_body(ERROR) == ("InvalidParameter", "Driven not exist", "e1")
    assert UploadPolicy.from_wire(UPLOAD_POLICY, http_status=200, request_id="u1").max_file_bytes


def _with(word: str, **changes: Any) -> dict[str, Any]:
    body = task_answer(word)
    for name, value in changes.items():
        (body["usage"] if name == "video_duration" else body["output"])[name] = value
    return body


@FUZZ
@given(TASK_ANSWERS)
@example(_with("SUCCEEDED", end_time="9999-12-31 23:59:59-23:59"))
@example(_with("SUCCEEDED", video_duration=-1))
@example(_with("SUCCEEDED", video_url="file:///etc/passwd"))
@example(_with("RUNNING", task_id=""))
@example(_with("RUNNING", task_id=".."))
def test_any_task_answer_is_a_usable_snapshot_or_unexpected_response(body: Any) -> None:
    snap = outcome(lambda: parse_task(body, http_status=200), UnexpectedResponseError)
    if isinstance(snap, UnexpectedResponseError):
        check_unexpected(snap)
        return
    check_snapshot(snap)
    if snap.status is TaskStatus.SUCCEEDED:
        _http_url(snap.video_url)
    if snap.is_terminal:
        check_outcome(snap)


@FUZZ
@given(answers(SUBMITTED, task_answer("PENDING")))
@example({"output": {"task_id": "..", "task_status": "PENDING"}})
@example({"output": {"task_id": "x" * 10_000, "task_status": "PENDING"}})
def test_any_submit_answer_is_a_first_snapshot_or_unexpected_response(body: Any) -> None:
    snap = outcome(lambda: parse_submit(body, http_status=200), UnexpectedResponseError)
    if isinstance(snap, UnexpectedResponseError):
        check_unexpected(snap)
        return
    check_snapshot(snap)
    assert snap.video_url is None


@FUZZ
@given(answers(DETECTION, REJECTION))
@example({"output": {"bbox_face": [10, 10, 20, 20], "ext_bbox_face": [0, 0, 15, 15]}})
@example({**DETECTION, "usage": {"image_count": -1}})
def test_any_detection_answer_gives_submittable_boxes_a_rejection_or_unexpected_response(
    body: Any,
) -> None:
    found = outcome(
        lambda: parse_detection(body, http_status=200), FaceRejectedError, UnexpectedResponseError
    )
    if isinstance(found, FaceRejectedError):
        assert isinstance(found.code, str)
        assert isinstance(found.message, str)
        assert type(found.image_count) is int
        assert found.image_count >= 0
        return
    if isinstance(found, UnexpectedResponseError):
        check_unexpected(found)
        return
    assert isinstance(found, FaceDetection)
    # The boxes go to the submit as they are: they must pass its own check.
    assert check_boxes(found.face_bbox, found.ext_bbox) == (found.face_bbox, found.ext_bbox)
    assert type(found.image_count) is int
    assert found.image_count >= 0
    _optional_text(found.request_id)


@FUZZ
@given(answers(PAGE))
@example({"data": [{"task_id": "t", "status": "RUNNING", "end_time": 10**20}]})
@example({"data": [{"task_id": "t", "status": "RUNNING", "gmt_create": -1}]})
def test_any_task_list_answer_is_a_usable_page_or_unexpected_response(body: Any) -> None:
    page = outcome(lambda: parse_task_page(body, http_status=200), UnexpectedResponseError)
    if isinstance(page, UnexpectedResponseError):
        check_unexpected(page)
        return
    assert isinstance(page, TaskPage)
    for count in (page.total, page.total_pages, page.page_no, page.page_size):
        assert type(count) is int
        assert count >= 0
    for task in page.tasks:
        assert task.task_id
        assert task.status is TaskStatus.from_wire(task.raw_status)
        for moment in (task.created_at, task.started_at, task.ended_at):
            _usable_time(moment)
        _optional_text(task.model_name, task.region, task.request_id)


@FUZZ
@given(answers(ERROR))
def test_any_error_body_gives_code_message_and_request_id_as_text_or_nothing(body: Any) -> None:
    parsed = parse_error_body(body)
    assert len(parsed) == 3
    _optional_text(*parsed)


def _policy_with(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(UPLOAD_POLICY)
    body["data"].update(changes)
    return body


@FUZZ
@given(answers(UPLOAD_POLICY))
@example(_policy_with(max_file_size_mb=math.nan))
@example(_policy_with(max_file_size_mb=math.inf))
@example(_policy_with(max_file_size_mb=1e305))  # finite, but not once counted in bytes
@example(_policy_with(max_file_size_mb=-5))
@example(_policy_with(max_file_size_mb=1e-9))  # under one byte
@example(_policy_with(upload_host="http://[::1"))
@example(_policy_with(upload_host="http://:80"))
@example(_policy_with(upload_host="https://example.com:99999"))
def test_any_upload_policy_answer_is_a_usable_policy_or_unexpected_response(body: Any) -> None:
    policy = outcome(
        lambda: UploadPolicy.from_wire(body, http_status=200, request_id="u1"),
        UnexpectedResponseError,
    )
    if isinstance(policy, UnexpectedResponseError):
        check_unexpected(policy)
        return
    assert isinstance(policy, UploadPolicy)
    _http_url(policy.upload_host)
    for text in (policy.upload_dir, policy.policy, policy.signature, policy.access_key_id):
        assert isinstance(text, str)
        assert text
    assert policy.max_file_bytes is None or policy.max_file_bytes > 0


ENCODED = st.one_of(
    st.binary(max_size=64),
    TASK_ANSWERS.map(lambda doc: repr(doc).encode()),
    st.one_of(TASK_ANSWERS, answers(DETECTION, SUBMITTED, PAGE, ERROR)).map(
        lambda doc: json.dumps(doc).encode()
    ),
)

PARSERS: dict[Endpoint, Callable[..., Any]] = {
    Endpoint.DETECT: parse_detection,
    Endpoint.SUBMIT: parse_submit,
    Endpoint.QUERY: parse_task,
    Endpoint.LIST: parse_task_page,
}


@FUZZ
@given(
    status=st.one_of(
        st.sampled_from([200, 201, 204, 302, 400, 401, 429, 500]), st.integers(100, 599)
    ),
    raw=ENCODED,
    header_request_id=st.none() | st.text(max_size=10),
    endpoint=st.sampled_from(sorted(PARSERS, key=lambda e: e.value)),
)
def test_any_bytes_on_the_wire_become_a_value_or_a_project_error(
    status: int, raw: bytes, header_request_id: str | None, endpoint: Endpoint
) -> None:
    """What each endpoint's attempt does with an answer: decode it, then parse the body."""
    response = outcome(
        lambda: decode_answer(status, raw, header_request_id, None, endpoint),
        UnexpectedResponseError,
        APIError,
    )
    documented = status in (400, 401, 403, 404, 429) or status >= 500
    if isinstance(response, UnexpectedResponseError):
        # A 2xx the protocol does not promise, or a status it never answers.
        assert 200 <= status < 300 or not documented
        assert response.http_status == status
        check_unexpected(response)
        return
    if isinstance(response, APIError):
        assert documented
        assert response.http_status == status
        assert isinstance(response.message, str)
        expected = {429: RateLimitError, 400: InvalidRequestError}.get(status)
        assert isinstance(response, expected or (ServerError if status >= 500 else APIError))
        return
    assert 200 <= status < 300
    assert isinstance(response, Response)
    _optional_text(response.request_id)
    outcome(
        lambda: PARSERS[endpoint](response.body, http_status=response.status),
        UnexpectedResponseError,
        FaceRejectedError,
    )


RETRY_AFTER = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.from_regex(r"\s*[-+]?(\d{1,30}(\.\d{0,5})?([eE][-+]?\d{1,4})?|inf|nan)\s*", fullmatch=True),
    st.datetimes(timezones=st.just(dt.UTC)).map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")),
)


@FUZZ
@given(RETRY_AFTER)
def test_any_retry_after_header_is_a_wait_from_zero_to_the_cap_or_nothing(
    value: str | None,
) -> None:
    wait = parse_retry_after(value, now=1_760_000_000.0)
    assert wait is None or (isinstance(wait, float) and 0 <= wait <= MAX_RETRY_AFTER)


@pytest.mark.parametrize("value", ["inf", "Infinity", "-inf", "1e999", "nan"])
def test_a_retry_after_of_infinity_is_not_a_wait_forever(value: str) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize(
    "value", ["1e300", str(10**30), "Fri, 31 Dec 9999 23:59:59 GMT"], ids=["float", "int", "date"]
)
def test_a_retry_after_of_years_is_capped_at_the_longest_wait(value: str) -> None:
    assert parse_retry_after(value, now=1_760_000_000.0) == MAX_RETRY_AFTER


# --- validators ------------------------------------------------------------------------

#: Any object at all: Hypothesis' pick of builtin and standard-library values.
ANYTHING = st.from_type(object).filter(lambda value: value is not os.environ)

#: Past Python's int-to-str limit (4300 digits): even quoting it in an error raises.
HUGE = 10**5000

NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.sampled_from([0, -1, 0.0, -0.0, 1e-300, math.nan, math.inf, -math.inf, True, False]),
    st.sampled_from([HUGE, -HUGE, 2**31, 2**31 - 1]),
    # Numbers as a form or a command line would pass them.
    st.sampled_from(["5", "0", "nan", "inf", "1e3", " 7", ""]),
)

NEAR_URLS = st.one_of(
    st.builds(
        "{}{}{}".format,
        st.sampled_from(
            ["http://", "https://", "oss://", "HTTP://", "ftp://", "file://", "", "//"]
        ),
        st.sampled_from(
            ["example.com", "", "[::1]", "[::1", "a]b", "127.0.0.1:99999", "ü.example"]
        ),
        st.text(max_size=30),
    ),
    st.text(min_size=4090, max_size=4100, alphabet="ab/"),
)

BOX_ITEMS = st.one_of(
    st.integers(min_value=-5, max_value=2**64),
    st.floats(),
    st.booleans(),
    st.text(max_size=3),
    st.sampled_from([HUGE, 2**31 - 1, 2**31, "5", math.nan, math.inf]),
)
NEAR_BOXES = st.one_of(
    st.lists(BOX_ITEMS, min_size=3, max_size=5),
    st.lists(st.integers(min_value=0, max_value=50), min_size=4, max_size=4).map(tuple),
    ANYTHING,
)


def refused(result: object, *fields: str) -> bool:
    """Whether ``result`` is a validation error; if so, it names one of ``fields``."""
    if not isinstance(result, ValidationError):
        return False
    assert result.field in fields
    assert str(result).startswith(f"{result.field}: expected ")
    return True


@FUZZ
@given(st.one_of(ANYTHING, NEAR_URLS))
@example("http://[::1")
def test_check_image_url_returns_the_url_or_raises_only_a_validation_error(value: object) -> None:
    url = outcome(lambda: check_image_url(value), ValidationError)
    if refused(url, "image_url"):
        return
    assert isinstance(url, str)
    if isinstance(value, str):
        assert url == value


@FUZZ
@given(
    st.one_of(ANYTHING, st.sampled_from([t.driven_id for t in templates()]), st.text(max_size=20)),
    st.frozensets(st.text(max_size=8), max_size=3),
)
def test_check_driven_id_returns_a_known_id_or_raises_only_a_validation_error(
    value: object, extra: frozenset[str]
) -> None:
    driven_id = outcome(lambda: check_driven_id(value, extra=extra), ValidationError)
    if refused(driven_id, "driven_id"):
        return
    assert driven_id in {t.driven_id for t in templates()} | extra


@FUZZ
@given(NEAR_BOXES, NEAR_BOXES)
def test_check_boxes_returns_well_formed_boxes_or_raises_only_a_validation_error(
    face: Any, ext: Any
) -> None:
    boxes = outcome(lambda: check_boxes(face, ext, prefix="jobs[3]."), ValidationError)
    if refused(boxes, "jobs[3].face_bbox", "jobs[3].ext_bbox"):
        return
    assert isinstance(boxes, tuple)
    face_box, ext_box = boxes  # nested or not: the provider never promises that they nest
    for box in (face_box, ext_box):
        assert all(type(v) is int and v >= 0 for v in box.as_list())
        assert box.x1 < box.x2
        assert box.y1 < box.y2


@FUZZ
@given(st.lists(st.one_of(BOX_ITEMS, ANYTHING), min_size=4, max_size=4))
@example([5, 5, 1, 1])
@example([0, 0, HUGE, HUGE])
@example([HUGE, 0, 1, 1])
@example([0, 0, 10, True])
def test_a_box_built_from_any_four_values_is_well_formed_or_refused(values: list[Any]) -> None:
    box = outcome(lambda: BBox(*values), ValidationError)
    if refused(box, "bbox"):
        return
    assert isinstance(box, BBox)
    assert box.as_list() == values
    assert box.x1 < box.x2
    assert box.y1 < box.y2
    assert min(values) >= 0
    assert max(values) <= MAX_COORDINATE
    assert json.dumps(box.as_list())  # a submit can send it


@FUZZ
@given(st.one_of(st.lists(st.one_of(BOX_ITEMS, ANYTHING), min_size=4, max_size=4), ANYTHING))
@example([HUGE, 0, 1, 1])
@example(range(10**20))
def test_a_box_parsed_from_any_value_is_well_formed_or_refused_naming_the_field(
    value: Any,
) -> None:
    box = outcome(lambda: BBox.parse(value, field="jobs[2].face_bbox"), ValidationError)
    if refused(box, "jobs[2].face_bbox"):
        return
    assert isinstance(box, BBox)
    assert all(type(v) is int and 0 <= v <= MAX_COORDINATE for v in box.as_list())


@FUZZ
@given(st.one_of(NUMBERS, ANYTHING))
@example("5")
@example(math.nan)
@example(HUGE)
@example(True)
def test_a_timeout_is_none_or_finite_positive_seconds_or_refused_naming_it(value: object) -> None:
    """What ``wait``, ``watch``, ``generate`` and ``generate_many`` check ``timeout=`` with."""
    kept = outcome(lambda: check_timeout(value), ValidationError)
    if refused(kept, "timeout"):
        return
    if value is None:
        assert kept is None
        return
    assert kept is value
    assert isinstance(kept, int | float)
    assert not isinstance(kept, bool)
    assert math.isfinite(kept)
    assert kept > 0


@FUZZ
@given(st.one_of(st.text(), st.text(alphabet="ab-_./%", max_size=140), ANYTHING))
@example("..")
@example(".")
@example("x" * 10_000)
@example("0385dc79-5ff8-4d82-bcb6-2f0b3c6b7e11")
def test_a_task_id_is_one_that_fits_in_a_url_path_segment_or_refused_naming_it(
    value: object,
) -> None:
    task_id = outcome(lambda: check_task_id(value), ValidationError)
    if refused(task_id, "task_id"):
        return
    assert task_id == value
    assert isinstance(task_id, str)
    assert 1 <= len(task_id) <= 128
    assert task_id not in (".", "..")
    assert urllib.parse.quote(task_id, safe="") == task_id  # nothing to escape


@FUZZ
@given(
    image=st.one_of(ANYTHING, NEAR_URLS),
    driven_id=st.one_of(ANYTHING, st.just("mengwa_kaixin")),
    face=st.one_of(st.none(), NEAR_BOXES),
    ext=st.one_of(st.none(), NEAR_BOXES),
    key=st.one_of(st.none(), st.text(), ANYTHING),
)
@example(image=123, driven_id="mengwa_kaixin", face=None, ext=None, key=None)
@example(image="http://[::1", driven_id="mengwa_kaixin", face=None, ext=None, key=None)
@example(image=IMG_URL, driven_id="mengwa_kaixin", face=range(10**20), ext=None, key=None)
def test_a_job_of_any_values_is_built_and_keyed_or_refused_with_a_validation_error(
    image: Any, driven_id: Any, face: Any, ext: Any, key: Any
) -> None:
    """Building a job, then keying it as the batch does first, raises only ValidationError."""
    keys = outcome(
        lambda: check_unique_keys(
            [EmojiJob(image, driven_id, face_bbox=face, ext_bbox=ext, key=key)]
        ),
        ValidationError,
    )
    if refused(keys, "bbox", "jobs[0].key"):
        return
    assert isinstance(keys, list)
    [resolved] = keys
    assert isinstance(resolved, str)
    assert "/" not in file_name_for(resolved)


POLICY_FIELDS: dict[Callable[..., object], tuple[str, ...]] = {
    PollPolicy: ("wait_first", "wait_factor", "wait_max", "wait_jitter", "deadline", "lag"),
    RetryPolicy: ("wait_first", "wait_factor", "wait_max", "wait_jitter", "deadline"),
    RateLimits: (
        "detect_per_second",
        "submit_per_second",
        "query_per_second",
        "upload_policy_per_second",
        "running_tasks",
        "window",
        "margin",
        "jitter",
    ),
}
POLICY_FIELD = st.sampled_from(
    [(cls, name) for cls, names in POLICY_FIELDS.items() for name in names]
)


@FUZZ
@given(POLICY_FIELD, NUMBERS)
def test_a_policy_given_any_number_is_built_in_range_or_refused_naming_the_field(
    field: tuple[Callable[..., object], str], value: float
) -> None:
    cls, name = field
    policy = outcome(lambda: cls(**{name: value}), ValidationError)
    if refused(policy, name):
        return
    kept = getattr(policy, name)
    assert kept == value
    assert type(kept) is int or math.isfinite(kept)  # an int count may be any size
    assert kept >= 0


@FUZZ
@given(st.lists(st.one_of(st.none(), NUMBERS), min_size=2, max_size=2))
def test_poll_policy_run_time_is_an_ordered_pair_of_positive_seconds_or_refused(
    pair: list[float | None],
) -> None:
    for value in (tuple(pair), pair, pair[0]):
        policy = outcome(lambda: PollPolicy(run_time=value), ValidationError)  # type: ignore[arg-type]  # noqa: B023
        if refused(policy, "run_time"):
            continue
        assert isinstance(policy, PollPolicy)
        lo, hi = policy.run_time
        assert 0 < lo < hi


#: Every field of the policies, the numbers above and the ones that are not plain numbers.
ANY_POLICY_FIELD = st.sampled_from(
    [
        *((cls, name) for cls, names in POLICY_FIELDS.items() for name in names),
        (RetryPolicy, "reconcile_window"),
        (PollPolicy, "schedule"),
        (PollPolicy, "run_time"),
        (RateLimits, "running_tasks"),
    ]
)


@FUZZ
@given(ANY_POLICY_FIELD, st.one_of(ANYTHING, NUMBERS))
@example((PollPolicy, "wait_first"), "5")
@example((PollPolicy, "wait_first"), None)
@example((PollPolicy, "wait_first"), [5])
@example((PollPolicy, "wait_first"), Decimal("sNaN"))
@example((PollPolicy, "wait_first"), math.inf)
@example((PollPolicy, "wait_first"), 10**400)
@example((RetryPolicy, "reconcile_window"), math.inf)
@example((PollPolicy, "schedule"), "batch")
@example((PollPolicy, "run_time"), (1, math.inf))
def test_a_policy_given_any_object_raises_only_a_validation_error(
    field: tuple[Callable[..., object], str], value: object
) -> None:
    cls, name = field
    policy = outcome(lambda: cls(**{name: value}), ValidationError)
    if refused(policy, name):
        return
    kept = getattr(policy, name)
    if name == "schedule":
        assert isinstance(kept, PollSchedule)
        return
    for number in kept if name == "run_time" else [kept]:
        if number is not None:  # reconcile_window=None turns reconciling off
            assert isinstance(number, int | float)
            assert not isinstance(number, bool)
            assert type(number) is int or math.isfinite(number)  # an int count may be any size
            assert number >= 0


@FUZZ
@given(st.sampled_from(["connect", "read"]), st.one_of(ANYTHING, NUMBERS))
@example("read", math.inf)
@example("connect", "10")
@example("read", Decimal("sNaN"))
def test_timeouts_given_any_value_are_positive_seconds_or_refused(name: str, value: object) -> None:
    timeouts = outcome(lambda: Timeouts(**{name: value}), ValidationError)  # type: ignore[arg-type]
    if refused(timeouts, name):
        return
    kept = getattr(timeouts, name)
    assert isinstance(kept, int | float)
    assert kept > 0
    assert math.isfinite(kept)


# --- state machines --------------------------------------------------------------------


def _run(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, _T]) -> _T:
    return loop.run_until_complete(coro)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


class ScriptedTaskService:
    """A loopback server whose task endpoint answers whatever it is told to, in any order."""

    def __init__(self) -> None:
        self.body: dict[str, Any] = task_answer("PENDING")
        self.hits = 0
        app = web.Application()
        app.router.add_get("/api/v1/tasks/{task_id}", self._task)
        self.server = TestServer(app, host="127.0.0.1")

    async def _task(self, request: web.Request) -> web.Response:
        self.hits += 1
        body = copy.deepcopy(self.body)
        body["output"]["task_id"] = request.match_info["task_id"]
        return web.json_response(body)

    @property
    def base_url(self) -> str:
        return str(self.server.make_url("/api/v1"))


#: Answers a machine draws from: live states twice as often, so runs stay live a while.
ANSWER_WORDS = st.sampled_from(
    [w for w in STATUS_WORDS if w] + ["PENDING", "RUNNING", "SUSPENDED", "PENDING", "RUNNING"]
)

#: Where each answer stands in a task's life (OTHER counts as running).
PROGRESS = {word: TaskStatus.from_wire(word).progress for word in STATUS_WORDS if word}


class TaskHandleMachine(RuleBasedStateMachine):
    """A task handle polled against answers in any order, over real loopback HTTP."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.service = ScriptedTaskService()
        _run(self.loop, self.service.server.start_server())
        self.client = EmojiClient(
            api_key="sk-fuzz",
            base_url=self.service.base_url,
            limits=None,
            retry=RetryPolicy(wait_first=0.001, wait_max=0.001, deadline=1.0),
        )
        _run(self.loop, self.client.open())
        self.task: Task = self.client.task("task-1")
        self.furthest = -1

    @rule(word=ANSWER_WORDS)
    def the_service_answers(self, word: str) -> None:
        before = self.task.last_snapshot
        self.service.body = task_answer(word)
        got = _run(self.loop, self.task.refresh())
        after = self.task.last_snapshot
        assert got is after
        assert after is not None
        if before is None or (not before.is_terminal and PROGRESS[word] >= before.status.progress):
            assert after.raw_status == word  # a step forward (or sideways) is taken
        else:
            assert after is before  # a step back, or any step after the end, is not
        self.furthest = max(self.furthest, after.status.progress)

    @precondition(lambda self: self.furthest == 2)
    @rule(word=ANSWER_WORDS)
    def a_finished_task_is_waited_for_without_asking_again(self, word: str) -> None:
        last = self.task.last_snapshot
        assert last is not None
        self.service.body = task_answer(word)  # whatever the service would now say
        hits = self.service.hits
        expected: type[Exception] | None = {
            TaskStatus.FAILED: TaskFailedError,
            TaskStatus.CANCELED: TaskCanceledError,
            TaskStatus.UNKNOWN: TaskNotFoundError,
        }.get(last.status)
        if expected is None:
            video = _run(self.loop, self.task.wait(timeout=1.0))
            assert video.video_url == last.video_url
        else:
            with pytest.raises(expected):
                _run(self.loop, self.task.wait(timeout=1.0))
        assert self.service.hits == hits
        assert self.task.last_snapshot is last

    @invariant()
    def never_behind_the_furthest_state_seen(self) -> None:
        last = self.task.last_snapshot
        if last is not None:
            assert last.status.progress == self.furthest

    def teardown(self) -> None:
        _run(self.loop, self.client.aclose())
        _run(self.loop, self.service.server.close())
        _close_loop(self.loop)


def test_a_task_handle_never_moves_back_whatever_order_the_answers_come_in() -> None:
    run_state_machine_as_test(TaskHandleMachine, settings=MACHINE)


#: How far along a job is; a step may only raise it, save the two exceptions below.
RANK: dict[JobState | None, int] = {
    None: 0,
    JobState.DETECTED: 1,
    JobState.SUBMITTING: 2,
    JobState.SUBMITTED: 3,
    JobState.UNCERTAIN: 3,
    JobState.SUCCEEDED: 4,
    JobState.FAILED: 4,
    JobState.CANCELED: 4,
    JobState.UNKNOWN: 4,
    JobState.REJECTED: 4,
    JobState.DOWNLOADED: 5,
}


def forward(before: JobState | None, after: JobState) -> bool:
    """A step up; or an uncertain submit found after all; or an unsent submit withdrawn."""
    return (
        RANK[after] > RANK[before]
        or (before is JobState.UNCERTAIN and after is JobState.SUBMITTED)
        or (before in (JobState.SUBMITTING, JobState.UNCERTAIN) and after is JobState.DETECTED)
    )


#: The journal's documented steps and the states each may follow (``None``: a new job).
FOLLOWS: dict[str, set[JobState | None]] = {
    "detected": {None},
    "rejected": {None, JobState.DETECTED},
    "submitting": {None, JobState.DETECTED},
    "submitted": {JobState.SUBMITTING, JobState.UNCERTAIN},
    "uncertain": {JobState.SUBMITTING},
    "unsent": {JobState.SUBMITTING, JobState.UNCERTAIN},
    "failed": {JobState.SUBMITTING},
    "finished": {JobState.SUBMITTED},
    "downloaded": {JobState.SUCCEEDED},
}
ENDINGS = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.UNKNOWN)
FACE, EXT = BBox(212, 194, 460, 441), BBox(63, 30, 609, 575)


class JournalMachine(RuleBasedStateMachine):
    """Any step on any job, in any order, with reopenings: the journal only ever goes forward."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = tempfile.TemporaryDirectory()
        self.path = Path(self.folder.name) / "run.db"
        self.journal = _run(self.loop, Journal.open(self.path))

    def _step(self, call: str, key: str, ending: TaskStatus) -> Coroutine[Any, Any, Any]:
        journal, image = self.journal, f"https://example.com/{key}.png"
        match call:
            case "detected":
                return journal.detected(
                    key, image=image, driven_id="mengwa_kaixin", face_bbox=FACE, ext_bbox=EXT
                )
            case "rejected":
                return journal.rejected(
                    key, image=image, driven_id="mengwa_kaixin", code="InvalidFile", message="no"
                )
            case "submitting":
                return journal.submitting(
                    key, image=image, driven_id="mengwa_kaixin", face_bbox=FACE, ext_bbox=EXT
                )
            case "submitted":
                return journal.submitted(key, task_id=f"task-{key}")
            case "uncertain":
                return journal.uncertain(key, reason="ResponseLostError: reset")
            case "unsent":
                return journal.unsent(key, reason="ConnectError: refused")
            case "failed":
                return journal.failed(key, code="InvalidParameter", message="bad")
            case "finished":
                video = (
                    VideoResult(
                        task_id=f"task-{key}",
                        video_url="https://results.example.com/v.mp4",
                        video_duration=2,
                    )
                    if ending is TaskStatus.SUCCEEDED
                    else None
                )
                return journal.finished(key, status=ending, video=video, code=None)
            case _:
                return journal.downloaded(key, path=Path(self.folder.name) / f"{key}.mp4", size=9)

    @rule(
        key=st.sampled_from(["a", "b"]),
        call=st.sampled_from(sorted(FOLLOWS)),
        ending=st.sampled_from(ENDINGS),
    )
    def any_step(self, key: str, call: str, ending: TaskStatus) -> None:
        self._check(key, call, ending)

    @rule(key=st.sampled_from(["a", "b"]), pick=st.integers(0, 8), ending=st.sampled_from(ENDINGS))
    def a_documented_step(self, key: str, pick: int, ending: TaskStatus) -> None:
        """One of the steps the job's state allows, so runs reach the far states too."""
        entry = self.journal.get(key)
        state = None if entry is None else entry.state
        allowed = sorted(call for call, follows in FOLLOWS.items() if state in follows)
        if allowed:
            self._check(key, allowed[pick % len(allowed)], ending)

    def _check(self, key: str, call: str, ending: TaskStatus) -> None:
        before = self.journal.get(key)
        state = None if before is None else before.state
        history = self.journal.history(key)
        after = outcome(lambda: _run(self.loop, self._step(call, key, ending)), JournalError)
        if isinstance(after, JournalError):
            assert state not in FOLLOWS[call], f"{call} after {state} was refused: {after}"
            assert self.journal.get(key) == before  # a refused step writes nothing
            assert self.journal.history(key) == history
            return
        assert state in FOLLOWS[call], f"{call} after {state} was recorded"
        assert forward(state, after.state), f"{call} moved {key} from {state} to {after.state}"
        assert self.journal.get(key) == after

    @rule()
    def a_rerun_reopens_the_file(self) -> None:
        entries = self.journal.entries()
        _run(self.loop, self.journal.aclose())
        self.journal = _run(self.loop, Journal.open(self.path))
        assert self.journal.entries() == entries

    @invariant()
    def every_recorded_history_runs_forward(self) -> None:
        for entry in self.journal.entries():
            states = [state for state, _ in self.journal.history(entry.key)]
            assert states[-1] is entry.state
            previous: JobState | None = None
            for state in states:
                assert forward(previous, state), f"{entry.key}: {states}"
                previous = state

    def teardown(self) -> None:
        _run(self.loop, self.journal.aclose())
        _close_loop(self.loop)
        self.folder.cleanup()


def test_the_journal_refuses_every_backward_step_and_records_every_documented_one() -> None:
    run_state_machine_as_test(JournalMachine, settings=MACHINE)

"""The jobs file: both syntaxes read alike, and every bad line is named before any request."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoji_async import BBox, EmojiJob, Lane
from emoji_async.cli._jobsfile import JobsFileError, load_jobs
from tests.conftest import KEY, batch, serve_in_thread, sim_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"

HEADER = "image,driven_id,key,face_bbox,ext_bbox\n"
IMG = "https://example.com/p/ada.png"
GOOD_CSV_ROW = f"{IMG},mengwa_kaixin,ada,212 194 460 441,63 30 609 575\n"
GOOD_JSON_ROW = (
    f'{{"image": "{IMG}", "driven_id": "mengwa_kaixin", "key": "ada", '
    '"face_bbox": [212, 194, 460, 441], "ext_bbox": [63, 30, 609, 575]}\n'
)


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_and_a_jsonl_file_with_the_same_jobs_read_the_same(tmp_path: Path) -> None:
    csv_text = (
        HEADER
        + GOOD_CSV_ROW
        + "\n"  # blank lines are skipped
        + "https://example.com/p/alan.png,dagong_weixiao,,,\n"
        + 'https://example.com/p/grace.png,jingdian_qidai,"grace, hopper",,\n'
    )
    jsonl_text = (
        GOOD_JSON_ROW
        + "\n"
        + '{"image": "https://example.com/p/alan.png", "driven_id": "dagong_weixiao", '
        + '"key": null}\n'
        + '{"image": "https://example.com/p/grace.png", "driven_id": "jingdian_qidai", '
        + '"key": "grace, hopper"}\n'
    )
    from_csv = load_jobs(_write(tmp_path, "jobs.csv", csv_text))
    from_jsonl = load_jobs(_write(tmp_path, "jobs.jsonl", jsonl_text))
    assert from_csv == from_jsonl
    assert from_csv[0] == EmojiJob(
        IMG,
        "mengwa_kaixin",
        face_bbox=BBox(212, 194, 460, 441),
        ext_bbox=BBox(63, 30, 609, 575),
        key="ada",
    )
    assert from_csv[1].key is None
    assert from_csv[1].face_bbox is None


def test_csv_columns_may_come_in_any_order_and_an_empty_cell_is_absent(
    tmp_path: Path,
) -> None:
    text = "driven_id , image,key\nmengwa_kaixin,https://example.com/a.png,\n"
    (job,) = load_jobs(_write(tmp_path, "jobs.csv", text))
    assert job == EmojiJob("https://example.com/a.png", "mengwa_kaixin")


def test_boxes_that_do_not_nest_are_read_as_given(tmp_path: Path) -> None:
    # The provider never promises that the extended box contains the face box.
    text = HEADER + f"{IMG},mengwa_kaixin,a,10 10 50 50,20 20 40 40\n"
    (job,) = load_jobs(_write(tmp_path, "jobs.csv", text))
    assert (job.face_bbox, job.ext_bbox) == (BBox(10, 10, 50, 50), BBox(20, 20, 40, 40))


@pytest.mark.parametrize(
    ("row", "cells"),
    [
        pytest.param(f"{IMG},mengwa_kaixin,ada\n", 3, id="short"),
        pytest.param(f"{IMG},mengwa_kaixin,ada,,,\n", 6, id="long"),
    ],
)
def test_a_csv_row_with_fewer_or_more_cells_than_the_header_is_refused_with_both_counts(
    tmp_path: Path, row: str, cells: int
) -> None:
    path = _write(tmp_path, "jobs.csv", HEADER + GOOD_CSV_ROW + row)
    with pytest.raises(JobsFileError) as caught:
        load_jobs(path)
    assert caught.value.line == 3
    assert str(caught.value).startswith(f"{path}:3: {cells} cells, but the header names 5 columns")


def test_a_byte_order_mark_from_a_spreadsheet_is_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path, "jobs.csv", ("\ufeff" + HEADER + GOOD_CSV_ROW).encode())
    assert [job.key for job in load_jobs(path)] == ["ada"]


@pytest.mark.parametrize("name", ["jobs.csv", "jobs.jsonl"])
def test_the_documented_example_files_are_valid_and_hold_the_same_jobs(name: str) -> None:
    jobs = load_jobs(EXAMPLES / name)
    assert len(jobs) >= 4
    assert jobs == load_jobs(EXAMPLES / "jobs.csv")


CSV_PROBLEMS = [
    pytest.param("image,template\n" + GOOD_CSV_ROW, 1, None, "unknown column", id="unknown-column"),
    pytest.param(
        "image,key\nhttps://example.com/a.png,a\n", 1, None, "no 'driven_id'", id="no-col"
    ),
    pytest.param("image,driven_id,image\n", 1, None, "appears twice", id="twice"),
    pytest.param(HEADER + ",mengwa_kaixin,,,\n", 2, "image", "missing", id="no-image"),
    pytest.param(HEADER + "ftp://x/a.png,mengwa_kaixin,,,\n", 2, "image", "https://", id="scheme"),
    pytest.param(HEADER + f"{IMG},mengwa_happy,,,\n", 2, "driven_id", "template id", id="template"),
    pytest.param(HEADER + f"{IMG},mengwa_kaixin,a,1 2 3,4 5 6 7\n", 2, "face_bbox", "four", id="3"),
    pytest.param(
        HEADER + f'{IMG},mengwa_kaixin,a,"1,2,3,4",0 0 9 9\n', 2, "face_bbox", "spaces", id="comma"
    ),
    pytest.param(HEADER + f"{IMG},mengwa_kaixin,a,1 2 x 4,0 0 9 9\n", 2, "face_bbox", "", id="x"),
    pytest.param(
        HEADER + f"{IMG},mengwa_kaixin,a,9 2 3 4,0 0 9 9\n", 2, "face_bbox", "x1 <", id="o"
    ),
    pytest.param(HEADER + f"{IMG},mengwa_kaixin,a,1 2 3 4,\n", 2, "ext_bbox", "together", id="one"),
    pytest.param(
        HEADER + GOOD_CSV_ROW + "https://example.com/b.png,dagong_kaixin,ada,,\n",
        3,
        "key",
        "same key as line 2",
        id="duplicate-key",
    ),
    pytest.param(
        HEADER + f"{IMG},mengwa_kaixin,,,\n\n{IMG},mengwa_kaixin,,,\n",
        4,
        "key",
        "same job as line 2",
        id="duplicate-job",
    ),
    pytest.param(HEADER + f"{IMG},mengwa_kaixin,a,,,extra\n", 2, None, "6 cells", id="cells"),
    pytest.param(HEADER + f'{IMG},mengwa_kaixin,"ada\n', 2, None, "not valid CSV", id="quote"),
    pytest.param("", None, None, "empty file", id="empty"),
    pytest.param(HEADER, None, None, "no jobs", id="header-only"),
]


@pytest.mark.parametrize(("text", "line", "field", "words"), CSV_PROBLEMS)
def test_a_bad_csv_file_is_refused_naming_the_line_and_the_field(
    tmp_path: Path, text: str, line: int | None, field: str | None, words: str
) -> None:
    path = _write(tmp_path, "jobs.csv", text)
    with pytest.raises(JobsFileError) as caught:
        load_jobs(path)
    assert (caught.value.line, caught.value.field) == (line, field)
    assert words in str(caught.value)
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert str(caught.value).startswith(where + (f"{field}: " if field else ""))


JSONL_PROBLEMS = [
    pytest.param(GOOD_JSON_ROW + '{"image": \n', 2, None, "not valid JSON", id="json"),
    pytest.param(f'["{IMG}", "mengwa_kaixin"]\n', 1, None, "JSON object", id="list"),
    pytest.param(
        f'{{"image": "{IMG}", "driven_id": "mengwa_kaixin", "face_box": [1, 2, 3, 4]}}\n',
        1,
        None,
        "unknown field 'face_box'",
        id="unknown-field",
    ),
    pytest.param('{"image": 7, "driven_id": "mengwa_kaixin"}\n', 1, "image", "got 7", id="int"),
    pytest.param(f'{{"image": "{IMG}"}}\n', 1, "driven_id", "missing", id="no-template"),
    pytest.param(
        f'{{"image": "{IMG}", "driven_id": "mengwa_kaixin", "face_bbox": "1 2 3 4", '
        '"ext_bbox": [0, 0, 9, 9]}\n',
        1,
        "face_bbox",
        "a list of four",
        id="box-as-text",
    ),
    pytest.param(
        f'{{"image": "{IMG}", "driven_id": "mengwa_kaixin", "face_bbox": [1, 2, 3.5, 4], '
        '"ext_bbox": [0, 0, 9, 9]}\n',
        1,
        "face_bbox",
        "whole numbers",
        id="float",
    ),
    pytest.param(
        f'{{"image": "{IMG}", "driven_id": "mengwa_kaixin", "face_bbox": [1, 2, 3, 4], '
        '"ext_bbox": [0, 0, true, 9]}\n',
        1,
        "ext_bbox",
        "whole numbers",
        id="bool",
    ),
    pytest.param(
        f'{{"image": "{IMG}", "driven_id": "mengwa_kaixin", "key": ""}}\n',
        1,
        "key",
        "non-empty",
        id="empty-key",
    ),
    pytest.param(
        f'{{"image": "{IMG}", "driven_id": "mengwa_kaixin", "key": 12}}\n',
        1,
        "key",
        "non-empty text",
        id="int-key",
    ),
]


@pytest.mark.parametrize(("text", "line", "field", "words"), JSONL_PROBLEMS)
def test_a_bad_jsonl_file_is_refused_naming_the_line_and_the_field(
    tmp_path: Path, text: str, line: int | None, field: str | None, words: str
) -> None:
    with pytest.raises(JobsFileError) as caught:
        load_jobs(_write(tmp_path, "jobs.jsonl", text))
    assert (caught.value.line, caught.value.field) == (line, field)
    assert words in str(caught.value)


def test_a_file_that_is_not_utf8_or_not_csv_or_jsonl_or_missing_is_refused(
    tmp_path: Path,
) -> None:
    with pytest.raises(JobsFileError, match="not UTF-8"):
        load_jobs(_write(tmp_path, "jobs.csv", b"image,driven_id\n\xff\xfe,x\n"))
    with pytest.raises(JobsFileError, match=r"\.csv or \.jsonl"):
        load_jobs(_write(tmp_path, "jobs.txt", HEADER + GOOD_CSV_ROW))
    with pytest.raises(JobsFileError, match="cannot read it"):
        load_jobs(tmp_path / "absent.csv")


def test_a_bad_jobs_file_exits_2_with_one_line_and_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    # Good jobs first: the bad line at the end must stop the batch before any of them is sent.
    text = HEADER + "".join(
        f"https://example.com/p/{n}.png,mengwa_kaixin,{n},,\n" for n in range(5)
    )
    jobs = _write(tmp_path, "jobs.csv", text + f"{IMG},mengwa_kaixin,late,1 2 3,4 5 6 7\n")
    with serve_in_thread(sim_config()) as server:
        status = batch(server, tmp_path, jobs)
        assert server.simulator.requests == []
    assert status == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"emoji-async: error: {jobs}:7: face_bbox: expected four whole numbers x1 y1 x2 y2 "
        "separated by spaces, e.g. '212 194 460 441', with x1 < x2 and y1 < y2; got '1 2 3'"
    ]
    assert not (tmp_path / "batch.db").exists()
    assert not (tmp_path / "videos").exists()


def test_a_long_image_path_in_an_error_keeps_its_file_name_and_is_cut_in_the_middle(
    tmp_path: Path,
) -> None:
    missing = tmp_path / ("long-folder-name-" * 4) / ("deeper-still-" * 4) / "portrait-of-ada.png"
    path = _write(tmp_path, "jobs.csv", HEADER + f"{missing},mengwa_kaixin,ada,,\n")
    with pytest.raises(JobsFileError) as caught:
        load_jobs(path)
    got = str(caught.value).partition(", got ")[2]
    assert got.startswith(repr(str(missing)[:20]).rstrip("'"))
    assert got.endswith("/portrait-of-ada.png'")
    assert "..." in got
    assert len(got) <= 80 + 2  # the quotes


def test_a_job_may_name_its_lane_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    text = (
        "image,driven_id,key,lane\n"
        f"{IMG},mengwa_kaixin,a,interactive\n"
        f"{IMG},mengwa_kaixin,b,bulk\n"
        f"{IMG},mengwa_kaixin,c,\n"
    )
    jobs = load_jobs(_write(tmp_path, "jobs.csv", text))
    assert [job.lane for job in jobs] == [Lane.INTERACTIVE, Lane.BULK, None]
    bad = _write(
        tmp_path,
        "bad.jsonl",
        f'{{"image": "{IMG}", "driven_id": "mengwa_kaixin", "lane": "now"}}\n',
    )
    with pytest.raises(JobsFileError) as caught:
        load_jobs(bad)
    assert (caught.value.line, caught.value.field) == (1, "lane")
    assert "expected one of interactive, bulk, got 'now'" in str(caught.value)

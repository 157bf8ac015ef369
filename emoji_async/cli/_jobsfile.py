"""Reading a batch's jobs file (``.csv`` or ``.jsonl``) into :class:`EmojiJob` values.

The whole file is read and checked before anything is sent, so a typo on line
40 costs nothing. Each problem is one :class:`JobsFileError` naming the file,
the line and the field.

CSV: a header row naming the columns, then one job per row::

    image,driven_id,key,face_bbox,ext_bbox
    https://example.com/ada.png,mengwa_kaixin,ada,212 194 460 441,63 30 609 575
    https://example.com/alan.png,dagong_weixiao,,,

JSONL: one JSON object per line, boxes as lists::

    {"image": "https://example.com/ada.png", "driven_id": "mengwa_kaixin", "key": "ada",
     "face_bbox": [212, 194, 460, 441], "ext_bbox": [63, 30, 609, 575]}

``image`` and ``driven_id`` are required. ``image`` is a URL or a local file
(a path, or a ``file://`` URI); a relative path is taken from the jobs file's
own directory, and each file is checked (size, format, resolution) along with
the rest, so a missing portrait costs nothing either. ``key`` names the job
in the journal and its video file (derived from the inputs when absent);
``face_bbox`` and ``ext_bbox`` come together or not at all (without them the
face is detected first). In CSV a box is four whole numbers separated by
spaces, an empty cell means "absent", and every row has as many cells as the
header has columns (a shorter or longer one is refused: a lost comma would
shift the cells after it). Blank lines are skipped. Unknown columns or fields
are refused, so a misspelt ``face_box`` is not silently ignored. ``lane``
(``interactive`` or ``bulk``; empty or absent: the batch's ``--lane``) puts one
job in another lane than the rest.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from .. import (
    BBox,
    EmojiJob,
    Lane,
    ValidationError,
    check_image,
    file_name_for,
    shown,
    templates,
)

__all__ = ["FIELDS", "JobsFileError", "load_jobs"]

#: Every field a job may have, in the order the docs list them.
FIELDS = ("image", "driven_id", "key", "face_bbox", "ext_bbox", "lane")
_REQUIRED = ("image", "driven_id")
_BOX_FORM = "four whole numbers x1 y1 x2 y2 separated by spaces, e.g. '212 194 460 441'"
_BOX_LIST = "a list of four whole numbers [x1, y1, x2, y2]"
_MAX_KEY = 512
_CSV_BOX = re.compile(r"[0-9]+")
_LANES = tuple(lane.value for lane in Lane)
#: The ids a job may name: the 20 templates ('emoji-async templates' lists them).
_TEMPLATE_IDS = frozenset(info.driven_id for info in templates())


class JobsFileError(Exception):
    """A jobs file that cannot be used, with where and why: ``file:line: field: problem``."""

    def __init__(
        self, path: Path, problem: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        where = str(path) if line is None else f"{path}:{line}"
        what = problem if field is None else f"{field}: {problem}"
        super().__init__(f"{where}: {what}")
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem


def load_jobs(path: Path) -> list[EmojiJob]:
    """Every job of ``path``, checked; :class:`JobsFileError` at the first problem."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise JobsFileError(path, "a jobs file must end in .csv or .jsonl")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise JobsFileError(path, "not UTF-8 text") from None
    except OSError as exc:
        raise JobsFileError(path, f"cannot read it: {exc.strerror or exc}") from None
    is_csv = suffix == ".csv"
    rows = _csv_rows(path, text) if is_csv else _jsonl_rows(path, text)
    jobs: list[EmojiJob] = []
    seen: dict[str, tuple[int, str]] = {}
    images: dict[str, str] = {}
    for line, fields in rows:
        job = _job(path, line, fields, boxes_as_text=is_csv, images=images)
        key = job.resolved_key
        name = file_name_for(key)
        if name in seen:
            first_line, first_key = seen[name]
            problem = (
                f"the same key as line {first_line} ({first_key!r}): give each job its own key"
                if job.key is not None
                else f"the same job as line {first_line}"
            )
            raise JobsFileError(path, problem, line=line, field="key")
        seen[name] = (line, key)
        jobs.append(job)
    if not jobs:
        raise JobsFileError(path, "no jobs in the file")
    return jobs


# --- the two syntaxes: each yields (line number, {field: raw value}) ------------------


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, object]]]:
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise JobsFileError(path, "empty file: expected a header row such as image,driven_id")
        columns = [name.strip() for name in header]
        for name in columns:
            if name not in FIELDS:
                raise JobsFileError(
                    path, f"unknown column {name!r} (known: {', '.join(FIELDS)})", line=1
                )
            if columns.count(name) > 1:
                raise JobsFileError(path, f"column {name!r} appears twice", line=1)
        for name in _REQUIRED:
            if name not in columns:
                raise JobsFileError(path, f"the header has no {name!r} column", line=1)
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            # A short row is refused like a long one: a cell lost before the end would
            # shift the rest into the wrong columns, and nothing tells which one it was.
            if len(cells) != len(columns):
                raise JobsFileError(
                    path,
                    f"{len(cells)} cells, but the header names {len(columns)} columns"
                    " (an absent value is an empty cell: keep its comma)",
                    line=line,
                )
            # A cell left empty is absent.
            pairs = zip(columns, cells, strict=True)
            yield line, {name: cell.strip() for name, cell in pairs if cell.strip()}
    except csv.Error as exc:
        raise JobsFileError(path, f"not valid CSV: {exc}", line=reader.line_num) from None


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, object]]]:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise JobsFileError(path, f"not valid JSON: {exc.msg}", line=line) from None
        if not isinstance(value, dict):
            raise JobsFileError(path, "expected one JSON object per line", line=line)
        for name in value:
            if name not in FIELDS:
                raise JobsFileError(
                    path, f"unknown field {name!r} (known: {', '.join(FIELDS)})", line=line
                )
        # null is the JSON spelling of "absent".
        yield line, {name: v for name, v in value.items() if v is not None}


# --- one job: the same checks whatever the syntax ----------------------------------


def _job(
    path: Path,
    line: int,
    fields: Mapping[str, object],
    *,
    boxes_as_text: bool,
    images: dict[str, str],
) -> EmojiJob:
    def fail(field: str, problem: str) -> JobsFileError:
        return JobsFileError(path, problem, line=line, field=field)

    for name in _REQUIRED:
        if name not in fields:
            raise fail(name, "missing (required)")
    image_url = _image(path, fields["image"], fail, images)
    driven_id = fields["driven_id"]
    if not isinstance(driven_id, str) or driven_id not in _TEMPLATE_IDS:
        raise fail(
            "driven_id",
            f"expected a template id ('emoji-async templates' lists them), got {shown(driven_id)}",
        )
    key = fields.get("key")
    if key is not None and (not isinstance(key, str) or not key.strip() or len(key) > _MAX_KEY):
        raise fail("key", f"expected a non-empty text of at most {_MAX_KEY} characters")
    face = _box(fields.get("face_bbox"), "face_bbox", fail, as_text=boxes_as_text)
    ext = _box(fields.get("ext_bbox"), "ext_bbox", fail, as_text=boxes_as_text)
    if (face is None) != (ext is None):
        missing = "ext_bbox" if ext is None else "face_bbox"
        raise fail(missing, "missing: give face_bbox and ext_bbox together, or neither")
    lane = fields.get("lane")
    if lane == "":
        lane = None
    if lane is not None and lane not in _LANES:
        raise fail("lane", f"expected one of {', '.join(_LANES)}, got {shown(lane)}")
    return EmojiJob(
        image_url,
        driven_id,
        face_bbox=face,
        ext_bbox=ext,
        key=key,
        lane=None if lane is None else Lane(lane),
    )


def _image(
    path: Path, image: object, fail: Callable[[str, str], JobsFileError], images: dict[str, str]
) -> str:
    """A job's image as the client takes it: a URL as given, or a local file's absolute path.

    A relative path is the jobs file's directory's. A local file is read and checked
    once per spelling (``images``: those that passed, and what each became).
    """
    if isinstance(image, str) and image in images:
        return images[image]
    try:
        image_url = check_image(image, field="image", relative_to=path.parent)
    except ValidationError as exc:
        raise fail("image", f"expected {exc.allowed}, got {shown(exc.value)}") from None
    if isinstance(image, str):
        images[image] = image_url
    return image_url


def _box(
    value: object, field: str, fail: Callable[[str, str], JobsFileError], *, as_text: bool
) -> BBox | None:
    if value is None:
        return None
    if as_text:
        assert isinstance(value, str)  # a CSV cell
        form = _BOX_FORM
        parts = value.split()
        numbers: object = (
            [int(p) for p in parts] if all(_CSV_BOX.fullmatch(p) for p in parts) else None
        )
    else:
        form = _BOX_LIST
        numbers = value
    if not isinstance(numbers, list):
        raise fail(field, f"expected {form}; got {shown(value)}")
    try:
        return BBox.parse(numbers, field=field)
    except ValidationError:
        raise fail(
            field, f"expected {form}, with x1 < x2 and y1 < y2; got {shown(value)}"
        ) from None

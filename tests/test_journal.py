"""The journal records each job's life on disk, refuses steps out of order, and survives kill -9."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from pathlib import Path

import pytest

from emoji_async import BBox, JournalError, TaskStatus, ValidationError, VideoResult
from emoji_async import _journal_rules as journal_rules
from emoji_async._journal import JobState, Journal, JournalEntry
from emoji_async._journal_schema import SCHEMA_VERSION

KEY = "portrait-1"
IMAGE = "https://example.com/portrait-1.png"
DRIVEN = "mengwa_kaixin"
FACE = BBox(40, 40, 160, 160)
EXT = BBox(0, 0, 200, 200)
TASK = "task-0001"
CST = dt.timezone(dt.timedelta(hours=8))
VIDEO = VideoResult(
    task_id=TASK,
    video_url="https://results.example.com/task-0001.mp4?Expires=1&Signature=abc",
    video_duration=3,
    video_ratio="1:1",
    submit_time=dt.datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=CST),
    scheduled_time=dt.datetime(2025, 3, 1, 12, 0, 5, 1, tzinfo=CST),
    end_time=dt.datetime(2025, 3, 1, 4, 1, 0, tzinfo=dt.UTC),
    request_id="req-42",
)

Step = Callable[[Journal, str], Awaitable[JournalEntry]]


async def detect(journal: Journal, key: str) -> JournalEntry:
    return await journal.detected(key, image=IMAGE, driven_id=DRIVEN, face_bbox=FACE, ext_bbox=EXT)


async def reject(journal: Journal, key: str) -> JournalEntry:
    return await journal.rejected(
        key, image=IMAGE, driven_id=DRIVEN, code="InvalidFile.NoFace", message="no face"
    )


async def intend(journal: Journal, key: str) -> JournalEntry:
    return await journal.submitting(
        key, image=IMAGE, driven_id=DRIVEN, face_bbox=FACE, ext_bbox=EXT
    )


async def accept(journal: Journal, key: str) -> JournalEntry:
    return await journal.submitted(key, task_id=TASK)


async def lose(journal: Journal, key: str) -> JournalEntry:
    return await journal.uncertain(key, reason="read timeout after the submit was sent")


async def refuse(journal: Journal, key: str) -> JournalEntry:
    return await journal.failed(key, code="InvalidParameter", message="bad box")


async def succeed(journal: Journal, key: str) -> JournalEntry:
    return await journal.finished(key, status=TaskStatus.SUCCEEDED, video=VIDEO)


async def fail(journal: Journal, key: str) -> JournalEntry:
    return await journal.finished(
        key, status=TaskStatus.FAILED, code="InternalError", message="generation failed"
    )


async def cancel(journal: Journal, key: str) -> JournalEntry:
    return await journal.finished(key, status=TaskStatus.CANCELED)


async def vanish(journal: Journal, key: str) -> JournalEntry:
    return await journal.finished(key, status=TaskStatus.UNKNOWN)


async def save(journal: Journal, key: str) -> JournalEntry:
    return await journal.downloaded(key, path=Path("videos") / f"{key}.mp4", size=123_456)


def names(steps: list[Step]) -> str:
    return "-".join(step.__name__ for step in steps) or "new"


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    async with await Journal.open(tmp_path / "run.db") as opened:
        yield opened


async def reopened(path: Path) -> Journal:
    """A second, independent reading of the file."""
    return await Journal.open(path)


def on_disk(path: Path) -> dict[str, bytes]:
    """Every file SQLite keeps for the journal, byte for byte."""
    return {p.name: p.read_bytes() for p in path.parent.glob(path.name + "*")}


async def test_a_new_file_gets_the_schema_and_version_and_holds_no_jobs(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    async with await Journal.open(path) as journal:
        assert journal.path == path
        assert journal.entries() == []
        assert journal.get(KEY) is None
        assert journal.history(KEY) == []
    with closing(sqlite3.connect(path)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert tables == {"meta", "jobs", "transitions", "attempts", "sightings", "bills"}
    assert meta == {"format": "emoji_async journal", "schema_version": str(SCHEMA_VERSION)}
    assert mode == "wal"


LIVES: list[tuple[list[Step], JobState]] = [
    ([detect, intend, accept, succeed, save], JobState.DOWNLOADED),
    ([intend, accept, succeed], JobState.SUCCEEDED),
    ([reject], JobState.REJECTED),
    ([detect, reject], JobState.REJECTED),
    ([detect, intend, refuse], JobState.FAILED),
    ([intend, lose], JobState.UNCERTAIN),
    ([intend, lose, accept, cancel], JobState.CANCELED),
    ([intend, accept, fail], JobState.FAILED),
    ([intend, accept, vanish], JobState.UNKNOWN),
]


@pytest.mark.parametrize(("steps", "final"), LIVES, ids=[names(s) for s, _ in LIVES])
async def test_every_step_reads_back_the_same_after_reopening(
    tmp_path: Path, steps: list[Step], final: JobState
) -> None:
    path = tmp_path / "run.db"
    for done, step in enumerate(steps, start=1):
        async with await Journal.open(path) as journal:
            written = await step(journal, KEY)
            assert journal.get(KEY) == written
        async with await reopened(path) as again:
            assert again.get(KEY) == written
            assert again.entries() == [written]
            states = [state for state, _ in again.history(KEY)]
            assert len(states) == done
            assert states[-1] is written.state
    assert written.state is final
    assert final.is_finished is (final is not JobState.UNCERTAIN)


async def test_a_full_life_keeps_every_field_and_its_times_are_utc(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    async with await Journal.open(path) as journal:
        before = dt.datetime.now(dt.UTC)
        for step in (detect, intend, accept, succeed, save):
            await step(journal, KEY)
        after = dt.datetime.now(dt.UTC)
    async with await reopened(path) as again:
        entry = again.get(KEY)
        history = again.history(KEY)
    assert entry is not None
    assert (entry.key, entry.image, entry.driven_id) == (KEY, IMAGE, DRIVEN)
    assert (entry.face_bbox, entry.ext_bbox, entry.task_id) == (FACE, EXT, TASK)
    assert entry.video == VIDEO
    assert (entry.path, entry.size) == (Path("videos") / f"{KEY}.mp4", 123_456)
    assert (entry.code, entry.message) == (None, None)
    assert entry.intent_at is not None
    assert before <= entry.intent_at <= entry.updated_at <= after
    assert entry.intent_at.utcoffset() == entry.updated_at.utcoffset() == dt.timedelta(0)
    assert [state for state, _ in history] == [
        JobState.DETECTED,
        JobState.SUBMITTING,
        JobState.SUBMITTED,
        JobState.SUCCEEDED,
        JobState.DOWNLOADED,
    ]
    times = [at for _, at in history]
    assert times == sorted(times)
    assert times[-1] == entry.updated_at


async def test_an_uncertain_job_keeps_its_intent_time_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    async with await Journal.open(path) as journal:
        intent = await intend(journal, KEY)
        await lose(journal, KEY)
    async with await reopened(path) as again:
        entry = again.get(KEY)
    assert entry is not None
    assert entry.state is JobState.UNCERTAIN
    assert entry.intent_at == intent.intent_at
    assert entry.task_id is None
    assert entry.message == "read timeout after the submit was sent"


@pytest.mark.parametrize(
    "video",
    [
        VIDEO,
        VideoResult(task_id=TASK, video_url="https://results.example.com/v.mp4", video_duration=1),
    ],
    ids=["every-field", "only-required"],
)
async def test_a_video_result_round_trips_exactly_with_its_utc_offsets(
    tmp_path: Path, video: VideoResult
) -> None:
    path = tmp_path / "run.db"
    async with await Journal.open(path) as journal:
        await intend(journal, KEY)
        await accept(journal, KEY)
        await journal.finished(KEY, status=TaskStatus.SUCCEEDED, video=video)
    async with await reopened(path) as again:
        entry = again.get(KEY)
    assert entry is not None
    assert entry.video == video
    assert entry.video is not None
    for field in ("submit_time", "scheduled_time", "end_time"):
        read, written = getattr(entry.video, field), getattr(video, field)
        assert (read, None if read is None else read.utcoffset()) == (
            written,
            None if written is None else written.utcoffset(),
        )


ILLEGAL: list[tuple[list[Step], Step]] = [
    ([], accept),
    ([], lose),
    ([], refuse),
    ([], succeed),
    ([], save),
    ([detect], detect),
    ([detect], accept),
    ([intend], intend),
    ([intend], detect),
    ([intend], reject),
    ([intend], succeed),
    ([intend, accept], accept),
    ([intend, accept], intend),
    ([intend, accept], lose),
    ([intend, accept], refuse),
    ([intend, accept], save),
    ([intend, lose], lose),
    ([intend, lose], intend),
    ([intend, lose], succeed),
    ([intend, accept, fail], succeed),
    ([intend, accept, succeed], succeed),
    ([intend, accept, succeed, save], save),
    ([intend, accept, succeed, save], succeed),
    ([reject], intend),
]


@pytest.mark.parametrize(
    ("before", "step"), ILLEGAL, ids=[f"{names(b)}-then-{s.__name__}" for b, s in ILLEGAL]
)
async def test_a_step_out_of_order_is_refused_and_the_file_is_unchanged(
    tmp_path: Path, before: list[Step], step: Step
) -> None:
    path = tmp_path / "run.db"
    async with await Journal.open(path) as journal:
        for earlier in before:
            await earlier(journal, KEY)
        entry, history, files = journal.get(KEY), journal.history(KEY), on_disk(path)
        with pytest.raises(JournalError, match="cannot record") as caught:
            await step(journal, KEY)
        assert caught.value.key == KEY
        assert KEY in str(caught.value)
        assert on_disk(path) == files
        assert (journal.get(KEY), journal.history(KEY)) == (entry, history)
    async with await reopened(path) as again:
        assert (again.get(KEY), again.history(KEY)) == (entry, history)


async def test_a_key_recorded_with_another_image_is_refused_naming_both(
    journal: Journal,
) -> None:
    await detect(journal, KEY)
    with pytest.raises(JournalError) as caught:
        await journal.submitting(
            KEY,
            image="https://example.com/other.png",
            driven_id=DRIVEN,
            face_bbox=FACE,
            ext_bbox=EXT,
        )
    message = str(caught.value)
    assert KEY in message
    assert IMAGE in message
    assert "https://example.com/other.png" in message
    assert journal.get(KEY) is not None
    assert journal.history(KEY)[-1][0] is JobState.DETECTED


async def test_a_key_recorded_with_another_template_is_refused_naming_both(
    journal: Journal,
) -> None:
    await intend(journal, KEY)
    with pytest.raises(JournalError) as caught:
        journal.resume(KEY, image=IMAGE, driven_id="other_template")
    assert KEY in str(caught.value)
    assert DRIVEN in str(caught.value)
    assert "other_template" in str(caught.value)
    resumed = journal.resume(KEY, image=IMAGE, driven_id=DRIVEN)
    assert resumed is not None
    assert resumed.state is JobState.SUBMITTING
    assert journal.resume("never-seen", image=IMAGE, driven_id=DRIVEN) is None


async def test_submitting_with_boxes_other_than_the_detected_ones_is_refused(
    journal: Journal,
) -> None:
    await detect(journal, KEY)
    with pytest.raises(JournalError, match="detected with"):
        await journal.submitting(
            KEY, image=IMAGE, driven_id=DRIVEN, face_bbox=BBox(0, 0, 10, 10), ext_bbox=EXT
        )
    assert [state for state, _ in journal.history(KEY)] == [JobState.DETECTED]


async def test_finished_wants_a_video_exactly_when_the_task_succeeded(journal: Journal) -> None:
    await intend(journal, KEY)
    await accept(journal, KEY)
    with pytest.raises(ValidationError, match="video"):
        await journal.finished(KEY, status=TaskStatus.SUCCEEDED)
    with pytest.raises(ValidationError, match="video"):
        await journal.finished(KEY, status=TaskStatus.FAILED, video=VIDEO)
    with pytest.raises(ValidationError, match="status"):
        await journal.finished(KEY, status=TaskStatus.RUNNING)
    other = VideoResult(task_id="task-other", video_url="https://x/v.mp4", video_duration=1)
    with pytest.raises(JournalError, match="task-other"):
        await journal.finished(KEY, status=TaskStatus.SUCCEEDED, video=other)
    entry = journal.get(KEY)
    assert entry is not None
    assert entry.state is JobState.SUBMITTED


async def test_two_hundred_jobs_written_concurrently_are_all_present_after_reopening(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.db"
    lives = [life for life, _ in LIVES]

    async def run(journal: Journal, index: int) -> None:
        for step in lives[index % len(lives)]:
            await step(journal, f"job-{index:03}")

    async with await Journal.open(path) as journal:
        await asyncio.gather(*(run(journal, index) for index in range(200)))
        written = journal.entries()
    async with await reopened(path) as again:
        assert again.entries() == written
        for index in range(200):
            key = f"job-{index:03}"
            life, final = LIVES[index % len(LIVES)]
            entry = again.get(key)
            assert entry is not None
            assert entry.state is final
            assert len(again.history(key)) == len(life)


async def test_a_cancelled_caller_still_has_its_step_recorded(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    async with await Journal.open(path) as journal:
        writing = asyncio.create_task(intend(journal, KEY))
        await asyncio.sleep(0)  # let the step reach the journal's thread
        writing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writing
    async with await reopened(path) as again:
        entry = again.get(KEY)
    assert entry is not None
    assert entry.state is JobState.SUBMITTING


async def test_an_open_cancelled_midway_lets_go_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    opening = asyncio.create_task(Journal.open(path))
    await asyncio.sleep(0)  # the open is now under way on the journal's thread
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    # The abandoned connection is closed just after the open it interrupted ends.
    for _ in range(200):
        try:
            journal = await Journal.open(path)
        except JournalError:
            await asyncio.sleep(0.01)
        else:
            break
    else:
        pytest.fail("the cancelled open kept the journal locked")
    await journal.aclose()


async def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the jobs you are looking for\n" * 100)
    files = on_disk(path)
    with pytest.raises(JournalError, match="not an emoji_async journal"):
        await Journal.open(path)
    assert on_disk(path) == files


async def test_an_sqlite_file_of_another_program_is_refused_and_left_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "other.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE songs (title TEXT)")
        db.commit()
    files = on_disk(path)
    with pytest.raises(JournalError, match=r"not an emoji_async journal.*songs"):
        await Journal.open(path)
    assert on_disk(path) == files


async def test_a_journal_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    async with await Journal.open(path) as journal:
        await intend(journal, KEY)
    with closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
        db.commit()
    with pytest.raises(JournalError, match="version 99") as caught:
        await Journal.open(path)
    assert caught.value.path == path


async def test_a_journal_in_use_cannot_be_opened_by_a_second_run(journal: Journal) -> None:
    await intend(journal, KEY)
    with pytest.raises(JournalError, match="in use"):
        await Journal.open(journal.path)
    assert (await accept(journal, KEY)).state is JobState.SUBMITTED


async def test_aclose_twice_is_harmless_and_steps_after_it_are_refused(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "run.db")
    await intend(journal, KEY)
    await journal.aclose()
    await journal.aclose()
    with pytest.raises(JournalError, match="closed"):
        await accept(journal, KEY)
    entry = journal.get(KEY)
    assert entry is not None
    assert entry.state is JobState.SUBMITTING


async def test_the_file_never_holds_the_api_key_of_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-journal-must-not-see-this"
    monkeypatch.setenv("DASHSCOPE_API_KEY", secret)
    path = tmp_path / "run.db"
    async with await Journal.open(path) as journal:
        for step in (detect, intend, accept, succeed, save):
            await step(journal, KEY)
        assert all(secret.encode() not in data for data in on_disk(path).values())
    assert all(secret.encode() not in data for data in on_disk(path).values())


# The child runs jobs eight at a time, forever, and prints each step once its
# write has returned; only the parent's SIGKILL stops it.
CHILD = """
import asyncio, sys
from emoji_async import BBox, TaskStatus
from emoji_async._journal import Journal

async def job(journal, key):
    box = dict(face_bbox=BBox(1, 1, 9, 9), ext_bbox=BBox(0, 0, 10, 10))
    await journal.submitting(key, image="https://example.com/" + key, driven_id="d", **box)
    print(key, "SUBMITTING", flush=True)
    await journal.submitted(key, task_id="t-" + key)
    print(key, "SUBMITTED", flush=True)
    await journal.finished(key, status=TaskStatus.CANCELED)
    print(key, "CANCELED", flush=True)

async def main(path, run):
    async with await Journal.open(path) as journal:
        batch = 0
        while True:
            keys = [f"{run}-{batch}-{n}" for n in range(8)]
            await asyncio.gather(*(job(journal, key) for key in keys))
            batch += 1

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def killed_after(path: Path, run: str, lines: int) -> list[tuple[str, str]]:
    """Run the child until it has reported ``lines`` writes, SIGKILL it, return every report."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(path),
        run,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stderr is not None
    reports: list[bytes] = []
    try:
        while len(reports) < lines:
            line = await asyncio.wait_for(child.stdout.readline(), timeout=15)
            if not line:
                break
            reports.append(line)
    finally:
        child.send_signal(signal.SIGKILL)
        rest, errors = await asyncio.gather(child.stdout.read(), child.stderr.read())
        await child.wait()
    assert child.returncode == -signal.SIGKILL, errors.decode()
    assert len(reports) == lines, errors.decode()
    # A report cut short by the kill was never complete, so it promises nothing.
    reports += [line for line in rest.splitlines(keepends=True) if line.endswith(b"\n")]
    pairs = [line.decode().split() for line in reports]
    return [(key, state) for key, state in pairs]


async def test_every_write_reported_before_a_sigkill_is_present_on_reopening(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.db"
    reported: list[tuple[str, str]] = []
    # Several kills at different points, each run reopening the file the last
    # one was killed over.
    for run, lines in (("a", 30), ("b", 77), ("c", 131)):
        reported += await killed_after(path, run, lines)
        async with await reopened(path) as again:
            for key, state in reported:
                assert JobState(state) in [s for s, _ in again.history(key)], (key, state)
                entry = again.get(key)
                assert entry is not None
                assert entry.task_id in (None, f"t-{key}")
            assert len({key for key, _ in reported}) <= len(again.entries())


async def test_an_unsent_submit_withdraws_the_intent_so_the_next_run_submits_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.db"
    face, ext = BBox(10, 10, 50, 50), BBox(0, 0, 60, 60)
    async with await Journal.open(path) as journal:
        await journal.submitting(
            "k",
            image="https://e.com/a.png",
            driven_id="mengwa_kaixin",
            face_bbox=face,
            ext_bbox=ext,
        )
        await journal.unsent("k", reason="ConnectError: refused")
    async with await Journal.open(path) as journal:
        entry = journal.get("k")
        assert entry is not None
        assert entry.state is JobState.DETECTED
        assert entry.intent_at is None
        assert (entry.face_bbox, entry.ext_bbox) == (face, ext)
        again = await journal.submitting(
            "k",
            image="https://e.com/a.png",
            driven_id="mengwa_kaixin",
            face_bbox=face,
            ext_bbox=ext,
        )
        assert again.state is JobState.SUBMITTING
        with pytest.raises(JournalError):
            await journal.unsent("other", reason="never submitted")


def test_the_step_table_in_the_docs_is_the_one_the_journal_enforces() -> None:
    doc = journal_rules.__doc__
    assert doc is not None
    table = doc.split("leads to\n", 1)[1].split("\n\n", 1)[0]
    documented = {}
    for line in table.splitlines():
        call, follows = line.split()[0], line[18:43].strip()
        documented[call] = frozenset(
            None if name == "(new)" else JobState(name) for name in follows.split(", ")
        )
    assert documented == dict(journal_rules._FOLLOWS)


async def test_every_paid_attempt_is_on_record_with_what_became_of_it(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    async with await Journal.open(path) as journal:
        await intend(journal, "sent-again")
        await lose(journal, "sent-again")
        await journal.resubmitting("sent-again", reason="no task of it could be proved")
        await accept(journal, "sent-again")
        await intend(journal, "refused")
        await refuse(journal, "refused")
        await intend(journal, "never-seen")
        await lose(journal, "never-seen")
        await journal.unsent("never-seen", reason="no task appeared", proven=False)
        await intend(journal, "throttled")
        await journal.unsent("throttled", reason="429")
        await intend(journal, "killed")
        await journal.sighted([("t-1", 1_700_000_000.0), ("t-2", 1_700_000_001.0)])
        await journal.orphaned("t-2")
        live = [(a.key, a.state, a.task_id) for a in journal.attempts()]
    async with await reopened(path) as journal:
        stored = [(a.key, a.state, a.task_id) for a in journal.attempts()]
        sightings = sorted(journal.sightings())
    assert (
        live
        == stored
        == [
            ("sent-again", "ghost", None),  # lost, then sent again: it may still be processed
            ("sent-again", "created", TASK),
            ("refused", "none", None),
            ("never-seen", "ghost", None),
            ("throttled", "none", None),
            ("killed", "open", None),  # the next run settles it
        ]
    )
    assert [(t, seen.timestamp(), orphan) for t, seen, orphan in sightings] == [
        ("t-1", 1_700_000_000.0, False),
        ("t-2", 1_700_000_001.0, True),
    ]


async def test_a_version_2_journal_learns_its_unknown_attempts_from_its_history(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    async with await Journal.open(path) as journal:
        await intend(journal, "ghosted")
        await lose(journal, "ghosted")
        await journal.resubmitting("ghosted", reason="none appeared")
        await accept(journal, "ghosted")
        await intend(journal, "left")
    with closing(sqlite3.connect(path)) as db:  # as version 2 left it: no attempts recorded
        db.executescript(
            "DROP TABLE attempts; DROP TABLE sightings; DROP TABLE bills;"
            " UPDATE meta SET value = '2' WHERE name = 'schema_version';"
        )
    async with await Journal.open(path) as journal:
        attempts = [(a.key, a.state) for a in journal.attempts()]
    assert attempts == [("ghosted", "ghost"), ("left", "open")]


async def test_a_journal_remembers_the_jobs_file_it_belongs_to_across_reopening(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.db"
    async with await Journal.open(path) as journal:
        assert journal.jobs_file is None  # a new journal, as the library makes it, names none
        await journal.record_jobs_file(tmp_path / "jobs.csv")
        assert journal.jobs_file == tmp_path / "jobs.csv"
    async with await Journal.open(path) as journal:
        assert journal.jobs_file == tmp_path / "jobs.csv"
        await journal.record_jobs_file(tmp_path / "moved.csv")
    async with await Journal.open(path) as journal:
        assert journal.jobs_file == tmp_path / "moved.csv"
    with closing(sqlite3.connect(path)) as db:  # a row of meta, in the same schema version
        meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
    assert meta == {
        "format": "emoji_async journal",
        "schema_version": str(SCHEMA_VERSION),
        "jobs_file": str(tmp_path / "moved.csv"),
    }


async def test_a_journal_upgraded_from_version_2_keeps_its_jobs_file(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    async with await Journal.open(path) as journal:
        await journal.record_jobs_file(tmp_path / "jobs.csv")
        await intend(journal, "left")
    with closing(sqlite3.connect(path)) as db:  # as version 2 left it
        db.executescript(
            "DROP TABLE attempts; DROP TABLE sightings; DROP TABLE bills;"
            " UPDATE meta SET value = '2' WHERE name = 'schema_version';"
        )
    async with await Journal.open(path) as journal:
        assert journal.jobs_file == tmp_path / "jobs.csv"
        assert [(a.key, a.state) for a in journal.attempts()] == [("left", "open")]


def test_every_step_of_the_table_is_a_rule_and_a_call_of_the_journal() -> None:
    for call in journal_rules._FOLLOWS:
        assert callable(getattr(journal_rules, call)), call
        assert callable(getattr(Journal, call)), call

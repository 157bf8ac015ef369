"""A batch given ``jobs_file=`` binds its journal to that file: another file is refused first."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoji_async import EmojiJob, JournalError, ValidationError
from emoji_async._batch_options import BatchOptions
from emoji_async._journal import Journal
from tests.conftest import running, sim_config

ADA = EmojiJob("https://example.com/p/ada.png", "mengwa_kaixin", key="ada")
GRACE = EmojiJob("https://example.com/p/grace.png", "dagong_weixiao", key="grace")


def jobs_file(path: Path, *jobs: EmojiJob) -> Path:
    """A file standing for the jobs read from it (the batch reads only its path), resolved."""
    path.write_text("".join(f"{job.image},{job.driven_id},{job.key}\n" for job in jobs), "utf-8")
    return path.resolve()


async def recorded(journal: Path) -> Path | None:
    async with await Journal.open(journal) as opened:
        return opened.jobs_file


async def test_a_journal_that_names_no_jobs_file_records_the_one_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "run.db"
    given = jobs_file(tmp_path / "jobs.csv", ADA)
    monkeypatch.chdir(tmp_path)
    async with running(sim_config()) as (_, client):
        (outcome,) = await client.generate_many([ADA], journal=journal)
        assert outcome.ok
        assert await recorded(journal) is None
        # A relative name is recorded as the file it names, resolved.
        (again,) = await client.generate_many([ADA], journal=journal, jobs_file="jobs.csv")
    assert again.ok
    assert again.resumed
    assert await recorded(journal) == given


async def test_a_journal_recorded_for_another_jobs_file_is_refused_before_any_request(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "run.db"
    first = jobs_file(tmp_path / "first.csv", ADA)
    other = jobs_file(tmp_path / "other.csv", GRACE)
    async with running(sim_config()) as (sim, client):
        await client.generate_many([ADA], journal=journal, jobs_file=first)
        requests = len(sim.requests)
        with pytest.raises(JournalError) as caught:
            await client.generate_many(
                [GRACE], journal=journal, jobs_file=other, download_to=tmp_path / "videos"
            )
        assert len(sim.requests) == requests
        assert not (tmp_path / "videos").exists()
        assert sim.stats.tasks_created == 1
        # The journal was let go: the same file is taken again at once.
        (outcome,) = await client.generate_many([ADA], journal=journal, jobs_file=first)
    assert outcome.resumed
    error = caught.value
    assert (error.path, error.jobs_file, error.key) == (journal, first, None)
    assert str(error) == (
        f"journal {str(journal)!r}: belongs to the jobs file {first}, not {other}: one journal"
        " records one jobs file's jobs (give other.csv a journal of its own)"
    )
    assert await recorded(journal) == first


async def test_a_moved_jobs_file_keeps_its_journal_which_records_the_new_place(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "run.db"
    given = jobs_file(tmp_path / "jobs.csv", ADA)
    async with running(sim_config()) as (sim, client):
        await client.generate_many([ADA], journal=journal, jobs_file=given)
        moved = given.rename(tmp_path / "renamed.csv")
        (outcome,) = await client.generate_many([ADA], journal=journal, jobs_file=moved)
        assert outcome.resumed
        assert await recorded(journal) == moved
        # The old path, now another file with other jobs, is no longer the journal's.
        jobs_file(given, GRACE)
        with pytest.raises(JournalError, match=f"belongs to the jobs file {moved}, not {given}"):
            await client.generate_many([GRACE], journal=journal, jobs_file=given)
    assert sim.stats.tasks_created == 1


async def test_a_jobs_file_gone_without_its_jobs_is_no_move_and_is_refused(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "run.db"
    given = jobs_file(tmp_path / "jobs.csv", ADA)
    async with running(sim_config()) as (_, client):
        await client.generate_many([ADA], journal=journal, jobs_file=given)
        given.unlink()
        other = jobs_file(tmp_path / "other.csv", GRACE)
        with pytest.raises(JournalError) as caught:
            await client.generate_many([GRACE], journal=journal, jobs_file=other)
    assert caught.value.jobs_file == given
    assert (
        f": belongs to the jobs file {given}, not {other} (moved? this file lacks jobs the"
        " journal holds): one journal records"
    ) in str(caught.value)


async def test_as_completed_refuses_a_journal_of_another_jobs_file_too(tmp_path: Path) -> None:
    journal = tmp_path / "run.db"
    first = jobs_file(tmp_path / "first.csv", ADA)
    other = jobs_file(tmp_path / "other.csv", GRACE)
    async with running(sim_config()) as (_, client):
        async for outcome in client.as_completed([ADA], journal=journal, jobs_file=first):
            assert outcome.ok
        with pytest.raises(JournalError, match="belongs to the jobs file"):
            async for _ in client.as_completed([GRACE], journal=journal, jobs_file=other):
                pass


def test_a_jobs_file_without_a_journal_is_refused_when_the_options_are_built() -> None:
    with pytest.raises(ValidationError, match="jobs_file"):
        BatchOptions(jobs_file="jobs.csv")
    assert BatchOptions(journal="run.db", jobs_file="jobs.csv").jobs_file == Path("jobs.csv")


async def test_generate_many_refuses_a_jobs_file_without_a_journal_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    async with running(sim_config()) as (sim, client):
        with pytest.raises(ValidationError, match="jobs_file"):
            await client.generate_many([ADA], jobs_file=tmp_path / "jobs.csv")
        assert sim.requests == []


async def test_a_journal_refused_for_another_reason_names_no_jobs_file(tmp_path: Path) -> None:
    journal = tmp_path / "run.db"
    given = jobs_file(tmp_path / "jobs.csv", ADA)
    async with running(sim_config()) as (_, client), await Journal.open(journal):
        with pytest.raises(JournalError, match="in use") as caught:
            await client.generate_many([ADA], journal=journal, jobs_file=given)
    assert caught.value.jobs_file is None

"""A batch's downloads: a video whose fetch keeps failing for a while is fetched again later."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from emoji_async import DownloadError, EmojiJob
from emoji_async._batch_files import DOWNLOAD_ROUNDS
from emoji_async._journal import JobState, Journal
from emoji_async.testing import Fault, Simulator

from .conftest import rerun_client, running, sim_config


class _HostBack(logging.Handler):
    """Ends the video host's outage when the batch says it will fetch the video again."""

    def __init__(self, sim: Simulator) -> None:
        super().__init__(logging.WARNING)
        self.sim = sim
        self.rounds = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "fetching it again" in record.getMessage():
            self.rounds += 1
            self.sim.faults.clear()


async def test_a_download_failing_past_its_retry_deadline_is_fetched_again_later(
    tmp_path: Path,
) -> None:
    out = tmp_path / "videos"
    job = EmojiJob("https://example.com/p/ada.png", "mengwa_kaixin", key="ada")
    logger = logging.getLogger("emoji_async")
    async with running(sim_config()) as (sim, client):
        back = _HostBack(sim)
        logger.addHandler(back)
        try:
            # The host answers 503 until the batch gives the download up for now.
            sim.faults.add(Fault("download", "status", status=503, times=1_000_000))
            (outcome,) = await client.generate_many([job], download_to=out)
        finally:
            logger.removeHandler(back)
    assert outcome.error is None
    assert outcome.path is not None
    assert outcome.path.stat().st_size > 0
    assert back.rounds == 1
    # As the service recorded it: one task, made from this job's portrait, billed once,
    # and the video saved is that task's.
    [task] = sim.tasks()
    assert (task.image_url, task.status) == (job.image, "SUCCEEDED")
    assert outcome.video is not None
    assert outcome.video.task_id == task.task_id


async def test_a_download_that_never_comes_back_fails_after_its_rounds_and_a_rerun_fetches_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out, journal = tmp_path / "videos", tmp_path / "run.db"
    job = EmojiJob("https://example.com/p/ada.png", "mengwa_kaixin", key="ada")
    async with running(sim_config()) as (sim, client):
        sim.faults.add(Fault("download", "reset", times=1_000_000))
        with caplog.at_level(logging.WARNING, logger="emoji_async"):
            (first,) = await client.generate_many([job], download_to=out, journal=journal)
        assert isinstance(first.error, DownloadError)
        assert first.video is None
        sim.faults.clear()
        async with await Journal.open(journal) as kept:
            entry = kept.get("ada")
            assert entry is not None
            assert entry.state is JobState.SUCCEEDED
            assert entry.video is not None
        async with rerun_client(client) as again:
            (second,) = await again.generate_many([job], download_to=out, journal=journal)
        submits = [r for r in sim.requests if r.endpoint == "submit"]
    assert second.error is None
    assert second.resumed
    assert second.path == out / "ada.mp4"
    assert second.path.stat().st_size > 0
    assert len(submits) == 1
    [task] = sim.tasks()
    assert (task.image_url, task.status) == (job.image, "SUCCEEDED")
    assert second.video is not None
    assert second.video.task_id == task.task_id
    again_later = [r for r in caplog.records if "fetching it again" in r.getMessage()]
    assert len(again_later) == DOWNLOAD_ROUNDS

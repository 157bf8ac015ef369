"""Downloads are bounded and stay in their directory: a size cap, no partial file, plain names.

A result host that announces or streams more than the cap gets a
:class:`DownloadError` that is not retried, and leaves nothing on disk; a body
cut short leaves nothing either and is fetched again. A file the disk will not
take is a :class:`DownloadError` naming its path, not retried, that ends only
its own job in a batch and leaves nothing either. Whatever a job's key or
image URL holds, and whatever task id the service names, the file lands
inside the directory it was meant for, under a plain name.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emoji_async import (
    DownloadError,
    EmojiClient,
    EmojiJob,
    RetryPolicy,
    ValidationError,
    VideoResult,
    events,
)
from emoji_async._jobs import check_unique_keys, file_name_for
from emoji_async.testing import Simulator, fixed_duration

from .conftest import detect_and_submit, running, sim_config

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
IMG = "https://example.com/portraits/ada.png"
#: Bytes the hand-made result hosts send per write.
CHUNK = 64 * 1024


def downloads(sim: Simulator) -> int:
    return sum(1 for r in sim.requests if r.endpoint == "download")


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- the size cap -------------------------------------------------------------------------


async def test_a_video_announced_over_the_cap_is_refused_once_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    async with running(sim_config()) as (sim, client):
        video = await (await detect_and_submit(client, IMG)).wait()
        with pytest.raises(DownloadError, match="over 16") as caught:
            await client.download(video, tmp_path / "v.mp4", max_bytes=16)
        assert downloads(sim) == 1  # more of the same would not shrink it: not retried
        assert not caught.value.is_transient
        assert leftovers(tmp_path) == []
        saved = await client.download(video, tmp_path / "v.mp4")
    assert saved.stat().st_size > 16


@asynccontextmanager
async def raw_host(
    answer: Callable[[int, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback HTTP host written by hand: ``answer(hit_number, writer)`` sends the reply."""
    hits: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            hits.append(len(hits))
            await answer(len(hits), writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up, as it should once it has seen enough
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/results/v.mp4?Expires=1&Signature=s", hits
    finally:
        server.close()
        await server.wait_closed()


def quick_client() -> EmojiClient:
    """A client for the hand-made hosts: the API itself is never called."""
    return EmojiClient(
        api_key="sk-download",
        base_url="http://127.0.0.1:9/api/v1",
        retry=RetryPolicy(wait_first=0.001, wait_max=0.002, deadline=2.0),
        limits=None,
    )


async def test_a_body_streamed_past_the_cap_without_a_length_is_cut_off_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    chunks = 64  # 4 MiB at most: the host stops by itself even if the client never hangs up

    async def endless(_: int, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(chunks):
            writer.write(b"%x\r\n%s\r\n" % (CHUNK, b"\x00" * CHUNK))
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    dest = tmp_path / "v.mp4"
    dest.write_bytes(b"the video saved before")
    async with raw_host(endless) as (url, hits), quick_client() as client:
        with pytest.raises(DownloadError, match=f"over {4 * CHUNK} bytes") as caught:
            await client.download(url, dest, max_bytes=4 * CHUNK, overwrite=True)
    assert not caught.value.is_transient
    assert len(hits) == 1
    assert leftovers(tmp_path) == ["v.mp4"]  # no part file
    assert dest.read_bytes() == b"the video saved before"


async def test_a_body_cut_short_leaves_no_file_and_is_fetched_again_in_full(
    tmp_path: Path,
) -> None:
    body = bytes(range(256)) * 40

    async def short_then_whole(hit: int, writer: asyncio.StreamWriter) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        writer.write(head + (body[: len(body) // 2] if hit == 1 else body))
        await writer.drain()

    async with raw_host(short_then_whole) as (url, hits), quick_client() as client:
        saved = await client.download(url, tmp_path / "v.mp4")
    assert len(hits) == 2
    assert saved.read_bytes() == body
    assert leftovers(tmp_path) == ["v.mp4"]


async def test_a_video_url_no_client_can_fetch_is_refused_at_once(tmp_path: Path) -> None:
    async with quick_client() as client:
        with pytest.raises(ValidationError, match="video"):
            await client.download("file:///etc/passwd", tmp_path / "v.mp4")
        with pytest.raises(DownloadError) as caught:
            await client.download("http://[::1/v.mp4", tmp_path / "v.mp4")
    assert not caught.value.is_transient
    assert leftovers(tmp_path) == []


# --- the disk -----------------------------------------------------------------------------


def sending(body: bytes) -> Callable[[int, asyncio.StreamWriter], Awaitable[None]]:
    """A ``raw_host`` answer: the whole of ``body``, with its length."""

    async def answer(_: int, writer: asyncio.StreamWriter) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        writer.write(head + body)
        await writer.drain()

    return answer


async def test_a_video_that_cannot_be_written_is_a_download_error_naming_the_path(
    tmp_path: Path,
) -> None:
    body = bytes(range(256)) * 8
    in_the_way = tmp_path / "blocked.mp4"  # where the video would go: a directory
    in_the_way.mkdir()
    async with raw_host(sending(body)) as (url, hits), quick_client() as client:
        video = VideoResult(task_id="blocked", video_url=url, video_duration=1)
        with pytest.raises(DownloadError) as caught:
            # Told to replace what is there, it meets a directory it cannot replace.
            await client.download(video, tmp_path, overwrite=True)
    assert isinstance(caught.value.__cause__, IsADirectoryError)
    assert str(in_the_way) in str(caught.value)
    assert "Signature" not in str(caught.value)  # the signed URL is not repeated
    assert not caught.value.is_transient
    assert len(hits) == 1  # the same disk would refuse it again: not fetched twice
    assert leftovers(tmp_path) == ["blocked.mp4"]  # no part file
    assert leftovers(in_the_way) == []


async def test_a_destination_under_a_file_or_too_long_is_a_download_error(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-directory"
    a_file.write_bytes(b"")
    video = VideoResult(task_id="t", video_url="http://127.0.0.1:9/v.mp4", video_duration=1)
    async with quick_client() as client:
        for dest in (a_file / "sub" / "v.mp4", tmp_path / ("x" * 300)):
            with pytest.raises(DownloadError, match="cannot save to") as caught:
                await client.download(video, dest)
            assert isinstance(caught.value.__cause__, OSError)
            assert not caught.value.is_transient


async def test_a_file_name_that_just_fits_is_saved_though_its_temporary_name_would_not(
    tmp_path: Path,
) -> None:
    body = bytes(range(256)) * 8
    name = "v" * 251 + ".mp4"  # 255 bytes: the longest name a Linux file system takes
    async with raw_host(sending(body)) as (url, _), quick_client() as client:
        saved = await client.download(url, tmp_path / name)
    assert saved.read_bytes() == body
    assert leftovers(tmp_path) == [name]


async def test_a_batch_job_whose_file_is_taken_meanwhile_fails_alone_and_the_others_finish(
    tmp_path: Path,
) -> None:
    out = tmp_path / "videos"
    in_the_way = out / file_name_for("grace")
    # One running slot: grace's task runs first, so its failure comes before the others end.
    jobs = [
        EmojiJob(f"https://example.com/p/{key}.png", "mengwa_kaixin", key=key)
        for key in ("grace", "ada", "linus")
    ]

    def take_graces_file(event: events.JobEvent) -> None:
        # Something else writes where grace's video goes, once the batch has begun.
        if isinstance(event, events.Succeeded) and event.key == "grace":
            in_the_way.mkdir()
            (in_the_way / "notes.txt").write_text("not a video", encoding="utf-8")

    config = sim_config(durations=fixed_duration(20))
    async with running(config) as (sim, client):
        grace, ada, linus = await client.generate_many(
            jobs, download_to=out, on_event=take_graces_file
        )
    assert isinstance(grace.error, DownloadError)
    assert "exists already" in str(grace.error)
    assert str(in_the_way) in str(grace.error)
    assert not grace.error.is_transient
    assert grace.path is None
    for done in (ada, linus):
        assert done.error is None
        assert done.path == out / file_name_for(done.key)
        assert done.path.stat().st_size > 0
    assert downloads(sim) == 2  # grace's name was taken: her video was not fetched at all
    assert leftovers(out) == sorted(file_name_for(job.resolved_key) for job in jobs)
    assert leftovers(in_the_way) == ["notes.txt"]


# --- never over another video ---------------------------------------------------------------


async def served(url: str) -> bytes:
    """What the result host serves at ``url``: the video as the service made it."""
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return await resp.read()


@pytest.mark.parametrize("spelling", ["a string ending in a separator", "an existing directory"])
async def test_a_destination_that_names_a_folder_keeps_every_video_in_it(
    tmp_path: Path, spelling: str
) -> None:
    folder = tmp_path / "videos"
    if spelling == "an existing directory":
        folder.mkdir()
        dest: str | Path = folder
    else:
        dest = f"{folder}{os.sep}"  # "videos/", the folder not there yet
    async with running(sim_config()) as (sim, client):
        first = await (await detect_and_submit(client, IMG)).wait()
        second = await (await detect_and_submit(client, IMG + "?take=2")).wait()
        saved = [await client.download(video, dest) for video in (first, second)]
        expected = [await served(video.video_url) for video in (first, second)]
    assert folder.is_dir()
    assert saved == [folder / f"{first.task_id}.mp4", folder / f"{second.task_id}.mp4"]
    # Each file holds its own task's video, as the service recorded it: none was lost.
    assert [path.read_bytes() for path in saved] == expected
    assert expected[0] != expected[1]
    assert {task.task_id for task in sim.tasks()} == {first.task_id, second.task_id}


async def test_an_existing_file_is_never_written_over_unless_asked(tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    dest.write_bytes(b"another video")
    async with running(sim_config()) as (sim, client):
        video = await (await detect_and_submit(client, IMG)).wait()
        with pytest.raises(DownloadError, match="exists already") as caught:
            await client.download(video, dest)
        assert str(dest) in str(caught.value)
        assert not caught.value.is_transient
        assert downloads(sim) == 0  # refused before anything was fetched
        assert dest.read_bytes() == b"another video"
        saved = await client.download(video, dest, overwrite=True)
        assert saved.read_bytes() == await served(video.video_url)
    assert leftovers(tmp_path) == ["v.mp4"]


async def test_a_folder_where_the_file_would_go_is_refused_before_anything_is_fetched(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.mp4").mkdir()
    async with raw_host(sending(b"video")) as (url, hits), quick_client() as client:
        video = VideoResult(task_id="t", video_url=url, video_duration=1)
        with pytest.raises(DownloadError, match="exists already"):
            await client.download(video, tmp_path)
    assert hits == []


async def test_a_file_that_appears_while_the_video_downloads_is_left_alone(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "v.mp4"
    body = bytes(range(256)) * 8

    async def someone_else_writes_first(_: int, writer: asyncio.StreamWriter) -> None:
        dest.write_bytes(b"another video")  # after the client looked, before it saves
        await sending(body)(1, writer)

    async with raw_host(someone_else_writes_first) as (url, hits), quick_client() as client:
        with pytest.raises(DownloadError, match="exists already") as caught:
            await client.download(url, dest)
    assert not caught.value.is_transient
    assert len(hits) == 1
    assert dest.read_bytes() == b"another video"
    assert leftovers(tmp_path) == ["v.mp4"]  # no part file


async def test_a_batch_refuses_a_folder_holding_a_jobs_file_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    out = tmp_path / "videos"
    out.mkdir()
    (out / file_name_for("ada")).write_bytes(b"ada's video from another run")
    jobs = [
        EmojiJob(f"https://example.com/p/{key}.png", "mengwa_kaixin", key=key)
        for key in ("grace", "ada")
    ]
    async with running(sim_config()) as (sim, client):
        with pytest.raises(ValidationError, match=r"jobs\[1\]\.key") as caught:
            await client.generate_many(jobs, download_to=out, journal=tmp_path / "run.db")
    assert str(out / file_name_for("ada")) in str(caught.value)
    assert sim.requests == []
    assert (out / file_name_for("ada")).read_bytes() == b"ada's video from another run"


async def test_a_resumed_job_replaces_the_file_a_killed_run_saved_with_its_own_video(
    tmp_path: Path,
) -> None:
    out, journal = tmp_path / "videos", tmp_path / "run.db"
    job = EmojiJob("https://example.com/p/ada.png", "mengwa_kaixin", key="ada")
    async with running(sim_config()) as (sim, client):
        (first,) = await client.generate_many([job], journal=journal)
        assert first.video is not None
        # A run killed after saving the file and before the journal recorded it.
        out.mkdir()
        (out / file_name_for("ada")).write_bytes(b"ada's video, as the killed run saved it")
        (again,) = await client.generate_many([job], journal=journal, download_to=out)
        expected = await served(first.video.video_url)
    assert again.error is None
    assert again.path == out / file_name_for("ada")
    assert again.path.read_bytes() == expected
    assert len(sim.tasks()) == 1


# --- names --------------------------------------------------------------------------------

HOSTILE = st.sampled_from(
    [
        "..",
        ".",
        "../../etc/passwd",
        "/etc/passwd",
        "C:\\Windows\\System32\\evil",
        "\\\\server\\share\\x",
        "a/../../b",
        "nul\x00byte",
        "\x00",
        ".hidden",
        "....",
        "~",
        "~/x",
        "$HOME",
        "%2e%2e%2f",
        "\u202egnp.exe",
        "\uff46\uff55\uff4c\uff4c\uff0f\uff57",  # full-width "full/w"
        "🙂" * 70,
        "x" * 1000,
        " ",
        "\n",
        "CON",
        "a:b",
        "-rf",
    ]
)
HOSTILE_URLS = st.one_of(
    st.sampled_from(
        [
            "https://example.com/..%2f..%2fetc%2fpasswd.png",
            "https://example.com/a/../../../x.png",
            "https://example.com/%00.png",
            "https://example.com/" + "n" * 300 + ".png",
            "https://example.com/",
            "oss://dashscope-instant/../../x.png",
            "http://[::1",
        ]
    ),
    st.text().map(lambda tail: "https://example.com/" + tail),
)
KEYS = st.one_of(
    HOSTILE,
    st.text(),
    st.text(min_size=100, max_size=600),
    st.lists(HOSTILE, min_size=2, max_size=4).map("/".join),
    HOSTILE_URLS.map(lambda url: EmojiJob(url, "mengwa_kaixin").resolved_key),
)


@FUZZ
@given(KEYS)
def test_any_key_gives_a_plain_file_name_that_stays_in_its_directory(key: str) -> None:
    name = file_name_for(key)
    assert name == file_name_for(key)  # the same key always finds its file again
    assert name.endswith(".mp4")
    assert name.isascii()
    assert name.isprintable()
    assert not name.startswith(".")  # never hidden, never "." or "..", never a part file
    assert not any(sep in name for sep in ("/", "\\", "\x00", ":"))
    assert posixpath.basename(name) == name
    assert posixpath.dirname(posixpath.normpath(posixpath.join("/videos", name))) == "/videos"
    # The download's temporary file, ".<name>.<8 hex>.part", must fit a file name too.
    assert len(f".{name}.01234567.part".encode()) <= 255


@FUZZ
@given(st.lists(KEYS, max_size=6))
def test_keys_whose_files_would_collide_are_refused_naming_the_later_job(keys: list[str]) -> None:
    jobs = [EmojiJob(IMG, "mengwa_kaixin", key=key) for key in keys]
    names = [file_name_for(key) for key in keys]
    # The first job whose key is empty, too long, or names a file an earlier job has.
    bad = [i for i, key in enumerate(keys) if not key or len(key) > 512 or names[i] in names[:i]]
    if not bad:
        assert check_unique_keys(jobs) == keys
        assert len(set(names)) == len(names)
        return
    with pytest.raises(ValidationError) as caught:
        check_unique_keys(jobs)
    assert caught.value.field == f"jobs[{bad[0]}].key"


async def test_a_batch_with_hostile_keys_and_urls_saves_every_video_inside_its_directory(
    tmp_path: Path,
) -> None:
    keys = [
        "nul\x00byte",
        "x" * 500,
        "....",
        ".bashrc",
        "~",
        "C:\\Windows\\evil",
        "%2e%2e%2fup",
        "\u202egnp.exe",
        "a\nb",
    ]
    jobs = [
        EmojiJob(f"https://example.com/p/{n}.png", "dagong_weixiao", key=key)
        for n, key in enumerate(keys)
    ]
    jobs += [
        EmojiJob(url, "mengwa_kaixin")
        for url in (
            "https://example.com/..%2f..%2fetc%2fpasswd.png",
            "https://example.com/a/../../../up.png",
            "https://example.com/" + "n" * 300 + ".png",
        )
    ]
    out, journal = tmp_path / "videos", tmp_path / "run.db"
    # No account limits: the twelve tasks run side by side, so the run takes a moment.
    config = sim_config(durations=fixed_duration(20), limits=None)
    async with running(config, limits=None) as (_, client):
        outcomes = await client.generate_many(jobs, download_to=out, journal=journal)
    assert [o.error for o in outcomes] == [None] * len(jobs)
    saved = sorted(out.iterdir())
    assert len(saved) == len(jobs)
    assert all(p.parent == out and p.name.isascii() and p.suffix == ".mp4" for p in saved)
    assert sorted(o.path for o in outcomes if o.path is not None) == saved
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, journal.name])  # noqa: ASYNC240
    with closing(sqlite3.connect(journal)) as db:
        recorded = [Path(row[0]) for row in db.execute("SELECT path FROM jobs")]
    assert sorted(recorded) == saved


async def test_two_hostile_keys_for_one_file_are_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    jobs = [
        EmojiJob(IMG, "mengwa_kaixin", key="../evil"),
        EmojiJob(IMG, "mengwa_kaixin", key="/evil"),  # both would be "_evil.mp4"
    ]
    async with running(sim_config()) as (sim, client):
        with pytest.raises(ValidationError, match=r"jobs\[1\]\.key: expected a key unique"):
            await client.generate_many(jobs, download_to=tmp_path / "videos")
    assert sim.requests == []
    assert leftovers(tmp_path) == []


async def test_a_video_saved_into_a_directory_is_named_by_its_task_id_made_plain(
    tmp_path: Path,
) -> None:
    hostile = ["../../outside", "/etc/cron.d/x", "..", "a\\b", "\x00", "é" * 200]
    async with running(sim_config()) as (_, client):
        video = await (await detect_and_submit(client, IMG)).wait()
        for task_id in hostile:
            forged = type(video)(task_id=task_id, video_url=video.video_url, video_duration=1)
            path = await client.download(forged, tmp_path)
            assert path.parent == tmp_path
            assert path.name.isascii()
            assert not path.name.startswith(".")
    assert all(p.parent == tmp_path for p in tmp_path.rglob("*"))  # noqa: ASYNC240
    assert len(os.listdir(tmp_path)) == len(set(hostile))

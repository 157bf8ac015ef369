"""The programs under docs/examples, run against the simulator as a user would run them."""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from emoji_async import RateLimits, events, templates
from emoji_async.testing import (
    Fault,
    ServiceLimits,
    Simulator,
    SimulatorServer,
    fixed_duration,
    sample_portrait,
    serve,
)

from .conftest import client_for, sim_config

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def example(name: str) -> ModuleType:
    """Import ``docs/examples/<name>.py`` as a module (it is a script, not part of a package)."""
    module_name = f"docs_examples_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# --- the chat bot ------------------------------------------------------------------


class RecordingChat:
    """A chat that keeps what the bot posted, in order."""

    def __init__(self) -> None:
        self.posts: list[tuple[int, str]] = []

    async def post(self, chat_id: int, text: str) -> None:
        self.posts.append((chat_id, text))

    def to(self, chat_id: int) -> list[str]:
        return [text for chat, text in self.posts if chat == chat_id]


async def test_bot_posts_each_video_as_it_completes_and_answers_every_message() -> None:
    """Two photos of one message come back shortest first; a bad photo or template gets a reply."""
    bot = example("bot")
    photo = "https://example.com/{}.png?sim_duration={}"
    inbox: asyncio.Queue[object] = asyncio.Queue()
    # Two running slots, so the short task ends while the long one, sent first, still runs.
    config = sim_config(limits=ServiceLimits(running_tasks=2))
    async with serve(config) as server:
        limits = RateLimits(running_tasks=2)
        async with client_for(server, limits=limits) as client:
            inbox.put_nowait(
                bot.Message(
                    1, [photo.format("long", 200), photo.format("short", 20)], "dagong_kaixin"
                )
            )
            inbox.put_nowait(
                bot.Message(
                    2,
                    ["https://example.com/p.png?sim_reject=InvalidFile.FacePose"],
                    "mengwa_kaixin",
                )
            )
            inbox.put_nowait(bot.Message(3, [photo.format("me", 60)], "no_such_template"))
            inbox.put_nowait(bot.Message(4, [photo.format("later", 30)], "jingdian_lei"))
            chat = RecordingChat()
            async with asyncio.TaskGroup() as group:
                running = group.create_task(bot.run_bot(client, inbox, chat, workers=2))
                async with asyncio.timeout(30):
                    await inbox.join()
                running.cancel()

        sim = server.simulator
        states = sim.task_states()

        def image_of(reply: str) -> str:
            """The image a posted video was made from (its URL names the task)."""
            task_id = reply.split("/")[-1].split(".mp4")[0]
            task = sim.task(task_id)
            assert task is not None
            return task.image_url

        first, second = chat.to(1)
        assert first.startswith("Here you are: ")
        assert second.startswith("Here you are: ")
        assert "/short.png" in image_of(first)
        assert "/long.png" in image_of(second)
    assert chat.to(2) == [
        "I could not find one clear, frontal face in that photo (InvalidFile.FacePose)."
    ]
    (refusal,) = chat.to(3)
    assert refusal.startswith("Sorry, I cannot use that: ")
    assert "driven_id" in refusal
    (later,) = chat.to(4)
    assert later.startswith("Here you are: ")
    # Three videos, three tasks: the unknown template and the rejected face created none.
    assert sorted(states.values()) == ["SUCCEEDED"] * 3


# --- the resumable CSV script --------------------------------------------------------


JOBS = 10


def write_jobs(path: Path, sim: Simulator, count: int) -> None:
    """``count`` jobs, every other one with the boxes its detection would give."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "driven_id", "key", "face_bbox", "ext_bbox"])
        for n in range(count):
            image = f"https://example.com/p{n}.png"
            boxes = ["", ""]
            if n % 2:
                boxes = [" ".join(map(str, box)) for box in sim.boxes_for(image)]
            writer.writerow([image, "mengwa_kaixin", f"p{n}", *boxes])


def test_bulk_csv_reads_the_shipped_jobs_file() -> None:
    """The script reads docs/examples/jobs.csv: boxes where given, none for an empty cell."""
    jobs = example("bulk_csv").read_jobs(EXAMPLES / "jobs.csv")
    with (EXAMPLES / "jobs.csv").open(encoding="utf-8") as handle:
        assert len(jobs) == len(handle.readlines()) - 1
    assert [job.key for job in jobs[:3]] == ["ada", "grace", "alan"]
    assert jobs[0].face_bbox.as_list() == [248, 177, 472, 417]
    assert jobs[1].face_bbox is None
    assert jobs[1].ext_bbox is None


async def test_bulk_csv_rerun_after_an_interruption_resubmits_nothing(tmp_path: Path) -> None:
    """Interrupted after two videos, a second run finishes the rest and creates no task twice."""
    script = example("bulk_csv")
    jobs_file, out = tmp_path / "jobs.csv", tmp_path / "videos"
    saved: list[str] = []
    two_saved = asyncio.Event()

    def count(event: events.JobEvent) -> None:
        if isinstance(event, events.Downloaded):
            saved.append(event.key)
            if len(saved) == 2:
                two_saved.set()

    async with serve(sim_config(durations=fixed_duration(30))) as server:
        sim = server.simulator
        write_jobs(jobs_file, sim, JOBS)
        # First run: stopped as Ctrl-C stops asyncio.run, by cancelling it.
        async with client_for(server) as client:
            first = asyncio.create_task(script.run(client, jobs_file, out, on_event=count))
            async with asyncio.timeout(30):
                await two_saved.wait()
            first.cancel()
            await asyncio.wait([first])
        assert first.cancelled()
        created_before = sim.tasks_created

        # Second run, as a new process would: a new client, the same journal.
        resumed: dict[str, str] = {}

        def note(event: events.JobEvent) -> None:
            if isinstance(event, events.Resumed):
                resumed[event.key] = event.state

        async with client_for(server) as client:
            outcomes = await script.run(client, jobs_file, out, on_event=note)
        states = sim.task_states()

    assert [outcome.ok for outcome in outcomes] == [True] * JOBS
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(f"p{n}.mp4" for n in range(JOBS))
    # Every job paid once: one task per job in all, those of the first run followed by id.
    assert sorted(states.values()) == ["SUCCEEDED"] * JOBS
    assert created_before < JOBS  # the first run stopped with jobs not yet submitted
    assert set(saved) <= {key for key, state in resumed.items() if state == "DOWNLOADED"}
    assert "SUBMITTED" in resumed.values()  # followed by its task id, not submitted again
    assert {o.key for o in outcomes if o.resumed} == set(resumed)


# --- the web app -----------------------------------------------------------------------


@asynccontextmanager
async def web_app(server: SimulatorServer) -> AsyncIterator[tuple[str, web.Application]]:
    """The example app on a loopback port, its client on the simulator's clock."""
    app = example("web_app").create_app(lambda: client_for(server), poll_ms=50)
    # As `python web_app.py` runs it: a client that goes away cancels its handler.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}", app
    finally:
        await runner.cleanup()


def selfie(template: str = "mengwa_kaixin", photo: bytes | None = None) -> aiohttp.FormData:
    """The form the page sends: a photo file and a template."""
    form = aiohttp.FormData()
    form.add_field("photo", sample_portrait("ada") if photo is None else photo, filename="me.png")
    form.add_field("template", template)
    return form


async def until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    """Wait (bounded) for ``condition`` to hold, checking every 10 ms."""
    try:
        async with asyncio.timeout(seconds):
            while not condition():  # noqa: ASYNC110 - conditions on state with no event
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {seconds} s") from None


async def test_web_app_turns_an_uploaded_selfie_into_a_video() -> None:
    """POST /videos answers with a playable video made from the uploaded file itself."""
    async with (
        serve(sim_config(render_videos=True)) as server,
        web_app(server) as (url, app),
        aiohttp.ClientSession() as browser,
    ):
        async with browser.post(f"{url}/videos", data=selfie()) as response:
            assert response.status == 200
            job = await response.json()
        async with browser.get(job["video_url"]) as response:
            video = await response.read()
        async with browser.get(f"{url}/jobs/{job['task_id']}") as response:
            status = await response.json()
        task = server.simulator.task(job["task_id"])
        uploads = app[example("web_app").STUDIO].uploads
        leftovers = list(uploads.iterdir())
    assert job["status"] == "SUCCEEDED"
    assert status == job
    assert video[4:8] == b"ftyp"  # an MP4
    assert task is not None
    assert task.image_url.startswith("oss://")  # sent as a file, through the upload flow
    assert leftovers == []  # the saved upload is gone once the provider has its copy


async def test_web_app_start_job_answers_with_a_task_id_to_poll() -> None:
    """POST /jobs answers as soon as the task exists; GET /jobs/{id} follows it to its video."""
    async with (
        serve(sim_config()) as server,
        web_app(server) as (url, _),
        aiohttp.ClientSession() as browser,
    ):
        async with browser.post(f"{url}/jobs", data=selfie("dagong_weixiao")) as response:
            assert response.status == 202
            started = await response.json()
            location = response.headers["Location"]
        assert started["status"] == "PENDING"  # the submit's answer
        assert started["video_url"] is None
        assert location == f"/jobs/{started['task_id']}"
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(20):
            while not seen or seen[-1]["video_url"] is None:
                async with browser.get(url + location) as response:
                    seen.append(await response.json())
                await asyncio.sleep(0.02)
        async with browser.get(f"{url}/jobs/no-such-task") as response:
            unknown = response.status
    states = [view["status"] for view in seen]
    assert states[-1] == "SUCCEEDED"
    assert states == sorted(states, key=["PENDING", "RUNNING", "SUCCEEDED"].index)
    assert unknown == 404


async def test_web_app_refuses_a_bad_template_or_file_before_anything_is_billed() -> None:
    """An unknown template or a file that is no image: 400 naming what is wrong, no detection."""
    async with (
        serve(sim_config()) as server,
        web_app(server) as (url, _),
        aiohttp.ClientSession() as browser,
    ):
        async with browser.post(f"{url}/jobs", data=selfie("no_such_face")) as response:
            bad_template = (response.status, await response.json())
        async with browser.post(f"{url}/videos", data=selfie(photo=b"plain text")) as response:
            bad_photo = (response.status, await response.json())
        billed = server.simulator.stats.detections_billed
    assert bad_template[0] == 400
    assert bad_template[1]["error"].startswith("template: one of ")
    assert bad_photo[0] == 400
    assert bad_photo[1]["error"].startswith("photo: expected a PNG")
    assert billed == 0


async def disconnect_once(url: str, form: aiohttp.FormData, ready: Callable[[], bool]) -> None:
    """Send ``form`` as a browser would, and go away (close the connection) once ``ready()``."""
    async with aiohttp.ClientSession() as browser:
        request = asyncio.create_task(browser.post(url, data=form))
        await until(ready, "the moment to disconnect")
        assert not request.done()  # still waiting for its answer
        request.cancel()
        await asyncio.wait([request])


async def test_web_app_disconnect_during_the_submit_cancels_the_task_it_created() -> None:
    """A browser gone while its submit is answered: the app learns the task id, and cancels it.

    The submit's answer is held back (the task exists at the service, its id not
    yet known to anyone); the handler is cancelled then. Were the submit the
    handler's own, that task would run and be billed, untracked.
    """
    config = sim_config(durations=fixed_duration(300))
    async with (
        serve(config) as server,
        web_app(server) as (url, app),
        aiohttp.ClientSession() as browser,
    ):
        sim, studio = server.simulator, app[example("web_app").STUDIO]
        # Someone else's job holds the account's one running slot, so ours will queue.
        async with browser.post(f"{url}/jobs", data=selfie()) as response:
            first = (await response.json())["task_id"]
        sim.faults.add(Fault("submit", "delay", delay=1.0, after_processing=True))
        await disconnect_once(f"{url}/videos", selfie(), lambda: sim.tasks_created == 2)
        (second,) = set(sim.task_states()) - {first}
        await until(lambda: sim.task_states()[second] == "CANCELED", "the abandoned task cancelled")
        await until(lambda: studio.jobs[second].ended.is_set(), "its follower seeing the end")
        abandoned = studio.jobs[second]
        states = sim.task_states()
        leftovers = list(studio.uploads.iterdir())
    assert abandoned.abandoned
    assert abandoned.status == "CANCELED"
    assert states[second] == "CANCELED"
    assert states[first] != "CANCELED"  # the job whose browser stayed is untouched
    assert leftovers == []


async def test_web_app_disconnect_after_the_task_runs_keeps_following_it() -> None:
    """A browser gone once its task runs (billed whatever happens): the video is still collected."""
    async with (
        serve(sim_config()) as server,
        web_app(server) as (url, app),
        aiohttp.ClientSession() as browser,
    ):
        sim, studio = server.simulator, app[example("web_app").STUDIO]

        def running() -> bool:
            return "RUNNING" in {job.status for job in studio.jobs.values()}

        await disconnect_once(f"{url}/videos", selfie(), running)
        (task_id,) = studio.jobs
        await until(lambda: studio.jobs[task_id].ended.is_set(), "the task's end")
        async with browser.get(f"{url}/jobs/{task_id}") as response:
            view = await response.json()
        states = sim.task_states()
    assert studio.jobs[task_id].abandoned
    assert view["status"] == "SUCCEEDED"
    assert view["video_url"] is not None
    assert states == {task_id: "SUCCEEDED"}


# --- the web app's page, in a real browser ----------------------------------------------

#: Where to look for the browser, first to last: the variable names any Chromium
#: or Chrome binary; then the usual commands on PATH (.ci/run installs Debian's).
CHROMIUM_VARIABLE = "EMOJI_ASYNC_CHROMIUM"
CHROMIUM_COMMANDS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> Path | None:
    named = os.environ.get(CHROMIUM_VARIABLE)
    if named:
        return Path(named)
    found = next(filter(None, map(shutil.which, CHROMIUM_COMMANDS)), None)
    return None if found is None else Path(found)


@pytest.fixture
def chromium() -> Path:
    """The browser; in CI its absence is a failure, not a skip."""
    found = find_chromium()
    if found is None or not found.exists():
        how = (
            f"this test needs a Chromium or Chrome: none of {', '.join(CHROMIUM_COMMANDS)} "
            f"is on PATH{'' if found is None else f' and {found} does not exist'}. Install "
            "one (Debian/Ubuntu: apt-get install chromium) or point "
            f"{CHROMIUM_VARIABLE} at its binary; no browser is downloaded"
        )
        if os.environ.get("CI"):
            pytest.fail(how)
        pytest.skip(how)
    return found


async def test_web_app_page_plays_the_video_in_a_browser(chromium: Path, tmp_path: Path) -> None:
    """In headless Chromium: pick a photo and a template, see the states go by, the video loads."""
    from playwright.async_api import FilePayload, async_playwright

    template = "mengwa_kaixin"
    async with (
        serve(sim_config(render_videos=True)) as server,
        web_app(server) as (url, app),
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{url}/")
            await page.set_input_files(
                "#photo",
                files=FilePayload(
                    name="me.png", mimeType="image/png", buffer=sample_portrait("ada")
                ),
            )
            await page.select_option("#template", template)
            await page.click("#go")
            await page.wait_for_function(
                "document.getElementById('video').readyState >= 1", timeout=20_000
            )
            history = await page.locator("#history li").all_text_contents()
            status = await page.locator("#status").text_content()
            src = await page.eval_on_selector("#video", "video => video.currentSrc")
            duration = await page.eval_on_selector("#video", "video => video.duration")
        finally:
            await browser.close()
        (job,) = app[example("web_app").STUDIO].jobs.values()
    assert errors == []
    assert history[0] == "UPLOADED"
    assert history[-1] == "SUCCEEDED"
    assert history == sorted(history, key=["UPLOADED", "PENDING", "RUNNING", "SUCCEEDED"].index)
    assert status == "Ready!"
    assert src == job.video_url
    (info,) = [info for info in templates() if info.driven_id == template]
    assert duration == pytest.approx(info.video_seconds, abs=0.5)


# --- testing your own code -------------------------------------------------------------


def test_the_testing_example_passes_under_pytest() -> None:
    """docs/examples/test_with_simulator.py, run by pytest as a user runs it: every test passes."""
    path = EXAMPLES / "test_with_simulator.py"
    result = subprocess.run(  # noqa: S603 - this interpreter, a file of ours
        [sys.executable, "-m", "pytest", str(path), "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout

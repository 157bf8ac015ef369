"""The programs under docs/examples, run against the simulator as a user would run them."""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from emoji_async import RateLimits, events
from emoji_async.testing import ServiceLimits, Simulator, fixed_duration, serve

from .conftest import SCALE, client_for, sim_config

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
        limits = RateLimits(running_tasks=2).scaled(SCALE)
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

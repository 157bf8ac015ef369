"""A chat bot that turns the selfies people send it into animated expressions.

Messages with photos arrive on a queue (in a real bot, the chat platform's
webhook or long-polling loop puts them there). A fixed number of workers take
one message each; each worker animates the message's photos with
``EmojiClient.as_completed`` and posts every video back to its chat the moment
it is ready, so a short clip is never held back by a longer one sent before it.

One client serves every worker: its pacing keeps the whole bot under the
account's limits (1 detection/s, 1 submit/s, one running task at a time),
however many people write at once.

Try it from a shell, with the chat printed to the terminal::

    export DASHSCOPE_API_KEY=sk-...
    python bot.py https://example.com/me.png ./friend.jpg --template mengwa_kaixin
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol

from emoji_async import (
    EmojiClient,
    EmojiJob,
    FaceRejectedError,
    JobOutcome,
    TaskFailedError,
    ValidationError,
)

log = logging.getLogger("bot")

#: Messages handled at once. The account runs one task at a time, so more
#: workers do not make videos sooner; they let a new message start its
#: detection and join the provider's queue while others wait there.
WORKERS = 4


@dataclass(frozen=True)
class Message:
    """Photos someone sent (image URLs or local files), and the expression they asked for."""

    chat_id: int
    photos: Sequence[str | os.PathLike[str]]
    template: str


class Chat(Protocol):
    """Where replies go: the chat platform's "send message" call."""

    async def post(self, chat_id: int, text: str) -> None: ...


def reply_for(outcome: JobOutcome) -> str:
    """What to tell the sender about one photo."""
    if outcome.video is not None:
        return f"Here you are: {outcome.video.video_url}"
    error = outcome.error
    if isinstance(error, FaceRejectedError):
        return f"I could not find one clear, frontal face in that photo ({error.code})."
    if isinstance(error, TaskFailedError):
        return f"The animation failed ({error.code}); please send the photo again."
    return f"Something went wrong with that photo: {error}"


async def animate(client: EmojiClient, message: Message, chat: Chat) -> None:
    """Animate every photo of ``message``; post each result as soon as it is ready."""
    jobs = [
        EmojiJob(photo, message.template, key=f"photo-{number}")
        for number, photo in enumerate(message.photos, start=1)
    ]
    try:
        # poll=client.poll: someone is waiting for each video, so see it within
        # seconds of its end, rather than with the batch schedule that polls
        # each task once, when it is surely done (fewer requests, later results).
        outcomes = client.as_completed(jobs, poll=client.poll)
        async with aclosing(outcomes):
            async for outcome in outcomes:
                await chat.post(message.chat_id, reply_for(outcome))
    except ValidationError as exc:  # an unknown template, a photo that is no image...
        await chat.post(message.chat_id, f"Sorry, I cannot use that: {exc}")


async def worker(client: EmojiClient, inbox: asyncio.Queue[Message], chat: Chat) -> None:
    """Take messages from ``inbox`` one at a time, for ever."""
    while True:
        message = await inbox.get()
        try:
            await animate(client, message, chat)
        except Exception:
            # Each photo's own failure is already its reply: this is the client or
            # the chat itself failing. One message must not stop the bot.
            log.exception("message from chat %s", message.chat_id)
        finally:
            inbox.task_done()


async def run_bot(
    client: EmojiClient, inbox: asyncio.Queue[Message], chat: Chat, *, workers: int = WORKERS
) -> None:
    """Serve ``inbox`` with ``workers`` workers until cancelled."""
    async with asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(worker(client, inbox, chat))


class TerminalChat:
    """A chat that prints: stands in for the platform when trying the bot from a shell."""

    async def post(self, chat_id: int, text: str) -> None:
        print(f"[chat {chat_id}] {text}", flush=True)


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Animate photos as a chat bot would.")
    parser.add_argument("photos", nargs="+", help="image URLs or local image files")
    parser.add_argument("--template", default="mengwa_kaixin", help="the expression (driven_id)")
    args = parser.parse_args(argv)

    inbox: asyncio.Queue[Message] = asyncio.Queue()
    for chat_id, photo in enumerate(args.photos, start=1):  # one chat per photo
        inbox.put_nowait(Message(chat_id, [photo], args.template))

    async with EmojiClient() as client, asyncio.TaskGroup() as group:
        bot = group.create_task(run_bot(client, inbox, TerminalChat()))
        await inbox.join()  # every message answered
        bot.cancel()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())

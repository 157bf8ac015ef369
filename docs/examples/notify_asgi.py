"""A batch worker whose waits wake on EventBridge's notifications, received by a plain ASGI app.

    export DASHSCOPE_API_KEY=sk-... EVENTBRIDGE_TOKEN=<the target's token>
    python notify_asgi.py --port 8081 https://example.com/a.png https://example.com/b.png

The receiver's ASGI app (``receiver.asgi``, no framework needed) is served by
uvicorn while ``generate_many`` works through the portraits; EventBridge's
HTTP target posts to ``https://<this host>/hooks/eventbridge``. In a FastAPI
or Starlette app, mount the same object instead::

    app.mount("/hooks/eventbridge", receiver.asgi)

Each job's wait sleeps until its task's event comes and confirms it with one
query: about two requests a job (the submit and that query) instead of the
polls adaptive polling makes, and no job lost when an event is.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import uvicorn

from emoji_async import EmojiClient, EmojiJob, NotifyPolicy, Outcomes
from emoji_async.notify import Receiver, Verifier


async def run(
    client: EmojiClient,
    verifier: Verifier,
    images: list[str],
    *,
    template: str = "mengwa_kaixin",
    host: str = "127.0.0.1",
    port: int = 8081,
) -> Outcomes:
    """Animate ``images`` with ``client`` while serving its receiver on ``host:port``."""
    receiver = Receiver(client.notices, verifier=verifier)
    # It answers a POST at any path; the signature covers the URL posted to.
    server = uvicorn.Server(
        uvicorn.Config(
            receiver.asgi,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        async with client:
            return await client.generate_many([EmojiJob(image, template) for image in images])
    finally:
        server.should_exit = True
        await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("images", nargs="+")
    parser.add_argument("--template", default="mengwa_kaixin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    client = EmojiClient(notifications=NotifyPolicy())
    verifier = Verifier(token=os.environ.get("EVENTBRIDGE_TOKEN"))
    outcomes = asyncio.run(
        run(client, verifier, args.images, template=args.template, host=args.host, port=args.port)
    )
    for outcome in outcomes:
        print(outcome.job.image, outcome.video.video_url if outcome.video else outcome.error)


if __name__ == "__main__":
    main()

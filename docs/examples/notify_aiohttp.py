"""Stickers on request, each wait woken by EventBridge's task-finished notification.

Run it where EventBridge can reach it (see the notifications page for the rule
and the HTTP target, which posts to ``https://<this host>/hooks/eventbridge``)::

    export DASHSCOPE_API_KEY=sk-... EVENTBRIDGE_TOKEN=<the target's token>
    python notify_aiohttp.py --port 8080
    curl -F image_url=https://example.com/me.png -F template=mengwa_kaixin \\
        http://127.0.0.1:8080/stickers

``POST /stickers`` answers with the video's URL once it exists. Its wait sleeps
until the task's event arrives and confirms it with one query; polls remain
as a sparse safety net for an event that is late or lost. The receiver and
the client live as long as the app, so every request shares one hub of
events, one connection pool and one pacing under the account's limits.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from emoji_async import EmojiClient, EmojiError, NotifyPolicy
from emoji_async.notify import Receiver, Verifier

RECEIVER = web.AppKey("receiver", Receiver)


def create_app(make_client: Callable[[], EmojiClient], verifier: Verifier) -> web.Application:
    """The app: the receiver at ``/hooks/eventbridge``, stickers at ``/stickers``.

    ``make_client`` makes a client with notifications on; ``verifier`` checks
    each delivery (``Verifier(token=...)`` in production).
    """
    client = make_client()
    receiver = Receiver(client.notices, verifier=verifier)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        async with client:
            yield

    async def sticker(request: web.Request) -> web.Response:
        form = await request.post()
        try:
            video = await client.generate(str(form["image_url"]), str(form["template"]))
        except EmojiError as exc:
            return web.json_response({"error": str(exc)}, status=422)
        return web.json_response({"task_id": video.task_id, "video_url": video.video_url})

    app = web.Application()
    app.cleanup_ctx.append(lifetime)
    app.router.add_post("/hooks/eventbridge", receiver.aiohttp_handler)
    app.router.add_post("/stickers", sticker)
    app[RECEIVER] = receiver
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    verifier = Verifier(token=os.environ.get("EVENTBRIDGE_TOKEN"))
    app = create_app(lambda: EmojiClient(notifications=NotifyPolicy()), verifier)
    web.run_app(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()

"""A notification receiver on loopback that trusts this machine's simulators, for tests.

The package's :class:`~emoji_async.notify.Verifier` trusts only EventBridge's
official certificate host. A simulator serves its certificate on loopback
(``/eventbridge/cert.pem``): :data:`SIMULATOR_CERTIFICATES` is the explicit
setting that trusts it, and :func:`receiving` serves a
:class:`~emoji_async.notify.Receiver` with it, whose URL a simulator's
``notify_targets`` names. ``emoji_async.notify`` (and ``cryptography``) is
imported only when :func:`receiving` is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..notify import NoticeSink, Receiver

__all__ = ["SIMULATOR_CERTIFICATES", "receiving"]

#: The certificate URL of any simulator served on this machine (``127.0.0.1``).
SIMULATOR_CERTIFICATES = r"http://127\.0\.0\.1:\d{1,5}/eventbridge/cert\.pem"


@contextlib.asynccontextmanager
async def receiving(
    sink: NoticeSink, *, token: str | None = None, path: str = "/dashscope/events"
) -> AsyncIterator[tuple[str, Receiver]]:
    """Serve a receiver for ``sink`` on ``127.0.0.1``; yields its URL and the receiver.

    Its verifier checks every signature, as in production, but trusts a
    simulator's loopback certificate; ``token`` is the target's static token.
    """
    from ..notify import Receiver, Verifier

    verifier = Verifier(token=token, certificate_urls=SIMULATOR_CERTIFICATES)
    receiver = Receiver(sink, verifier=verifier)
    app = web.Application()
    app.router.add_post(path, receiver.aiohttp_handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}{path}", receiver
    finally:
        await runner.cleanup()

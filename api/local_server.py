"""The embedded system as a server of one's own, for one client command.

`phantomflow render script.json` without a URL starts the whole embedded system on a
free loopback port, opens an account for the render, and hands (url, key) to the client
command, which then does exactly what it does against any server: submit, follow over
SSE, download.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from phantomflow.adapters.settings import Settings
from phantomflow_client.cli._common import UsageError

DEMO_CREDITS = 1000

# Set once an embedded server of this process has stopped (see api/cli.py's entry).
embedded_stopped = threading.Event()


def quiet_server_logs() -> None:
    """The progress bar tells the story; the server's own logs would break it up."""
    for name in ("aiohttp.access", "dramatiq", "phantomflow"):
        logging.getLogger(name).setLevel(logging.WARNING)


@asynccontextmanager
async def embedded_server() -> AsyncIterator[tuple[str, str]]:
    settings = Settings.from_env()
    if not settings.embedded:
        raise UsageError(
            "without --url, render starts an embedded server: unset DATABASE_URL, "
            "or pass --url (or set PHANTOMFLOW_URL) to render on a running server"
        )
    from phantomflow.api.bootstrap import Embedded  # the whole server: only when used

    quiet_server_logs()
    system = Embedded(settings)
    # The app starts the worker and the followers with it, and stops them with it.
    runner = web.AppRunner(system.http_app(), handler_cancellation=True)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        account = system.runtime.app.open_account(plan="free", credits=DEMO_CREDITS)
        yield f"http://127.0.0.1:{port}", account.api_key
    finally:
        await runner.cleanup()
        embedded_stopped.set()

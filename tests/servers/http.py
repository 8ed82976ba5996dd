"""An aiohttp app served on 127.0.0.1 by an event loop in a thread of its own: the
media servers the renderer's tests download from."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web


@contextmanager
def app_in_thread(app: web.Application) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 for as long as the block; its base URL."""
    # Everything on the loop happens in its thread: the caller may be running a loop of
    # its own (an async benchmark or test).
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)

    async def start() -> int:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner.addresses[0][1]

    def serve() -> None:
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="http-server", daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

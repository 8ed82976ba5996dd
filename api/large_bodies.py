"""Large render requests are parsed and checked in a process of their own.

Parsing a 2 MiB body takes tens of milliseconds of C code that holds Python's GIL all
along, and checking it more: in a thread, a flood of such bodies still starves the
event loop (an unrelated request waited half a second). So a body larger than
INLINE_BODY_BYTES (api/requests.py) goes to a small process pool, and the API process
only waits for the verdict. Cheap limits are checked before expensive ones
(`api/schemas.py`: a list's length before its items), so a body of 20,000 scenes is
refused in a millisecond there.

The pool is started on first use, from a fork server (so its processes come from a
clean single-threaded parent, not from the API process with its threads), in a thread:
starting the fork server and its process (which imports this module) takes a second
or more on a busy machine, and done on the event loop it stalled every request under
way (found by bench/flood.py: one GET of 1.6 s at a load of 14).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from aiohttp import web
from marshmallow import ValidationError

from phantomflow.api.errors import ApiError, schema_error
from phantomflow.api.requests import parse_json
from phantomflow.api.schemas import RenderRequest, first_error, load_render_request

# One process: large bodies are rare from honest clients, and the point is to keep them
# from taking the API process's time, not to check them fast.
POOL_PROCESSES = 1
# Below the API process's scheduling priority: when the machine is busy, checking large
# bodies is what waits, not the answers to other requests.
POOL_NICENESS = 10


class LargeBodies:
    """The per-process pool that checks large render requests."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._starting = threading.Lock()
        # Checks waiting for or in the pool now (for tests and curious operators).
        self.in_flight = 0

    def pool(self) -> ProcessPoolExecutor:
        """The pool, started if need be (blocking: call it off the event loop)."""
        with self._starting:
            if self._pool is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload([__name__])
                pool = ProcessPoolExecutor(
                    max_workers=POOL_PROCESSES,
                    mp_context=context,
                    initializer=os.nice,
                    initargs=(POOL_NICENESS,),
                )
                pool.submit(os.getpid).result()  # its process is up: submits no longer wait
                self._pool = pool
            return self._pool

    async def check_render_request(self, raw: bytes) -> tuple[Any, RenderRequest]:
        """(body, its validated request: script, webhook_uri, exports, metadata) of a
        render request; the ApiError its body earns (INVALID_JSON,
        SCHEMA_VALIDATION_ERROR) otherwise."""
        loop = asyncio.get_running_loop()
        self.in_flight += 1
        try:
            pool = self._pool or await asyncio.to_thread(self.pool)
            verdict, found = await loop.run_in_executor(pool, checked_render_request, raw)
        finally:
            self.in_flight -= 1
        if verdict == "error":
            status, code, message, details = found
            raise ApiError(status, code, message, **details)
        if verdict == "invalid":
            raise schema_error(*found)
        return found

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def checked_render_request(raw: bytes) -> tuple[str, Any]:
    """In the pool: ("ok", (body, RenderRequest)), ("error", an ApiError's parts) or
    ("invalid", (path, message)). Plain tuples: they cross the process boundary."""
    try:
        body = parse_json(raw)
    except ApiError as error:
        return "error", (error.status, error.code, error.message, error.details)
    try:
        checked = load_render_request(body)
    except ValidationError as error:
        return "invalid", first_error(error.messages)
    return "ok", (body, checked)


LARGE_BODIES = web.AppKey("large_bodies", LargeBodies)


def install(app: web.Application) -> None:
    """One pool per API process, shut down with the app."""
    bodies = LargeBodies()
    app[LARGE_BODIES] = bodies

    async def close(_: web.Application) -> None:
        bodies.close()

    app.on_cleanup.append(close)

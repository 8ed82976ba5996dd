"""Large render requests are parsed and checked in a process of their own.

Parsing a 2 MiB body takes tens of milliseconds of C code that holds Python's GIL all
along, and checking it more: in a thread, a flood of such bodies still starves the
event loop (an unrelated request waited half a second). So a body larger than
INLINE_BODY_BYTES (api/requests.py) goes to a small process pool, and the API process
only waits for the verdict. Cheap limits are checked before expensive ones
(`api/schemas.py`: a list's length before its items), so a body of 20,000 scenes is
refused in a millisecond there.

The pool is started on first use, from a fork server (so its processes come from a
clean single-threaded parent, not from the API process with its threads).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from aiohttp import web
from marshmallow import ValidationError

from phantomflow.api.errors import ApiError, schema_error
from phantomflow.api.requests import parse_json
from phantomflow.api.schemas import first_error, load_render_request

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

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            self._pool = ProcessPoolExecutor(
                max_workers=POOL_PROCESSES,
                mp_context=context,
                initializer=os.nice,
                initargs=(POOL_NICENESS,),
            )
        return self._pool

    async def check_render_request(
        self, raw: bytes
    ) -> tuple[Any, dict[str, Any], str | None, list[dict[str, Any]]]:
        """(body, normalised script, webhook_uri, exports) of a render request; the
        ApiError its body earns (INVALID_JSON, SCHEMA_VALIDATION_ERROR) otherwise."""
        loop = asyncio.get_running_loop()
        verdict, found = await loop.run_in_executor(self._executor(), checked_render_request, raw)
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
    """In the pool: ("ok", (body, script, webhook_uri, exports)), ("error", an ApiError's parts)
    or ("invalid", (path, message)). Plain tuples: they cross the process boundary."""
    try:
        body = parse_json(raw)
    except ApiError as error:
        return "error", (error.status, error.code, error.message, error.details)
    try:
        script, webhook_uri, exports = load_render_request(body)
    except ValidationError as error:
        return "invalid", first_error(error.messages)
    return "ok", (body, script, webhook_uri, exports)


LARGE_BODIES = web.AppKey("large_bodies", LargeBodies)


def install(app: web.Application) -> None:
    """One pool per API process, shut down with the app."""
    bodies = LargeBodies()
    app[LARGE_BODIES] = bodies

    async def close(_: web.Application) -> None:
        bodies.close()

    app.on_cleanup.append(close)

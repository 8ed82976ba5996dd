"""What request handlers need, and a thread pool to call the synchronous parts in.

The event store and read models are synchronous (psycopg, sqlite3); handlers run them
in a thread pool of their own so the event loop never blocks on a database.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from aiohttp import web

from adapters.bootstrap import Runtime
from domain.application import Principal

P = ParamSpec("P")
T = TypeVar("T")


class Services:
    def __init__(self, runtime: Runtime, max_threads: int = 32) -> None:
        self.runtime = runtime
        self.executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="api-io")

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


SERVICES = web.AppKey("services", Services)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]

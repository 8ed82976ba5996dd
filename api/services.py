"""What request handlers need, and a thread pool to call the synchronous parts in.

The event store and read models are synchronous (psycopg, sqlite3); handlers run them
in a thread pool of their own so the event loop never blocks on a database.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, ParamSpec, TypeVar
from uuid import UUID

from aiohttp import web

from phantomflow.adapters.pg_health import DatabaseUnavailable
from phantomflow.adapters.ratelimit import RateLimiter, rate_limiter_for
from phantomflow.domain.application import Principal
from phantomflow.domain.plans import PlanLimits

if TYPE_CHECKING:  # built by the composition root, which builds this module's users too
    from phantomflow.api.bootstrap import Runtime
    from phantomflow.projections.runner import FollowerRunner

P = ParamSpec("P")
T = TypeVar("T")


LIMITS_TTL_SECONDS = 5.0

# How long a write waits for the read model's lead copy to show it before bringing
# the read model up to it itself (FollowerRunner.reach).
READ_YOUR_WRITES_SECONDS = 2.0


class PlanLimitsCache:
    def __init__(self) -> None:
        self.entries: dict[UUID, tuple[float, PlanLimits]] = {}

    async def get(self, services: Services, account_id: UUID) -> PlanLimits:
        """An account's limits, cached for a few seconds: a plan change applies
        within LIMITS_TTL_SECONDS on every process."""
        now = time.monotonic()
        cached = self.entries.get(account_id)
        if cached and now - cached[0] < LIMITS_TTL_SECONDS:
            return cached[1]
        account = await services.call(services.runtime.app.get_account, account_id)
        self.entries[account_id] = (now, account.limits)
        return account.limits


class Services:
    # Few threads: calls are short database round trips, and each extra thread is one
    # more contender for the GIL. With 32 an API process answered about 25 % fewer
    # submissions a second than with 8 (docs/performance.md).
    def __init__(self, runtime: Runtime, max_threads: int = 8) -> None:
        self.runtime = runtime
        self.executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="api-io")
        # CPU work on large request bodies (parsing, validating) runs here, off the event
        # loop, where a flood of them cannot hold up other requests or the database calls.
        self.cpu = ThreadPoolExecutor(max_workers=2, thread_name_prefix="api-cpu")
        self.rate_limiter: RateLimiter = rate_limiter_for(runtime.settings)
        self.limits = PlanLimitsCache()

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        health = self.runtime.views.health
        if health is not None and health.down:
            # Known to be down: refuse now (503) rather than tie up a thread finding out.
            raise DatabaseUnavailable("PostgreSQL is unreachable")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    async def read_your_writes(self, runner: FollowerRunner, position: int | None) -> None:
        """Until `runner`'s read model shows the write stored at `position` (None: the
        write changed nothing), so the caller's next read finds it."""
        if position is not None:
            await self.call(runner.reach, position, READ_YOUR_WRITES_SECONDS)

    async def compute(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args)` on the CPU threads: Python releases the GIL to the event loop every
        few milliseconds, so the loop keeps answering while a large body is checked."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.cpu, functools.partial(fn, *args, **kwargs))

    async def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.cpu.shutdown(wait=False, cancel_futures=True)
        await self.rate_limiter.close()


SERVICES = web.AppKey("services", Services)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]

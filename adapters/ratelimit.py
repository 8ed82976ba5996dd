"""Requests per minute per account, counted where every API process can see them.

A fixed one-minute window: the count lives under a key named for the account and the
window, and the window's end is what `X-RateLimit-Reset` reports. In production the
counter is in Redis (INCR and EXPIRE in one script call), so every API process counts
against the same number; the embedded default counts in process.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from phantomflow.adapters.settings import Settings

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60

# Count a request in the window's key, which expires a little after the window ends.
COUNT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return count
"""


@dataclass(frozen=True)
class RateDecision:
    limit: int
    remaining: int
    reset_at: int  # unix time when the window ends
    allowed: bool

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))


def _window(now: float, seconds: int = WINDOW_SECONDS) -> tuple[int, int]:
    start = int(now // seconds) * seconds
    return start, start + seconds


def _decide(count: int, limit: int, reset_at: int) -> RateDecision:
    return RateDecision(
        limit=limit, remaining=max(0, limit - count), reset_at=reset_at, allowed=count <= limit
    )


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int) -> RateDecision: ...
    async def close(self) -> None: ...


class RedisRateLimiter:
    """Counts in Redis. If Redis cannot answer, the request is let through (and logged):
    an outage of the limiter must not become an outage of the API."""

    def __init__(
        self, url: str, key_prefix: str = "phantomflow:rate", max_connections: int = 50
    ) -> None:
        self.key_prefix = key_prefix
        # A blocking pool: a burst of requests waits for a connection instead of
        # failing with "too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=5
        )
        self.redis = aioredis.Redis(connection_pool=pool)
        # One script call instead of MULTI/INCR/EXPIRE/EXEC: atomic the same way, and
        # a quarter of the client's work, which showed at about a fifth of an API
        # process's CPU under load (docs/performance.md).
        self._count = self.redis.register_script(COUNT_SCRIPT)

    async def hit(self, key: str, limit: int) -> RateDecision:
        start, reset_at = _window(time.time())
        name = f"{self.key_prefix}:{key}:{start}"
        try:
            count = await self._count(keys=[name], args=[WINDOW_SECONDS + 5])
        except RedisError as error:
            log.warning("rate limiter unavailable, letting the request through: %s", error)
            return RateDecision(limit=limit, remaining=limit, reset_at=reset_at, allowed=True)
        return _decide(int(count), limit, reset_at)

    async def close(self) -> None:
        await self.redis.aclose()


class MemoryRateLimiter:
    """The embedded default's counter: one process, so a dict is the whole truth.

    `window_seconds` other than a minute is for tests of clients that wait out a 429
    (limits stay "per minute" in what the API says)."""

    def __init__(self, window_seconds: int = WINDOW_SECONDS) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        self.lock = asyncio.Lock()
        self.window_seconds = window_seconds

    async def hit(self, key: str, limit: int) -> RateDecision:
        start, reset_at = _window(time.time(), self.window_seconds)
        async with self.lock:
            # Forget finished windows as we go, so memory stays one entry per account.
            for stale in [k for k in self.counts if k[1] < start]:
                del self.counts[stale]
            count = self.counts.get((key, start), 0) + 1
            self.counts[(key, start)] = count
        return _decide(count, limit, reset_at)

    async def close(self) -> None:
        self.counts.clear()


def rate_limiter_for(settings: Settings) -> RateLimiter:
    """Shared by every API process through Redis in production; in process otherwise."""
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, settings.rate_key_prefix)
    return MemoryRateLimiter()

"""Entry module for `dramatiq workers.main` (what `phantomflow worker` runs).

Declares the render actor on the Redis broker named by REDIS_URL. Each worker process
builds its own runtime (event store connections, renderer) on its first message.
"""

from __future__ import annotations

import functools
import logging
import threading

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from adapters.bootstrap import build_runtime
from adapters.renderer import FFmpegRenderer
from adapters.settings import Settings
from workers.actors import declare_render_actor
from workers.render import RenderService

logging.basicConfig(level=logging.INFO)

settings = Settings.from_env()
if not settings.redis_url or settings.embedded:
    raise SystemExit("phantomflow worker needs DATABASE_URL and REDIS_URL")

broker = RedisBroker(url=settings.redis_url)
dramatiq.set_broker(broker)


_lock = threading.Lock()


@functools.cache
def _build_render_service() -> RenderService:
    runtime = build_runtime(settings)
    return RenderService(
        app=runtime.app,
        renderer=FFmpegRenderer(),
        storage=runtime.storage,
        lease_seconds=settings.render_lease_seconds,
    )


def render_service() -> RenderService:
    # Built on first use, after Dramatiq has forked this worker process, and once per
    # process however many worker threads ask at the same moment.
    with _lock:
        return _build_render_service()


render_job = declare_render_actor(broker, render_service)

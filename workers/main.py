"""Entry module for `dramatiq phantomflow.workers.main` (what `phantomflow worker` runs).

Declares the render and webhook actors on the Redis broker named by REDIS_URL. Each
worker process builds its own runtime (event store connections, renderer) on its first
message.
"""

from __future__ import annotations

import functools
import logging
import threading

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from phantomflow.adapters.bootstrap import Runtime, build_runtime
from phantomflow.adapters.render import renderer_for
from phantomflow.adapters.settings import Settings
from phantomflow.domain import exports as ex
from phantomflow.workers.actors import declare_render_actor
from phantomflow.workers.exports import (
    ExportService,
    declare_export_actor,
    export_options,
)
from phantomflow.workers.render import RenderService
from phantomflow.workers.webhooks import RETRY_DELAYS, WebhookService, declare_webhook_actor

logging.basicConfig(level=logging.INFO)

settings = Settings.from_env()
if not settings.redis_url or settings.embedded:
    raise SystemExit("phantomflow worker needs DATABASE_URL and REDIS_URL")

broker = RedisBroker(url=settings.redis_url, namespace=settings.queue_namespace)
dramatiq.set_broker(broker)


_lock = threading.Lock()


@functools.cache
def _runtime() -> Runtime:
    return build_runtime(settings)


@functools.cache
def _build_render_service() -> RenderService:
    runtime = _runtime()
    return RenderService(
        app=runtime.app,
        renderer=renderer_for(settings),
        storage=runtime.storage,
        lease_seconds=settings.render_lease_seconds,
    )


def render_service() -> RenderService:
    # Built on first use, after Dramatiq has forked this worker process, and once per
    # process however many worker threads ask at the same moment.
    with _lock:
        return _build_render_service()


render_job = declare_render_actor(broker, render_service)


@functools.cache
def _build_webhook_service() -> WebhookService:
    if not settings.public_url:
        logging.getLogger(__name__).warning(
            "PHANTOMFLOW_PUBLIC_URL is not set: webhook payloads carry output_uri null"
        )
    return WebhookService(
        app=_runtime().app,
        public_url=settings.public_url,
        allow_private=settings.allow_private_urls,
        retry_delays=settings.webhook_retry_delays or RETRY_DELAYS,
    )


def webhook_service() -> WebhookService:
    with _lock:
        return _build_webhook_service()


deliver_webhook = declare_webhook_actor(broker, webhook_service)


@functools.cache
def _build_export_service() -> ExportService:
    runtime = _runtime()
    return ExportService(
        app=runtime.app,
        storage=runtime.storage,
        vault=runtime.vault,
        options=export_options(settings),
        public_url=settings.public_url,
        retry_delays=settings.export_retry_delays or ex.RETRY_DELAYS,
    )


def export_service() -> ExportService:
    with _lock:
        return _build_export_service()


export_job = declare_export_actor(broker, export_service)

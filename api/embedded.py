"""The embedded default: API, render worker and followers in one process, on SQLite.

The worker is a real Dramatiq worker on Dramatiq's in-process broker, fed by the same
dispatcher that feeds Redis in production; only the broker differs.
"""

from __future__ import annotations

import logging

import dramatiq

from phantomflow.adapters.bootstrap import Runtime, build_runtime
from phantomflow.adapters.render import renderer_for
from phantomflow.adapters.settings import Settings
from phantomflow.domain import exports as ex
from phantomflow.projections.runner import FollowerRunner, FollowerThreads
from phantomflow.workers.actors import declare_render_actor, in_process_broker
from phantomflow.workers.dispatch import Dispatcher
from phantomflow.workers.exports import (
    EXPORT_QUEUE,
    ExportScheduler,
    ExportService,
    declare_export_actor,
    export_options,
    export_sender,
)
from phantomflow.workers.render import RenderService
from phantomflow.workers.webhooks import (
    RETRY_DELAYS,
    WEBHOOK_QUEUE,
    WebhookScheduler,
    WebhookService,
    declare_webhook_actor,
    sender,
)

log = logging.getLogger(__name__)


class EmbeddedSystem:
    def __init__(
        self, settings: Settings, worker_threads: int = 2, public_url: str | None = None
    ) -> None:
        self.runtime: Runtime = build_runtime(settings)
        self.broker = in_process_broker()
        service = RenderService(
            app=self.runtime.app,
            renderer=renderer_for(settings),
            storage=self.runtime.storage,
            lease_seconds=settings.render_lease_seconds,
        )
        self.render_actor = declare_render_actor(self.broker, lambda: service)
        dispatcher = FollowerRunner(
            self.runtime.app, self.runtime.views, Dispatcher(send=self.render_actor.send)
        )
        # Webhooks: `public_url` (the embedded server's own address) stands in for
        # PHANTOMFLOW_PUBLIC_URL in payloads when that is not set.
        self.webhook_service = WebhookService(
            app=self.runtime.app,
            public_url=settings.public_url or public_url,
            allow_private=settings.allow_private_urls,
            retry_delays=settings.webhook_retry_delays or RETRY_DELAYS,
        )
        self.webhook_actor = declare_webhook_actor(self.broker, lambda: self.webhook_service)
        webhook_scheduler = FollowerRunner(
            self.runtime.app,
            self.runtime.views,
            WebhookScheduler(self.runtime.app, send=sender(self.webhook_actor)),
        )
        self.export_service = ExportService(
            app=self.runtime.app,
            storage=self.runtime.storage,
            vault=self.runtime.vault,
            options=export_options(settings),
            public_url=settings.public_url or public_url,
            retry_delays=settings.export_retry_delays or ex.RETRY_DELAYS,
        )
        self.export_actor = declare_export_actor(self.broker, lambda: self.export_service)
        export_scheduler = FollowerRunner(
            self.runtime.app,
            self.runtime.views,
            ExportScheduler(self.runtime.app, send=export_sender(self.export_actor)),
        )
        self.followers = FollowerThreads(
            [*self.runtime.read_models, dispatcher, webhook_scheduler, export_scheduler]
        )
        # Everything here writes through this one application: each save wakes the
        # followers, so a submitted job reaches the worker without waiting for a poll.
        self.runtime.app.on_recorded(self.followers.wake)
        # Webhook POSTs (up to 10 s each) get threads of their own, never a render's.
        # Exports (network transfers, minutes for a large file) likewise.
        self.worker = dramatiq.Worker(
            self.broker,
            queues=set(self.broker.get_declared_queues()) - {WEBHOOK_QUEUE, EXPORT_QUEUE},
            worker_threads=worker_threads,
        )
        self.webhook_worker = dramatiq.Worker(self.broker, queues={WEBHOOK_QUEUE}, worker_threads=2)
        self.export_worker = dramatiq.Worker(self.broker, queues={EXPORT_QUEUE}, worker_threads=2)

    def start(self) -> None:
        self.worker.start()
        self.webhook_worker.start()
        self.export_worker.start()
        self.followers.start()

    def stop(self) -> None:
        self.followers.stop()
        self.worker.stop()
        self.webhook_worker.stop()
        self.export_worker.stop()
        self.broker.close()
        self.runtime.close()

"""The embedded default: API, render worker and followers in one process, on SQLite.

The worker is a real Dramatiq worker on Dramatiq's in-process broker, fed by the same
dispatcher that feeds Redis in production; only the broker differs.
"""

from __future__ import annotations

import logging

import dramatiq

from adapters.bootstrap import Runtime, build_runtime
from adapters.renderer import FFmpegRenderer
from adapters.settings import Settings
from projections.runner import FollowerRunner, FollowerThreads
from workers.actors import declare_render_actor, in_process_broker
from workers.dispatch import Dispatcher
from workers.render import RenderService

log = logging.getLogger(__name__)


class EmbeddedSystem:
    def __init__(self, settings: Settings, worker_threads: int = 2) -> None:
        self.runtime: Runtime = build_runtime(settings)
        self.broker = in_process_broker()
        service = RenderService(
            app=self.runtime.app,
            renderer=FFmpegRenderer(),
            storage=self.runtime.storage,
            lease_seconds=settings.render_lease_seconds,
        )
        self.render_actor = declare_render_actor(self.broker, lambda: service)
        dispatcher = FollowerRunner(
            self.runtime.app, self.runtime.views, Dispatcher(send=self.render_actor.send)
        )
        self.followers = FollowerThreads([*self.runtime.read_models, dispatcher])
        self.worker = dramatiq.Worker(self.broker, worker_threads=worker_threads)

    def start(self) -> None:
        self.worker.start()
        self.followers.start()

    def stop(self) -> None:
        self.followers.stop()
        self.worker.stop()
        self.broker.close()
        self.runtime.close()

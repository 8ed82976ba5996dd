"""The composition root: every kind of process is built here, from the settings.

The entry points only parse their arguments and call one function of this module:

| process                                  | entry point        | built by            |
|------------------------------------------|--------------------|---------------------|
| `phantomflow serve` (embedded default)   | `api/cli.py`       | `serve_embedded`    |
| `phantomflow render FILE` (one shot)     | `api/oneshot.py`   | `Embedded`          |
| `phantomflow api`                        | `api/cli.py`       | `serve_api`         |
| `phantomflow worker` (Dramatiq)          | `api/worker.py`    | `worker_actors`     |
| `phantomflow projections`                | `api/cli.py`       | `follow_until`      |
| one-off commands (accounts, audit, ...)  | `api/cli.py`       | `one_off`           |

What every process shares is the `Runtime`: the application on its event store, the
read models' store, the output storage and the read models (their followers and their
queries). The rest is what a process kind adds: the HTTP app, the render and webhook
services behind the Dramatiq actors, and the threads that follow the event store.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dramatiq
from aiohttp import web
from dramatiq.brokers.redis import RedisBroker

from phantomflow.adapters.persistence import (
    event_store_env,
    postgres_conninfo,
    schema_creation_lock,
)
from phantomflow.adapters.pg_locks import AdvisoryAccountLocks
from phantomflow.adapters.preview_files import PreviewFiles
from phantomflow.adapters.render import renderer_for
from phantomflow.adapters.secrets import SecretsVault, embedded_master_key, parse_master_key
from phantomflow.adapters.settings import Settings
from phantomflow.adapters.storage import Storage, storage_for
from phantomflow.adapters.topics import register_legacy_topics
from phantomflow.adapters.viewstore import PostgresViewStore, SQLiteViewStore, ViewStore
from phantomflow.api.app import create_app
from phantomflow.api.services import Services
from phantomflow.api.sse import RedactingAccessLogger
from phantomflow.domain import exports as ex
from phantomflow.domain.application import PhantomFlow
from phantomflow.projections.integrations import IntegrationsProjection, IntegrationsQueries
from phantomflow.projections.jobs import JobsProjection, JobsQueries
from phantomflow.projections.ledger import LedgerProjection, LedgerQueries
from phantomflow.projections.previews import PreviewExpiryProjection, PreviewExpiryQueries
from phantomflow.projections.runner import FollowerRunner, FollowerThreads
from phantomflow.projections.templates import TemplatesProjection, TemplatesQueries
from phantomflow.workers.actors import declare_render_actor, in_process_broker
from phantomflow.workers.dispatch import Dispatcher, PreviewDispatcher
from phantomflow.workers.exports import (
    ExportScheduler,
    ExportService,
    declare_export_actor,
    export_options,
)
from phantomflow.workers.preview_sweeper import PreviewSweeper
from phantomflow.workers.previews import PreviewService, declare_preview_actor
from phantomflow.workers.render import RenderService
from phantomflow.workers.scheduling import delayed_sender
from phantomflow.workers.webhooks import (
    RETRY_DELAYS,
    WebhookScheduler,
    WebhookService,
    declare_webhook_actor,
)

log = logging.getLogger("phantomflow")

# Previews drawn at once by the embedded process, beside (never instead of) its renders.
PREVIEW_THREADS = 2

T = TypeVar("T")


# --- what every process shares ------------------------------------------------------


@dataclass
class Runtime:
    settings: Settings
    app: PhantomFlow
    views: ViewStore
    storage: Storage
    vault: SecretsVault
    jobs_runner: FollowerRunner = field(init=False)
    jobs: JobsQueries = field(init=False)
    ledger_runner: FollowerRunner = field(init=False)
    ledger: LedgerQueries = field(init=False)
    templates_runner: FollowerRunner = field(init=False)
    templates: TemplatesQueries = field(init=False)
    integrations_runner: FollowerRunner = field(init=False)
    integrations: IntegrationsQueries = field(init=False)
    preview_files: PreviewFiles = field(init=False)
    preview_expiry_runner: FollowerRunner = field(init=False)
    preview_expiry: PreviewExpiryQueries = field(init=False)

    def __post_init__(self) -> None:
        self.jobs_runner = FollowerRunner(self.app, self.views, JobsProjection())
        self.jobs = JobsQueries(self.views, self.app)
        self.ledger_runner = FollowerRunner(self.app, self.views, LedgerProjection())
        self.ledger = LedgerQueries(self.views)
        self.templates_runner = FollowerRunner(self.app, self.views, TemplatesProjection())
        self.templates = TemplatesQueries(self.views)
        self.integrations_runner = FollowerRunner(self.app, self.views, IntegrationsProjection())
        self.integrations = IntegrationsQueries(self.views)
        self.preview_files = PreviewFiles(self.storage)
        self.preview_expiry_runner = FollowerRunner(self.app, self.views, PreviewExpiryProjection())
        self.preview_expiry = PreviewExpiryQueries(self.views)

    @property
    def read_models(self) -> list[FollowerRunner]:
        """Every read model's runner: what `phantomflow projections` keeps up to date
        and what a rebuild starts from zero."""
        return [
            self.jobs_runner,
            self.ledger_runner,
            self.templates_runner,
            self.integrations_runner,
            self.preview_expiry_runner,
        ]

    def close(self) -> None:
        self.storage.close()
        if self.vault.store is not self.views:
            self.vault.store.close()
        self.views.close()
        if isinstance(self.app.retries.shared_lock, AdvisoryAccountLocks):
            self.app.retries.shared_lock.close()
        self.app.close()


def build_runtime(settings: Settings) -> Runtime:
    register_legacy_topics()  # events recorded before the `phantomflow` package
    with schema_creation_lock(settings):
        # Constructing the application and the followers creates their tables.
        app = PhantomFlow(env=event_store_env(settings))
        views: ViewStore
        if settings.embedded:
            views = SQLiteViewStore(settings.data_dir / "views.sqlite3")
        else:
            views = PostgresViewStore(postgres_conninfo(settings))
            app.retries.shared_lock = AdvisoryAccountLocks(postgres_conninfo(settings))
        return Runtime(
            settings=settings,
            app=app,
            views=views,
            storage=storage_for(settings.storage),
            vault=secrets_vault(settings, views),
        )


def secrets_vault(settings: Settings, views: ViewStore) -> SecretsVault:
    """Integration data keys: in PostgreSQL beside the read models in production (not a
    read model: a rebuild leaves them alone), in a SQLite file of their own embedded."""
    master = parse_master_key(settings.secrets_key) if settings.secrets_key else None
    if settings.embedded:
        store = SQLiteViewStore(settings.data_dir / "keys.sqlite3")
        return SecretsVault(store, master or embedded_master_key(settings.data_dir))
    return SecretsVault(views, master)


def one_off(settings: Settings | None = None) -> contextlib.closing[Runtime]:
    """The runtime of a one-off command, closed when the command is done."""
    return contextlib.closing(build_runtime(settings or Settings.from_env()))


def production_settings() -> Settings:
    """The settings of a production process (`api`, `worker`, `projections`)."""
    settings = Settings.from_env()
    if settings.embedded or not settings.redis_url:
        raise SystemExit(
            "this command needs DATABASE_URL and REDIS_URL (or use `phantomflow serve`)"
        )
    return settings


# --- the work behind the queues -------------------------------------------------------


def render_service(runtime: Runtime) -> RenderService:
    return RenderService(
        app=runtime.app,
        renderer=renderer_for(runtime.settings),
        storage=runtime.storage,
        lease_seconds=runtime.settings.render_lease_seconds,
    )


def preview_service(runtime: Runtime) -> PreviewService:
    return PreviewService(
        app=runtime.app,
        renderer=renderer_for(runtime.settings),
        files=runtime.preview_files,
        lease_seconds=runtime.settings.render_lease_seconds,
    )


def preview_sweeper(runtime: Runtime) -> PreviewSweeper:
    return PreviewSweeper(runtime.app, runtime.preview_files, runtime.preview_expiry, runtime.views)


def webhook_service(runtime: Runtime, public_url: str | None) -> WebhookService:
    """`public_url` is what `output_uri` in payloads starts with (None: payloads say null)."""
    settings = runtime.settings
    return WebhookService(
        app=runtime.app,
        public_url=public_url,
        allow_private=settings.allow_private_urls,
        retry_delays=settings.webhook_retry_delays or RETRY_DELAYS,
    )


def export_service(runtime: Runtime, public_url: str | None) -> ExportService:
    """`public_url` is what the links in export emails start with."""
    settings = runtime.settings
    return ExportService(
        app=runtime.app,
        storage=runtime.storage,
        vault=runtime.vault,
        options=export_options(settings),
        public_url=public_url,
        retry_delays=settings.export_retry_delays or ex.RETRY_DELAYS,
    )


@dataclass(frozen=True)
class Actors:
    """The Dramatiq actors of one broker: what the followers send to, and workers run."""

    render: dramatiq.Actor[[str], None]
    webhook: dramatiq.Actor[[str, str, int], None]
    export: dramatiq.Actor[[str, int, int], None]
    preview: dramatiq.Actor[[str], None]


def declare_actors(
    broker: dramatiq.Broker,
    renders: Callable[[], RenderService],
    webhooks: Callable[[], WebhookService],
    exports: Callable[[], ExportService],
    previews: Callable[[], PreviewService],
) -> Actors:
    return Actors(
        render=declare_render_actor(broker, renders),
        webhook=declare_webhook_actor(broker, webhooks),
        export=declare_export_actor(broker, exports),
        preview=declare_preview_actor(broker, previews),
    )


def _sends_only() -> Any:
    raise RuntimeError("this process only sends messages to the queues; workers run them")


def redis_broker(settings: Settings) -> RedisBroker:
    return RedisBroker(url=settings.redis_url, namespace=settings.queue_namespace)


def built_once(build: Callable[[], T]) -> Callable[[], T]:
    """`build()` on first use and the same result after, however many threads ask at
    the same moment."""
    lock = threading.Lock()
    cached = functools.cache(build)

    def get() -> T:
        with lock:
            return cached()

    return get


def worker_actors(settings: Settings) -> Actors:
    """The actors of a `phantomflow worker` process, on the Redis broker (made Dramatiq's
    global one, which its CLI runs). The runtime and the services are built on the first
    message, after Dramatiq has forked the worker process, once per process."""
    broker = redis_broker(settings)
    dramatiq.set_broker(broker)
    runtime = built_once(lambda: build_runtime(settings))

    def webhooks() -> WebhookService:
        if not settings.public_url:
            log.warning("PHANTOMFLOW_PUBLIC_URL is not set: webhook payloads carry output_uri null")
        return webhook_service(runtime(), settings.public_url)

    return declare_actors(
        broker,
        built_once(lambda: render_service(runtime())),
        built_once(webhooks),
        built_once(lambda: export_service(runtime(), settings.public_url)),
        built_once(lambda: preview_service(runtime())),
    )


# --- following the event store --------------------------------------------------------


def followers(runtime: Runtime, actors: Actors) -> FollowerThreads:
    """Every tracked follower of the event store: the read models, the dispatchers (to the
    render and preview queues), the webhook scheduler (to the webhook queue) and the
    export scheduler (to the export queue)."""
    app, views = runtime.app, runtime.views
    lease = runtime.settings.render_lease_seconds
    dispatcher = FollowerRunner(app, views, Dispatcher(actors.render.send, lease))
    previews = FollowerRunner(app, views, PreviewDispatcher(actors.preview.send, lease))
    webhooks = FollowerRunner(
        app, views, WebhookScheduler(app, delayed_sender(actors.webhook), grace_seconds=lease)
    )
    exports = FollowerRunner(
        app, views, ExportScheduler(app, delayed_sender(actors.export), grace_seconds=lease)
    )
    return FollowerThreads([*runtime.read_models, dispatcher, previews, webhooks, exports])


def follow_until(stop: threading.Event) -> None:
    """`phantomflow projections`: follow the event store until `stop` is set."""
    settings = production_settings()
    runtime = build_runtime(settings)
    # Actors declared only to send to: `phantomflow worker` runs them.
    only_send = (_sends_only,) * 4
    actors = declare_actors(redis_broker(settings), *only_send)
    threads = followers(runtime, actors)
    sweeper = preview_sweeper(runtime)
    threads.start()
    sweeper.start()
    log.info(
        "following the event store: read models, dispatchers, webhooks and exports;"
        " sweeping expired previews"
    )
    stop.wait()
    sweeper.stop()
    threads.stop()
    runtime.close()


def rebuild(settings: Settings | None = None) -> list[tuple[str, int]]:
    """Drop every read model and build it again from zero: (read model, events handled)."""
    with one_off(settings) as runtime:
        return [(runner.follower.name, runner.rebuild()) for runner in runtime.read_models]


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


# --- the embedded default -------------------------------------------------------------


EMBEDDED_WORKER_TIMEOUT_MS = 50


class Embedded:
    """API, render worker and followers in one process, on SQLite.

    The worker is a real Dramatiq worker on Dramatiq's in-process broker, fed by the same
    dispatcher that feeds Redis in production; only the broker differs."""

    def __init__(
        self, settings: Settings, worker_threads: int = 2, public_url: str | None = None
    ) -> None:
        self.runtime = build_runtime(settings)
        renders = render_service(self.runtime)
        previews = preview_service(self.runtime)
        # `public_url` (the embedded server's own address) stands in for
        # PHANTOMFLOW_PUBLIC_URL in webhook payloads when that is not set.
        webhooks = webhook_service(self.runtime, settings.public_url or public_url)
        exports = export_service(self.runtime, settings.public_url or public_url)
        # Webhook POSTs (up to 10 s each) and exports (network transfers, minutes for a
        # large file) get brokers and worker threads of their own, never a render's, and
        # so do previews: a farm busy rendering still previews at once. (Two workers on
        # one broker would also give it each worker's middleware twice, which Dramatiq
        # warns about.)
        self.broker = in_process_broker()
        self.webhook_broker = in_process_broker()
        self.export_broker = in_process_broker()
        self.preview_broker = in_process_broker()
        self.actors = Actors(
            render=declare_render_actor(self.broker, lambda: renders),
            webhook=declare_webhook_actor(self.webhook_broker, lambda: webhooks),
            export=declare_export_actor(self.export_broker, lambda: exports),
            preview=declare_preview_actor(self.preview_broker, lambda: previews),
        )
        self.followers = followers(self.runtime, self.actors)
        self.sweeper = preview_sweeper(self.runtime)
        # Everything here writes through this one application: each save wakes the
        # followers, so a submitted job reaches the worker without waiting for a poll.
        self.runtime.app.on_recorded(self.followers.wake)
        # Idle worker threads wake every EMBEDDED_WORKER_TIMEOUT_MS to see whether they
        # should stop: Dramatiq's default (1 s) made each worker take up to 2 s to stop,
        # which `phantomflow render` added to every render.
        self.worker = dramatiq.Worker(
            self.broker, worker_threads=worker_threads, worker_timeout=EMBEDDED_WORKER_TIMEOUT_MS
        )
        self.webhook_worker = dramatiq.Worker(
            self.webhook_broker, worker_threads=2, worker_timeout=EMBEDDED_WORKER_TIMEOUT_MS
        )
        self.export_worker = dramatiq.Worker(
            self.export_broker, worker_threads=2, worker_timeout=EMBEDDED_WORKER_TIMEOUT_MS
        )
        self.preview_worker = dramatiq.Worker(
            self.preview_broker,
            worker_threads=PREVIEW_THREADS,
            worker_timeout=EMBEDDED_WORKER_TIMEOUT_MS,
        )

    def http_app(self) -> web.Application:
        """The HTTP app, which starts the worker and the followers with it and stops them
        when it stops."""
        app = http_app(self.runtime)

        async def start(_: web.Application) -> None:
            self.start()

        async def stop(_: web.Application) -> None:
            self.stop()

        app.on_startup.append(start)
        app.on_cleanup.append(stop)
        return app

    def start(self) -> None:
        self.worker.start()
        self.webhook_worker.start()
        self.export_worker.start()
        self.preview_worker.start()
        self.followers.start()
        self.sweeper.start()

    def stop(self) -> None:
        self.sweeper.stop()
        self.followers.stop()
        # The workers wind down at once: each waits for its threads' next wake-up.
        stopping = [
            threading.Thread(target=worker.stop, name=f"{name}-worker-stop")
            for name, worker in (
                ("webhook", self.webhook_worker),
                ("export", self.export_worker),
                ("preview", self.preview_worker),
            )
        ]
        for thread in stopping:
            thread.start()
        self.worker.stop()
        for thread in stopping:
            thread.join()
        for broker in (self.broker, self.webhook_broker, self.export_broker, self.preview_broker):
            broker.close()
        self.runtime.close()


def serve_embedded(host: str, port: int) -> int:
    """`phantomflow serve`: the embedded default on `host`:`port` until stopped."""
    settings = Settings.from_env()
    if not settings.embedded:
        log.error(
            "serve runs the embedded default; unset DATABASE_URL or use api/worker/projections"
        )
        return 2
    # Webhook payloads need the server's public address: PHANTOMFLOW_PUBLIC_URL, or else
    # the address this server listens on (right for clients on this machine only).
    local = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    system = Embedded(settings, public_url=f"http://{local}:{port}")
    log.info("embedded PhantomFlow on http://%s:%d (data in %s)", host, port, settings.data_dir)
    run_http(system.http_app(), host, port)
    return 0


# --- the API --------------------------------------------------------------------------


def http_app(runtime: Runtime) -> web.Application:
    """The aiohttp app on a runtime (its event hub follows the store while it runs)."""
    return create_app(Services(runtime))


def serve_api(host: str, port: int) -> int:
    """`phantomflow api`: one API process on `host`:`port` until stopped. API processes
    are stateless, so several can listen on one port of one host (`reuse_port`) and the
    kernel spreads connections over them (one process uses one core)."""
    runtime = build_runtime(production_settings())
    app = http_app(runtime)

    async def close(_: web.Application) -> None:
        runtime.close()

    app.on_cleanup.append(close)
    run_http(app, host, port, reuse_port=True)
    return 0


def run_http(app: web.Application, host: str, port: int, reuse_port: bool = False) -> None:
    # handler_cancellation: a client that disconnects cancels its handler at once, so an
    # event stream (api/sse.py) frees its resources without waiting for a write to fail.
    # The access log leaves out keys passed as `apiKey` (event streams).
    web.run_app(
        app,
        host=host,
        port=port,
        print=None,
        handler_cancellation=True,
        access_log_class=RedactingAccessLogger,
        reuse_port=reuse_port or None,
    )

"""The composition root: builds the application and its adapters from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from phantomflow.adapters.persistence import (
    event_store_env,
    postgres_conninfo,
    schema_creation_lock,
)
from phantomflow.adapters.pg_locks import AdvisoryAccountLocks
from phantomflow.adapters.secrets import SecretsVault, embedded_master_key, parse_master_key
from phantomflow.adapters.settings import Settings
from phantomflow.adapters.storage import Storage, storage_for
from phantomflow.adapters.topics import register_legacy_topics
from phantomflow.adapters.viewstore import PostgresViewStore, SQLiteViewStore, ViewStore
from phantomflow.domain.application import PhantomFlow
from phantomflow.domain.jobs import FINAL_STATUSES
from phantomflow.projections.integrations import IntegrationsProjection, IntegrationsQueries
from phantomflow.projections.jobs import JobsProjection, JobsQueries, followed_events_after, replay
from phantomflow.projections.ledger import LedgerProjection, LedgerQueries
from phantomflow.projections.runner import FollowerRunner
from phantomflow.projections.templates import TemplatesProjection, TemplatesQueries


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

    def __post_init__(self) -> None:
        self.jobs_runner = FollowerRunner(self.app, self.views, JobsProjection())
        self.jobs = JobsQueries(self.views)
        self.ledger_runner = FollowerRunner(self.app, self.views, LedgerProjection())
        self.ledger = LedgerQueries(self.views)
        self.templates_runner = FollowerRunner(self.app, self.views, TemplatesProjection())
        self.templates = TemplatesQueries(self.views)
        self.integrations_runner = FollowerRunner(self.app, self.views, IntegrationsProjection())
        self.integrations = IntegrationsQueries(self.views)

    @property
    def read_models(self) -> list[FollowerRunner]:
        """Every read model's runner: what `phantomflow projections` keeps up to date
        and what a rebuild starts from zero."""
        return [
            self.jobs_runner,
            self.ledger_runner,
            self.templates_runner,
            self.integrations_runner,
        ]

    def job_document(
        self, account_id: str, job_id: str, sandbox: bool = False
    ) -> dict[str, Any] | None:
        """One account's job: from the read model, or from its events if the read model
        has not caught up with it yet (a GET straight after its POST must not answer
        404, nor one straight after a cancel answer "queued").
        Sandbox keys see sandbox jobs only; live keys live jobs only."""
        found = self.jobs.get_versioned(account_id, job_id, sandbox)
        if found is not None:
            doc, version = found
            # A finished job's row is final: only a queued or processing one can be behind.
            if doc["status"] in FINAL_STATUSES or not followed_events_after(
                self.app.recorder, UUID(job_id), version
            ):
                return doc
        row = replay(self.app.events.get(UUID(job_id)))
        if row is None or row["account_id"] != account_id or row["doc"]["sandbox"] != sandbox:
            return None
        return row["doc"]

    def close(self) -> None:
        self.storage.close()
        if self.vault.store is not self.views:
            self.vault.store.close()
        self.views.close()
        if isinstance(self.app.shared_account_lock, AdvisoryAccountLocks):
            self.app.shared_account_lock.close()
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
            app.shared_account_lock = AdvisoryAccountLocks(postgres_conninfo(settings))
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

"""Where events and read models live: SQLite files by default, PostgreSQL in production."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import unquote, urlparse

import psycopg

from phantomflow.adapters.settings import Settings

# How long a call waits for a free pooled connection before giving up.
POOL_WAIT_SECONDS = 5.0

# Any fixed number: the advisory lock that serialises table creation.
_SCHEMA_LOCK_KEY = 0x50464C4F57  # "PFLOW"


def event_store_env(settings: Settings) -> dict[str, str]:
    """The `eventsourcing` environment for the application's event store."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.data_dir / "events.sqlite3"),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    env = {
        # The library's PostgreSQL infrastructure, with a pool that survives restarts
        # and fails fast during outages (adapters/pg_health.py).
        "PERSISTENCE_MODULE": "phantomflow.adapters.pg_health:GuardedPostgresFactory",
        # The library's recorder with a one-statement insert (adapters/pg_events.py).
        "APPLICATION_RECORDER_TOPIC": "phantomflow.adapters.pg_events:LockingFunctionRecorder",
        **postgres_params(settings),
    }
    # A few connections kept open, more opened under load: every process (api,
    # worker, projections, and each of their copies) has a pool of its own, so the
    # idle total stays well inside PostgreSQL's max_connections.
    env["POSTGRES_POOL_SIZE"] = "2"
    env["POSTGRES_MAX_OVERFLOW"] = "10"
    env["POSTGRES_LOCK_TIMEOUT"] = "5"
    # How long a call waits for a pooled connection (the library's default is 30 s, and
    # it tries ten times): longer means an overloaded database, answered 503.
    env["POSTGRES_CONNECT_TIMEOUT"] = str(int(POOL_WAIT_SECONDS))
    if settings.database_schema:
        env["POSTGRES_SCHEMA"] = settings.database_schema
    return env


def postgres_params(settings: Settings) -> dict[str, str]:
    if settings.database_url is None:
        raise ValueError("DATABASE_URL is not set")
    url = urlparse(settings.database_url)
    if url.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {url.scheme}://")
    return {
        "POSTGRES_DBNAME": (url.path or "/postgres").lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
    }


def postgres_conninfo(settings: Settings) -> str:
    """A psycopg connection string for the read-model store, on the same database."""
    params = postgres_params(settings)
    parts = {
        "dbname": params["POSTGRES_DBNAME"],
        "host": params["POSTGRES_HOST"],
        "port": params["POSTGRES_PORT"],
        "user": params["POSTGRES_USER"],
    }
    if params["POSTGRES_PASSWORD"]:
        parts["password"] = params["POSTGRES_PASSWORD"]
    if settings.database_schema:
        parts["options"] = f"-csearch_path={settings.database_schema}"
    return " ".join(f"{key}='{_quote(value)}'" for key, value in parts.items())


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


@contextlib.contextmanager
def schema_creation_lock(settings: Settings) -> Iterator[None]:
    """Serialise table creation across processes that start at the same moment.

    `CREATE TABLE IF NOT EXISTS` is not safe against itself in PostgreSQL: two processes
    creating the same table at once collide on the catalogue's unique index. SQLite
    serialises writers itself, so the embedded default needs no lock.
    """
    if settings.database_url is None:
        yield
        return
    with psycopg.connect(postgres_conninfo(settings), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK_KEY,))

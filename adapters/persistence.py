"""Where events and read models live: SQLite files by default, PostgreSQL in production."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from adapters.settings import Settings


def event_store_env(settings: Settings) -> dict[str, str]:
    """The `eventsourcing` environment for the application's event store."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.data_dir / "events.sqlite3"),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", **postgres_params(settings)}
    env["POSTGRES_POOL_SIZE"] = "10"
    env["POSTGRES_MAX_OVERFLOW"] = "10"
    env["POSTGRES_LOCK_TIMEOUT"] = "5"
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

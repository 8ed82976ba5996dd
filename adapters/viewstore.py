"""The database that read models live in, with one small SQL dialect for both backends.

Projections write SQL with `?` placeholders and only the subset of SQL that SQLite and
PostgreSQL share (CREATE TABLE IF NOT EXISTS, INSERT … ON CONFLICT DO UPDATE, LIMIT /
OFFSET), so each read model is written once. A read model's rows and its tracked
position are written in the same transaction (see `projections/runner.py`).
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import psycopg

from phantomflow.adapters.persistence import POOL_WAIT_SECONDS
from phantomflow.adapters.pg_health import (
    CONNECT_TIMEOUT_SECONDS,
    DatabaseHealth,
    GuardedPool,
    health_of,
)


class Cursor(Protocol):
    rowcount: int

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...
    def fetchone(self) -> tuple[Any, ...] | None: ...
    def fetchall(self) -> list[tuple[Any, ...]]: ...


class ViewStore(ABC):
    dialect: str
    # Whether the database answers, where it is a server (PostgreSQL); None for SQLite.
    health: DatabaseHealth | None = None

    @abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Cursor]:
        """A read-write transaction, committed when the block exits without error."""

    @abstractmethod
    def read(self) -> contextlib.AbstractContextManager[Cursor]:
        """Reads of committed rows; any write is refused. (On PostgreSQL each statement
        sees the rows committed when it starts, as in a READ COMMITTED transaction.)"""

    @abstractmethod
    def leadership(self, name: str) -> contextlib.AbstractContextManager[bool]:
        """Try to become the one process that runs the follower `name`.

        Yields True while this process holds the lead. Followers are safe to run twice
        (their position is compare-and-set), but one active copy avoids wasted work."""

    @abstractmethod
    def close(self) -> None: ...


class SQLiteViewStore(ViewStore):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode=WAL")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # Autocommit mode: transactions are opened explicitly below.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            self._connections.append(conn)
        yield conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self._write_lock, self._connection() as conn:
            cursor = conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    @contextlib.contextmanager
    def read(self) -> Iterator[Cursor]:
        with self._connection() as conn:
            cursor = conn.cursor()
            cursor.execute("BEGIN")
            try:
                yield cursor
            finally:
                conn.rollback()

    @contextlib.contextmanager
    def leadership(self, name: str) -> Iterator[bool]:
        # One embedded process per data directory runs each follower: a file lock.
        lock_path = self.path.parent / f"{name}.lock"
        with open(lock_path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def close(self) -> None:
        for conn in self._connections:
            conn.close()
        self._connections.clear()
        self._local = threading.local()


class _PgCursor:
    """Adapts `?` placeholders to psycopg's `%s`."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql.replace("?", "%s"), params)  # type: ignore[call-overload]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        # psycopg pipelines executemany: one round trip for the lot, not one per row.
        return self._cursor.executemany(sql.replace("?", "%s"), rows)  # type: ignore[arg-type]

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cursor.fetchall()


class PostgresViewStore(ViewStore):
    dialect = "postgres"

    def __init__(self, conninfo: str, max_size: int = 10) -> None:
        self.conninfo = conninfo
        # Pools that drop the connections a restart killed and refuse at once while the
        # server is down (adapters/pg_health.py).
        self.health = health_of(conninfo)
        self.pool = GuardedPool(
            conninfo,
            health=self.health,
            min_size=1,
            max_size=max_size,
            timeout=POOL_WAIT_SECONDS,
            open=True,
        )
        # Reads on connections of their own: in autocommit, so a read is its SELECTs
        # alone, without BEGIN, SET and COMMIT round trips (job reads answered about a
        # quarter more a second), and with every write refused by PostgreSQL itself.
        self.read_pool = GuardedPool(
            conninfo,
            health=self.health,
            min_size=1,
            max_size=max_size,
            timeout=POOL_WAIT_SECONDS,
            kwargs={"autocommit": True},
            configure=_refuse_writes,
            open=True,
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield _PgCursor(cursor)

    @contextlib.contextmanager
    def read(self) -> Iterator[Cursor]:
        with self.read_pool.connection() as conn, conn.cursor() as cursor:
            yield _PgCursor(cursor)

    @contextlib.contextmanager
    def leadership(self, name: str) -> Iterator[bool]:
        # A session-level advisory lock on a connection of its own: held as long as
        # this process lives, released by PostgreSQL at once if the process dies.
        # Advisory locks are per database, so the key names the schema too: the
        # followers of deployments (or test runs) in other schemas of the same
        # database are not this one's copies.
        # Stepping down unlocks before closing: a closed session's locks are released
        # only once its backend has exited, after the close returns, so a successor
        # asking at once could be refused (seen under CPU load: 2 in 300).
        key = zlib.crc32(name.encode()) - 2**31
        with psycopg.connect(
            self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
        ) as conn:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(current_schema()))", (key,)
            ).fetchone()
            leading = bool(row and row[0])
            try:
                yield leading
            finally:
                if leading:
                    with contextlib.suppress(psycopg.Error):  # a lost session holds nothing
                        conn.execute(
                            "SELECT pg_advisory_unlock(%s, hashtext(current_schema()))", (key,)
                        )

    def close(self) -> None:
        self.read_pool.close()
        self.pool.close()


def _refuse_writes(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET default_transaction_read_only = on")

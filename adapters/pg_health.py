"""Knowing whether PostgreSQL is reachable, and connection pools that act on it.

Two things go wrong around a PostgreSQL restart or outage with plain psycopg pools:

- After a restart, the pool hands out connections the server closed (`AdminShutdown`):
  the next statement on each fails. `GuardedPool` looks at a connection before handing
  it out: one that the server has written to while it sat idle (its goodbye) is pinged,
  and a dead one is thrown away and the next one tried at once. A live idle connection
  costs a zero-timeout poll(), no round trip.
- During an outage, a request waits for a connection for the pool's whole timeout (30 s
  by default), and the library's retries multiply that; after it, the pool's reconnect
  backoff (1, 2, 4 … 64 s) can keep it away for a minute more. `DatabaseHealth` learns
  from a failed connection or check that the server may be gone and probes it five times a
  second: while it is down, `GuardedPool` refuses at once (`PoolTimeout`), so callers
  fail within a bounded time (the API answers 503, see api/errors.py), and reconnect
  attempts give up quickly so that the first request after the outage connects afresh.

One `DatabaseHealth` per server and process (`health_of`), shared by the event store's
pool (through `GuardedPostgresFactory`) and the read models' pools.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from eventsourcing.postgres import PostgresDatastore, PostgresFactory
from eventsourcing.utils import Environment, EnvType
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

# How often a server believed down is tried again, and how long one try may take.
PROBE_INTERVAL_SECONDS = 0.2
PROBE_CONNECT_TIMEOUT_SECONDS = 2
# A pool waiting for a connection looks at the server's health this often, so a wait
# that began just before an outage was noticed ends soon after.
WAIT_SLICE_SECONDS = 0.25
# How long a pool keeps retrying one failed connection attempt before giving up (the
# next request then starts a fresh attempt, instead of waiting out a long backoff).
RECONNECT_TIMEOUT_SECONDS = 2.0
# libpq's own limit on opening a connection (a host that does not answer at all).
CONNECT_TIMEOUT_SECONDS = 3

# What a caller sees when the database is unreachable: psycopg's own errors (PoolTimeout
# is an OperationalError) and the event store's translations of them.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    StoreOperationalError,
    StoreInterfaceError,
)


class DatabaseUnavailable(PoolTimeout):
    """PostgreSQL is known to be unreachable right now; nothing was sent to it."""


class DatabaseHealth:
    """Whether one PostgreSQL server answers, learnt from failures and confirmed by a
    probe: `suspect()` starts probing; the server is `down` from a failed probe until
    a successful one."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.down = False
        self.down_since: float | None = None
        self._probing = False
        self._lock = threading.Lock()

    def suspect(self) -> None:
        """A connection failed: find out (in the background) whether the server is up."""
        with self._lock:
            if self._probing:
                return
            self._probing = True
        threading.Thread(target=self._probe, name="pg-health-probe", daemon=True).start()

    def _probe(self) -> None:
        try:
            while not self._answers():
                if not self.down:
                    log.warning(
                        "PostgreSQL is unreachable: database work is refused until it is back"
                    )
                    self.down_since = time.monotonic()
                    self.down = True
                time.sleep(PROBE_INTERVAL_SECONDS)
            if self.down:
                log.warning(
                    "PostgreSQL is back after %.1f s", time.monotonic() - (self.down_since or 0)
                )
            self.down = False
            self.down_since = None
        finally:
            with self._lock:
                self._probing = False

    def _answers(self) -> bool:
        try:
            with psycopg.connect(
                self.conninfo, connect_timeout=PROBE_CONNECT_TIMEOUT_SECONDS, autocommit=True
            ) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False


_registry: dict[tuple[str, str], DatabaseHealth] = {}
_registry_lock = threading.Lock()


def health_of(conninfo: str) -> DatabaseHealth:
    """The one DatabaseHealth of the server `conninfo` names, in this process."""
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    key = (str(params.get("host", "")), str(params.get("port", "")))
    with _registry_lock:
        found = _registry.get(key)
        if found is None:
            found = _registry[key] = DatabaseHealth(conninfo)
        return found


def _idle_connection_is_sound(conn: psycopg.Connection[Any]) -> bool:
    """An idle connection has nothing to read; if it has, the server most likely said
    goodbye (AdminShutdown, a crash, a terminated backend): then ping it."""
    if conn.closed:
        return False
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    if not poller.poll(0):
        return True
    try:
        ConnectionPool.check_connection(conn)
    except psycopg.Error:
        return False
    return True


class GuardedPool(ConnectionPool):  # type: ignore[type-arg]
    """A psycopg pool that hands out only connections that look alive, and refuses at
    once while its server is known to be down."""

    def __init__(self, conninfo: str, *, health: DatabaseHealth, **options: Any) -> None:
        options.setdefault("reconnect_timeout", RECONNECT_TIMEOUT_SECONDS)
        kwargs = dict(options.pop("kwargs", None) or {})
        kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        super().__init__(conninfo, kwargs=kwargs, **options)
        self.health = health

    def getconn(self, timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if self.health.down:
                raise DatabaseUnavailable("PostgreSQL is unreachable")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.health.suspect()
                raise PoolTimeout(f"no database connection within {self.timeout:.1f} s")
            try:
                conn = super().getconn(timeout=min(WAIT_SLICE_SECONDS, remaining))
            except PoolTimeout:
                continue
            if _idle_connection_is_sound(conn):
                return conn
            # Returned broken, the pool throws it away and opens a replacement.
            self.putconn(conn)
            self.health.suspect()

    def reconnect_failed(self) -> None:
        self.health.suspect()
        super().reconnect_failed()


class GuardedPostgresFactory(PostgresFactory):
    """`eventsourcing`'s PostgreSQL infrastructure with a GuardedPool for the event store
    (selected by PERSISTENCE_MODULE, see adapters/persistence.py)."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self.datastore.pool = guarded_pool_for(self.datastore)


def guarded_pool_for(datastore: PostgresDatastore) -> GuardedPool:
    """A GuardedPool configured as the datastore's own pool, which has not been opened
    yet (the datastore opens it on first use)."""
    original = datastore.pool
    kwargs = dict(original.kwargs or {})  # type: ignore[call-overload]
    params = {key: value for key, value in kwargs.items() if key != "row_factory" and value}
    conninfo = psycopg.conninfo.make_conninfo("", **params)
    guarded = GuardedPool(
        original.conninfo,
        health=health_of(conninfo),
        connection_class=original.connection_class,
        kwargs=kwargs,
        min_size=original.min_size,
        max_size=original.max_size,
        open=False,
        configure=datastore.after_connect_func(),
        timeout=original.timeout,
        max_waiting=original.max_waiting,
        max_lifetime=original.max_lifetime,
    )
    original.close()
    return guarded

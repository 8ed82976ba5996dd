"""A lock on one account shared by every process on the PostgreSQL database.

Writes to an account are optimistic: each process reloads the account and saves with a
version check, and the loser of a race retries. Inside one process, submissions to an
account already queue on a lock (`ConflictRetries.local_lock`, domain/concurrency.py);
across processes they cannot, so many API processes charging one busy account met each
other in conflict after conflict (16 processes: about four conflicts per submission).

A write that has met a conflict retries holding this lock, a session-level advisory
lock: contention becomes a queue instead of a storm, and the first attempt still costs
nothing extra. The lock guards nothing by itself; the version check stays what keeps
the balance right, so a lost lock (a dropped connection releases it) costs only time.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from uuid import UUID

from psycopg_pool import ConnectionPool

# The first key of the two-key form: PostgreSQL keeps two-key advisory locks apart from
# one-key ones (like the schema-creation lock in adapters/persistence.py).
NAMESPACE = 0x5046  # "PF"


def account_key(account_id: UUID) -> int:
    """A signed 32-bit key for the account; two accounts sharing one only wait longer."""
    return zlib.crc32(account_id.bytes) - 2**31


class AdvisoryAccountLocks:
    def __init__(self, conninfo: str, max_size: int = 8) -> None:
        # Connections of their own: a lock is held while the write it guards uses the
        # event store's pool, so sharing that pool could leave the write no connection.
        self.pool = ConnectionPool(
            conninfo, min_size=0, max_size=max_size, kwargs={"autocommit": True}, open=True
        )

    @contextlib.contextmanager
    def __call__(self, account_id: UUID) -> Iterator[None]:
        key = (NAMESPACE, account_key(account_id))
        with self.pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", key)
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)

    def close(self) -> None:
        self.pool.close()

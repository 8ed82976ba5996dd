"""The PostgreSQL event recorder: `eventsourcing`'s own, with a one-statement insert.

`eventsourcing` inserts a batch of events as a pipelined transaction: SET LOCAL
lock_timeout, LOCK TABLE … IN EXCLUSIVE MODE, NOTIFY, an INSERT of an array of a
composite type, a sync, COMMIT. The table lock is what keeps the notification log
gap-free (a follower never passes an id that a slower transaction fills in later), and
it is held across the client's round trips. Measured on a submission (two events), the
pipeline and the composite-type encoding cost about 1.1 ms of the API process's CPU,
more than everything else the service layer does.

This recorder does the same statements inside one PL/pgSQL function, called as one
statement in autocommit mode, so one round trip is its own transaction: the lock is
taken, the rows inserted and the transaction committed on the server without waiting
on the client, and the arguments are four plain arrays. Reads, tracking and table
creation are the library's own; the function is created with the tables.

It also settles the one case the library's retry gets wrong: a connection lost after
the commit (see `insert_events`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.sql import SQL, Identifier, Literal

# As the library's own recorder: ten attempts, 0.2 s apart, when PostgreSQL is unreachable
# or the table lock is not granted within the lock timeout.
INSERT_ATTEMPTS = 10
RETRY_WAIT_SECONDS = 0.2


class LockingFunctionRecorder(PostgresApplicationRecorder):
    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        function = Identifier(datastore.schema, f"pf_insert_{events_table_name}")
        table = Identifier(datastore.schema, events_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {function}("
                " ids {id_type}[], versions bigint[], topics text[], states bytea[])"
                " RETURNS SETOF bigint LANGUAGE plpgsql AS $body$"
                " BEGIN"
                "  SET LOCAL lock_timeout = {timeout};"
                "  LOCK TABLE {table} IN EXCLUSIVE MODE;"
                "  NOTIFY {channel};"
                "  RETURN QUERY INSERT INTO {table}"
                "   (originator_id, originator_version, topic, state)"
                "   SELECT * FROM unnest(ids, versions, topics, states)"
                "   RETURNING notification_id;"
                " END $body$"
            ).format(
                function=function,
                id_type=Identifier(datastore.originator_id_type),
                timeout=Literal(f"{datastore.lock_timeout}s"),
                table=table,
                channel=Identifier(self.channel_name),
            )
        )
        self._find_call = SQL(
            "SELECT e.notification_id"
            " FROM unnest(%s::{id_type}[], %s::bigint[], %s::bytea[]) WITH ORDINALITY"
            "  AS wanted(id, version, state, n)"
            " JOIN {table} AS e ON e.originator_id = wanted.id"
            "  AND e.originator_version = wanted.version AND e.state = wanted.state"
            " ORDER BY wanted.n"
        ).format(id_type=Identifier(datastore.originator_id_type), table=table)
        self._insert_call = SQL(
            "SELECT id FROM {function}(%s::{id_type}[], %s::bigint[], %s::text[], %s::bytea[])"
            " AS inserted(id)"
        ).format(function=function, id_type=Identifier(datastore.originator_id_type))

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert the events in one transaction; return their positions in order.

        A lost connection leaves the outcome unknown: the transaction may have
        committed before the answer was lost. Before trying again, this looks for the
        very events (same aggregate, version and state): if they are there, they are
        ours, and their positions are the answer. Retrying blindly, as the library
        does, would meet our own events as a version conflict, and the service layer
        would then redo the whole command: a second job and a second charge."""
        if not stored_events:
            return []
        params = (
            [event.originator_id for event in stored_events],
            [event.originator_version for event in stored_events],
            [event.topic for event in stored_events],
            [event.state for event in stored_events],
        )
        outcome_unknown = False
        for attempt in range(1, INSERT_ATTEMPTS + 1):
            try:
                if outcome_unknown:
                    recorded = self._positions_of(params)
                    if recorded is not None:
                        return recorded
                    outcome_unknown = False  # not committed: safe to insert again
                return self._insert(params)
            except (InterfaceError, OperationalError):
                if attempt == INSERT_ATTEMPTS:
                    raise
                outcome_unknown = True
                time.sleep(RETRY_WAIT_SECONDS)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _insert(self, params: tuple[list[Any], ...]) -> list[int]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._insert_call, params, prepare=True)
            return [row["id"] for row in curs.fetchall()]

    def _positions_of(self, params: tuple[list[Any], ...]) -> list[int] | None:
        """The positions of exactly these events (the insert's arguments), if every
        one of them is stored."""
        ids, versions, _topics, states = params
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._find_call, (ids, versions, states))
            found = [row["notification_id"] for row in curs.fetchall()]
        return found if len(found) == len(ids) else None

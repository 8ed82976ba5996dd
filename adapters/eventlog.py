"""One aggregate's events with their positions in the application sequence.

`eventsourcing` reads an aggregate's events (`select_events`) without their notification
ids, and the application sequence (`select_notifications`) without a filter on the
aggregate. Live progress needs both at once: a job's events, each with the position
that a client's `Last-Event-ID` names. Both recorders keep that position on the event
row (SQLite's `rowid`, PostgreSQL's `notification_id`) and index the rows by aggregate,
so this is one indexed query.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier


def aggregate_notifications(
    recorder: ApplicationRecorder, originator_id: UUID
) -> list[Notification]:
    """Every stored event of one aggregate, in order, as notifications (with positions)."""
    if isinstance(recorder, SQLiteApplicationRecorder):
        return _sqlite(recorder, originator_id)
    if isinstance(recorder, PostgresApplicationRecorder):
        return _postgres(recorder, originator_id)
    raise TypeError(f"unsupported recorder {type(recorder).__name__}")


def _sqlite(recorder: SQLiteApplicationRecorder, originator_id: UUID) -> list[Notification]:
    statement = (
        "SELECT rowid, originator_id, originator_version, topic, state "
        f"FROM {recorder.events_table_name} WHERE originator_id = ? "
        "ORDER BY originator_version"
    )
    with recorder.datastore.transaction(commit=False) as cursor:
        # The SQLite recorder stores UUIDs as 32 hex digits.
        cursor.execute(statement, (originator_id.hex,))
        rows = cursor.fetchall()
    return [
        Notification(
            id=row["rowid"],
            originator_id=recorder.convert_originator_id(row["originator_id"]),
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=row["state"],
        )
        for row in rows
    ]


def _postgres(recorder: PostgresApplicationRecorder, originator_id: UUID) -> list[Notification]:
    statement = SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state "
        "FROM {schema}.{table} WHERE originator_id = %s ORDER BY originator_version"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(statement, (originator_id,))
        rows = cursor.fetchall()
    return [
        Notification(
            id=row["notification_id"],
            originator_id=row["originator_id"],
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=bytes(row["state"]),
        )
        for row in rows
    ]

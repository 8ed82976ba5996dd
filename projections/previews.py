"""The previews' expiry index: which previews' time is up, for the sweeper
(workers/preview_sweeper.py).

One row per preview: when it expires, and whether its expiry is recorded. Reads of one
preview (`GET /api/previews/{id}`) come from its own events instead: a preview has a
handful of them, and its owner must see its storyboard the moment it is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from phantomflow.adapters.topics import topics_of
from phantomflow.adapters.viewstore import Cursor, ViewStore
from phantomflow.domain.previews import Preview
from phantomflow.projections.runner import Follower, Tracked
from phantomflow.projections.timestamps import iso

TABLE = "preview_expiry_v1"


class PreviewExpiryProjection(Follower):
    name = "preview_expiry_v1"
    topics = topics_of(Preview.Created, Preview.Expired)
    tables = (TABLE,)

    def create_tables(self, cursor: Cursor) -> None:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            " preview_id TEXT PRIMARY KEY,"
            " expires_at TEXT NOT NULL,"
            " expired INTEGER NOT NULL)"
        )
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_due ON {TABLE} (expired, expires_at)")

    def handle(self, cursor: Cursor, events: Sequence[Tracked]) -> int:
        for tracked in events:
            event = tracked.event
            preview_id = event.originator_id.hex
            if isinstance(event, Preview.Created):
                cursor.execute(
                    f"INSERT INTO {TABLE} (preview_id, expires_at, expired) VALUES (?, ?, 0)"
                    " ON CONFLICT (preview_id) DO NOTHING",
                    (preview_id, iso(event.timestamp + timedelta(seconds=event.lifetime_seconds))),
                )
            else:
                cursor.execute(
                    f"UPDATE {TABLE} SET expired = 1 WHERE preview_id = ?", (preview_id,)
                )
        return len(events)


class PreviewExpiryQueries:
    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def due(self, now: datetime, limit: int) -> list[UUID]:
        """Previews whose time is up and whose expiry is not recorded, oldest first."""
        with self.store.read() as cursor:
            cursor.execute(
                f"SELECT preview_id FROM {TABLE} WHERE expired = 0 AND expires_at <= ?"
                " ORDER BY expires_at LIMIT ?",
                (iso(now), limit),
            )
            rows = cursor.fetchall()
        return [UUID(hex=row[0]) for row in rows]

"""The integrations read model: what `GET /api/integrations` answers from.

One row per live integration: its public id, its account and key mode (the list is
scoped to both), the position of its creation (newest first) and its public view as a
JSON document: settings in the clear, secrets only as hints (their last characters),
never sealed or plain. A deleted integration's row is removed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from phantomflow.adapters.topics import topics_of
from phantomflow.adapters.viewstore import Cursor, ViewStore
from phantomflow.domain.integrations import Integration, integration_ref
from phantomflow.projections.runner import Follower, Tracked
from phantomflow.projections.timestamps import iso

TABLE = "integrations_view_v1"


def document_of(
    integration_id: Any,
    type: str,
    name: str,
    settings: dict[str, Any],
    secret_hints: dict[str, str | None],
    created_at: Any,
) -> dict[str, Any]:
    return {
        "id": integration_ref(integration_id),
        "type": type,
        "name": name,
        "settings": settings,
        "secrets": {
            field: {"set": True, "last4": last4} for field, last4 in sorted(secret_hints.items())
        },
        "created_at": iso(created_at),
    }


def view_of(integration: Integration) -> dict[str, Any]:
    """The same view, from the aggregate (the answer to its creation)."""
    return document_of(
        integration.id,
        integration.type,
        integration.name,
        integration.settings,
        integration.secret_hints,
        integration.created_on,
    )


class IntegrationsProjection(Follower):
    name = "integrations_v1"
    topics = topics_of(Integration.Created, Integration.Deleted)
    tables = (TABLE,)

    def create_tables(self, cursor: Cursor) -> None:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            " integration_id TEXT PRIMARY KEY,"
            " account_id TEXT NOT NULL,"
            " sandbox INTEGER NOT NULL,"
            " seq BIGINT NOT NULL,"
            " doc TEXT NOT NULL)"
        )
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {TABLE}_by_account ON {TABLE} (account_id, sandbox, seq)"
        )

    def handle(self, cursor: Cursor, events: Sequence[Tracked]) -> int:
        for tracked in events:
            event = tracked.event
            if isinstance(event, Integration.Created):
                doc = document_of(
                    event.originator_id,
                    event.type,
                    event.name,
                    event.settings,
                    event.secret_hints,
                    event.timestamp,
                )
                cursor.execute(
                    f"INSERT INTO {TABLE} (integration_id, account_id, sandbox, seq, doc)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (integration_id) DO NOTHING",
                    (
                        str(event.originator_id),
                        str(event.account_id),
                        int(event.sandbox),
                        tracked.position,
                        json.dumps(doc, separators=(",", ":")),
                    ),
                )
            else:
                cursor.execute(
                    f"DELETE FROM {TABLE} WHERE integration_id = ?", (str(event.originator_id),)
                )
        return len(events)


class IntegrationsQueries:
    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def list(self, account_id: str, sandbox: bool) -> list[dict[str, Any]]:
        with self.store.read() as cursor:
            cursor.execute(
                f"SELECT doc FROM {TABLE} WHERE account_id = ? AND sandbox = ? ORDER BY seq DESC",
                (account_id, int(sandbox)),
            )
            return [json.loads(row[0]) for row in cursor.fetchall()]

"""The templates read model: what `GET /api/templates` and `GET /api/templates/{id}` answer from.

One row per live template: its public id, its owner (the list filters on it), the
position of its creation (the list sorts on it, newest first) and its whole public view
as a JSON document, script and variables included. A deleted template's row is removed.
Timestamps are the events' own, so a rebuild from zero writes the same rows byte for
byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from phantomflow.adapters.topics import topics_of
from phantomflow.adapters.viewstore import Cursor, ViewStore
from phantomflow.domain.substitution import variables_of
from phantomflow.domain.templates import Template, template_ref
from phantomflow.projections.runner import Follower, Tracked
from phantomflow.projections.timestamps import iso

TABLE = "templates_view"


def document(
    ref: str,
    name: str,
    script: dict[str, Any],
    is_public: bool,
    created_at: datetime,
    updated_at: datetime,
    version: int,
) -> dict[str, Any]:
    """The public view of one version of a template (the detail route's body)."""
    return {
        "id": ref,
        "name": name,
        "script": script,
        "is_public": is_public,
        "variables": variables_of(script),
        "version": version,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
    }


def document_of(template: Template) -> dict[str, Any]:
    """The same view, from an aggregate (a pinned version, or the latest one)."""
    return document(
        template.ref,
        template.name,
        template.script,
        template.is_public,
        template.created_on,
        template.modified_on,
        template.version,
    )


@dataclass
class Row:
    owner_id: str
    seq: int
    doc: dict[str, Any]


def created_row(tracked: Tracked) -> Row:
    event = tracked.event
    return Row(
        owner_id=str(event.owner_id),
        seq=tracked.position,
        doc=document(
            template_ref(event.originator_id),
            event.name,
            event.script,
            event.is_public,
            event.timestamp,
            event.timestamp,
            event.originator_version,
        ),
    )


def apply_update(doc: dict[str, Any], event: Any) -> None:
    if event.name is not None:
        doc["name"] = event.name
    if event.script is not None:
        doc["script"] = event.script
        doc["variables"] = variables_of(event.script)
    if event.is_public is not None:
        doc["is_public"] = event.is_public
    doc["version"] = event.originator_version
    doc["updated_at"] = iso(event.timestamp)


def replay(events: Iterable[Any]) -> Row | None:
    """A template's row straight from its own events (None if deleted or unknown).

    Used when the read model has not seen a template created a moment ago: the same
    functions fold the same events, so the answer is the one the read model will give."""
    row: Row | None = None
    for event in events:
        if isinstance(event, Template.Created):
            row = created_row(Tracked(position=0, event=event))
        elif isinstance(event, Template.Updated) and row is not None:
            apply_update(row.doc, event)
        elif isinstance(event, Template.Deleted):
            row = None
    return row


class TemplatesProjection(Follower):
    name = "templates"
    topics = topics_of(Template.Created, Template.Updated, Template.Deleted)
    tables = (TABLE,)

    def create_tables(self, cursor: Cursor) -> None:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            " template_id TEXT PRIMARY KEY,"
            " owner_id TEXT NOT NULL,"
            " seq BIGINT NOT NULL,"
            " doc TEXT NOT NULL)"
        )
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_by_owner ON {TABLE} (owner_id, seq)")

    def handle(self, cursor: Cursor, events: Sequence[Tracked]) -> int:
        # Apply the batch in memory, then write (or delete) each touched template once.
        rows: dict[str, Row | None] = {}
        for tracked in events:
            event = tracked.event
            ref = template_ref(event.originator_id)
            if isinstance(event, Template.Created):
                rows[ref] = created_row(tracked)
            elif isinstance(event, Template.Deleted):
                rows[ref] = None
            elif isinstance(event, Template.Updated):
                row = rows[ref] if ref in rows else load_row(cursor, ref)
                if row is not None:
                    apply_update(row.doc, event)
                    rows[ref] = row
        deleted = [(ref,) for ref, found in rows.items() if found is None]
        kept = [
            (ref, found.owner_id, found.seq, encode(found.doc))
            for ref, found in rows.items()
            if found is not None
        ]
        if deleted:
            cursor.executemany(f"DELETE FROM {TABLE} WHERE template_id = ?", deleted)
        if kept:
            cursor.executemany(
                f"INSERT INTO {TABLE} (template_id, owner_id, seq, doc) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (template_id) DO UPDATE SET doc = excluded.doc",
                kept,
            )
        return len(events)


def encode(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


def load_row(cursor: Cursor, ref: str) -> Row | None:
    cursor.execute(f"SELECT owner_id, seq, doc FROM {TABLE} WHERE template_id = ?", (ref,))
    found = cursor.fetchone()
    if found is None:
        return None
    owner_id, seq, doc = found
    return Row(owner_id=owner_id, seq=int(seq), doc=json.loads(doc))


SUMMARY_FIELDS = ("id", "name", "is_public", "version", "created_at", "updated_at")


class TemplatesQueries:
    """Reads of the templates read model. Access rules are the caller's to apply."""

    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def get(self, ref: str) -> Row | None:
        with self.store.read() as cursor:
            return load_row(cursor, ref)

    def owned_by(self, owner_id: str) -> list[dict[str, Any]]:
        """An account's templates, newest first, without their scripts."""
        with self.store.read() as cursor:
            cursor.execute(
                f"SELECT doc FROM {TABLE} WHERE owner_id = ? ORDER BY seq DESC", (owner_id,)
            )
            found = cursor.fetchall()
        return [summary(json.loads(doc)) for (doc,) in found]


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    return {field: doc[field] for field in SUMMARY_FIELDS}

"""The assets read model: what `GET /api/assets` answers from.

One row per live asset: its account and key mode (the list is scoped to both), its
type (the list's filter), the position of its upload (newest first) and its public view
as a JSON document, without its `url` (which starts with the API's public address, added
when it is read). A deleted asset's row is removed. An asset's `Uploaded` and `Probed`
are saved together; the row is written at the first and completed at the second.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from phantomflow.adapters.topics import topics_of
from phantomflow.adapters.viewstore import Cursor, ViewStore
from phantomflow.domain.assets import Asset, asset_ref
from phantomflow.projections.paging import newest_first
from phantomflow.projections.runner import Follower, Tracked
from phantomflow.projections.timestamps import iso

TABLE = "assets_view_v1"


def asset_url(base: str, ref: str) -> str:
    """Where an asset's bytes are served (with the caller's key): docs/api.md."""
    return f"{base}/api/assets/{ref}/content"


def public_view(doc: dict[str, Any], base: str) -> dict[str, Any]:
    return {**doc, "url": asset_url(base, doc["id"])}


def view_of(asset: Asset) -> dict[str, Any]:
    """The stored document of an asset, from the aggregate (without `url`)."""
    return {
        "id": asset.ref,
        "name": asset.name,
        "type": asset.type,
        "mime_type": asset.mime_type,
        "size": asset.size,
        "sha256": asset.sha256,
        "width": asset.width,
        "height": asset.height,
        "duration_seconds": asset.duration_seconds,
        "created_at": iso(asset.created_on),
    }


class AssetsProjection(Follower):
    name = "assets_v1"
    topics = topics_of(Asset.Uploaded, Asset.Probed, Asset.Deleted)
    tables = (TABLE,)

    def create_tables(self, cursor: Cursor) -> None:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            " asset_id TEXT PRIMARY KEY,"
            " account_id TEXT NOT NULL,"
            " sandbox INTEGER NOT NULL,"
            " type TEXT,"
            " seq BIGINT NOT NULL,"
            " doc TEXT NOT NULL)"
        )
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {TABLE}_by_account"
            f" ON {TABLE} (account_id, sandbox, type, seq)"
        )

    def handle(self, cursor: Cursor, events: Sequence[Tracked]) -> int:
        for tracked in events:
            event = tracked.event
            asset_id = str(event.originator_id)
            if isinstance(event, Asset.Uploaded):
                doc = {
                    "id": asset_ref(event.originator_id),
                    "name": event.name,
                    "type": None,
                    "mime_type": None,
                    "size": event.size,
                    "sha256": event.sha256,
                    "width": None,
                    "height": None,
                    "duration_seconds": None,
                    "created_at": iso(event.timestamp),
                }
                cursor.execute(
                    f"INSERT INTO {TABLE} (asset_id, account_id, sandbox, type, seq, doc)"
                    " VALUES (?, ?, ?, NULL, ?, ?) ON CONFLICT (asset_id) DO NOTHING",
                    (
                        asset_id,
                        str(event.account_id),
                        int(event.sandbox),
                        tracked.position,
                        _dumps(doc),
                    ),
                )
            elif isinstance(event, Asset.Probed):
                cursor.execute(f"SELECT doc FROM {TABLE} WHERE asset_id = ?", (asset_id,))
                row = cursor.fetchone()
                if row is None:  # deleted since (a rebuild meets events in order)
                    continue
                doc = json.loads(row[0])
                doc.update(
                    type=event.type,
                    mime_type=event.mime_type,
                    width=event.width,
                    height=event.height,
                    duration_seconds=event.duration_seconds,
                )
                cursor.execute(
                    f"UPDATE {TABLE} SET type = ?, doc = ? WHERE asset_id = ?",
                    (event.type, _dumps(doc), asset_id),
                )
            else:
                cursor.execute(f"DELETE FROM {TABLE} WHERE asset_id = ?", (asset_id,))
        return len(events)


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


@dataclass(frozen=True)
class AssetPage:
    assets: list[dict[str, Any]]  # stored documents, without `url`
    total: int


class AssetsQueries:
    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def page(
        self, account_id: str, sandbox: bool, type: str | None, page: int, limit: int
    ) -> AssetPage:
        """A page of the account's assets in one key mode, newest first; with `type`,
        of that type."""
        where, params = "account_id = ? AND sandbox = ?", [account_id, int(sandbox)]
        if type:
            where += " AND type = ?"
            params.append(type)
        assets, total = newest_first(self.store, TABLE, where, params, page, limit)
        return AssetPage(assets=assets, total=total)

"""A page of a read model's documents, newest first, with the count of all that match:
the shape every list of the API (jobs, assets) answers with."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from phantomflow.adapters.viewstore import ViewStore


def newest_first(
    store: ViewStore, table: str, where: str, params: Sequence[Any], page: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Page `page` (from 1) of `limit` documents of `table`'s rows matching `where`
    (its `?` bound to `params`), latest `seq` first; and how many rows match in all."""
    with store.read() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", params)
        count_row = cursor.fetchone()
        cursor.execute(
            f"SELECT doc FROM {table} WHERE {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
            [*params, limit, (page - 1) * limit],
        )
        rows = cursor.fetchall()
    return [json.loads(row[0]) for row in rows], int(count_row[0]) if count_row else 0

"""The credit ledger: every movement of every account, with a running balance.

One row per CreditsGranted / CreditsCharged / CreditsRefunded event, keyed by the
event's position in the store, so a row can always be traced to the event that made
it. Amounts are signed (a charge is negative); `balance_after` is the account's
balance once the movement is applied. Built only from the events' own data, so a
rebuild writes the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from phantomflow.adapters.topics import topics_of
from phantomflow.adapters.viewstore import Cursor, ViewStore
from phantomflow.domain.accounts import CreditAccount
from phantomflow.projections.runner import Follower, Tracked
from phantomflow.projections.timestamps import iso

TABLE = "ledger_entries"
GRANT = "grant"
CHARGE = "charge"
ENTRY_TYPES = (GRANT, CHARGE, "settlement_refund", "failure_refund", "cancellation_refund")
COLUMNS = ("seq", "at", "type", "amount", "balance_after", "job_id", "reason")


class LedgerProjection(Follower):
    name = "ledger"
    topics = topics_of(
        CreditAccount.CreditsGranted,
        CreditAccount.CreditsCharged,
        CreditAccount.CreditsRefunded,
    )
    tables = (TABLE,)

    def create_tables(self, cursor: Cursor) -> None:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            " seq BIGINT PRIMARY KEY,"
            " account_id TEXT NOT NULL,"
            " at TEXT NOT NULL,"
            " type TEXT NOT NULL,"
            " amount BIGINT NOT NULL,"
            " balance_after BIGINT NOT NULL,"
            " job_id TEXT,"
            " reason TEXT)"
        )
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {TABLE}_by_account ON {TABLE} (account_id, seq)"
        )

    def handle(self, cursor: Cursor, events: Sequence[Tracked]) -> int:
        balances: dict[str, int] = {}
        rows = []
        for tracked in events:
            event = tracked.event
            account_id = str(event.originator_id)
            if account_id not in balances:
                balances[account_id] = current_balance(cursor, account_id)
            entry_type, amount = movement(event)
            balances[account_id] += amount
            rows.append(
                (
                    tracked.position,
                    account_id,
                    iso(event.timestamp),
                    entry_type,
                    amount,
                    balances[account_id],
                    str(event.job_id) if hasattr(event, "job_id") else None,
                    getattr(event, "reason", None),
                )
            )
        if rows:
            cursor.executemany(
                f"INSERT INTO {TABLE} (seq, account_id, at, type, amount, balance_after, job_id,"
                " reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(events)


def movement(event: Any) -> tuple[str, int]:
    """(entry type, signed amount) of one account event."""
    if isinstance(event, CreditAccount.CreditsGranted):
        return GRANT, event.amount
    if isinstance(event, CreditAccount.CreditsCharged):
        return CHARGE, -event.amount
    return f"{event.kind}_refund", event.amount


def current_balance(cursor: Cursor, account_id: str) -> int:
    cursor.execute(
        f"SELECT balance_after FROM {TABLE} WHERE account_id = ? ORDER BY seq DESC LIMIT 1",
        (account_id,),
    )
    row = cursor.fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class LedgerFilter:
    account_id: str
    start: datetime | None = None
    end: datetime | None = None
    job_id: str | None = None
    entry_type: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = ["account_id = ?"], [self.account_id]
        if self.start is not None:
            clauses.append("at >= ?")
            params.append(iso(self.start))
        if self.end is not None:
            clauses.append("at < ?")
            params.append(iso(self.end))
        if self.job_id is not None:
            clauses.append("job_id = ?")
            params.append(self.job_id)
        if self.entry_type is not None:
            clauses.append("type = ?")
            params.append(self.entry_type)
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class LedgerPage:
    entries: list[dict[str, Any]]
    total: int
    totals: dict[str, int]


class LedgerQueries:
    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def page(self, selection: LedgerFilter, page: int, limit: int | None) -> LedgerPage:
        """Movements oldest first, with the period's totals per type (for all pages)."""
        where, params = selection.where()
        paging, paging_params = "", []
        if limit is not None:
            paging, paging_params = " LIMIT ? OFFSET ?", [limit, (page - 1) * limit]
        with self.store.read() as cursor:
            cursor.execute(
                f"SELECT type, SUM(amount), COUNT(*) FROM {TABLE} WHERE {where} GROUP BY type",
                params,
            )
            sums = {row[0]: (int(row[1]), int(row[2])) for row in cursor.fetchall()}
            cursor.execute(
                f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE {where} ORDER BY seq{paging}",
                [*params, *paging_params],
            )
            rows = cursor.fetchall()
        return LedgerPage(
            entries=[dict(zip(COLUMNS, row, strict=True)) for row in rows],
            total=sum(count for _, count in sums.values()),
            totals={entry_type: sums.get(entry_type, (0, 0))[0] for entry_type in ENTRY_TYPES},
        )

    def balances(self) -> dict[str, int]:
        """Every account's balance according to the ledger (for the audit)."""
        with self.store.read() as cursor:
            cursor.execute(
                f"SELECT account_id, balance_after FROM {TABLE} AS e WHERE seq = "
                f"(SELECT MAX(seq) FROM {TABLE} WHERE account_id = e.account_id)"
            )
            return {row[0]: int(row[1]) for row in cursor.fetchall()}

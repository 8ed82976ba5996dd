"""Credits: the balance now or at any instant, and the ledger (pages, every entry, CSV)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime

from phantomflow_client._transport import AsyncTransport, Call, SyncTransport
from phantomflow_client.models import Balance, BalanceAt, LedgerEntry, LedgerPage
from phantomflow_client.resources._base import (
    Resource,
    Transport,
    instant,
    model,
    sends,
    text_body,
)

Instant = datetime | str
MAX_PAGE_SIZE = 1000


def _filters(
    start: Instant | None, end: Instant | None, job_id: str | None, type: str | None
) -> dict[str, str | None]:
    """Which entries: `start` inclusive, `end` exclusive (an instant without a zone is UTC)."""
    return {"from": instant(start), "to": instant(end), "job_id": job_id, "type": type}


def balance() -> Call[Balance]:
    """The balance now (exact: read from the account itself)."""
    return Call("GET", "/api/credits", model(Balance))


def balance_at(at: Instant) -> Call[BalanceAt]:
    """The balance at an instant, replayed from the account's events."""
    return Call("GET", "/api/credits/balance", model(BalanceAt), params={"at": instant(at)})


def ledger(
    *,
    page: int = 1,
    limit: int = 50,
    start: Instant | None = None,
    end: Instant | None = None,
    job_id: str | None = None,
    type: str | None = None,
) -> Call[LedgerPage]:
    """One page of the ledger, oldest first, with `totals` over the whole period."""
    params = {**_filters(start, end, job_id, type), "page": page, "limit": limit}
    return Call("GET", "/api/credits/ledger", model(LedgerPage), params=params)


def ledger_csv(
    *,
    start: Instant | None = None,
    end: Instant | None = None,
    job_id: str | None = None,
    type: str | None = None,
) -> Call[str]:
    """The whole period as CSV (header `seq,at,type,amount,balance_after,job_id,reason`)."""
    return Call(
        "GET",
        "/api/credits/ledger.csv",
        text_body,
        params=_filters(start, end, job_id, type),
        headers={"Accept": "text/csv"},
    )


class CreditCalls(Resource[Transport]):
    """The calls, for both clients."""

    balance = sends(balance)
    balance_at = sends(balance_at)
    ledger = sends(ledger)
    ledger_csv = sends(ledger_csv)


class Credits(CreditCalls[SyncTransport]):
    def iter_ledger(
        self,
        *,
        start: Instant | None = None,
        end: Instant | None = None,
        job_id: str | None = None,
        type: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[LedgerEntry]:
        """Every entry of the period, oldest first. The ledger only grows at its end,
        so pages never shift under the iterator."""
        page = 1
        while True:
            found = self.ledger(
                page=page, limit=page_size, start=start, end=end, job_id=job_id, type=type
            )
            yield from found.entries
            if len(found.entries) < page_size:
                return
            page += 1


class AsyncCredits(CreditCalls[AsyncTransport]):
    async def iter_ledger(
        self,
        *,
        start: Instant | None = None,
        end: Instant | None = None,
        job_id: str | None = None,
        type: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[LedgerEntry]:
        page = 1
        while True:
            found = await self.ledger(
                page=page, limit=page_size, start=start, end=end, job_id=job_id, type=type
            )
            for entry in found.entries:
                yield entry
            if len(found.entries) < page_size:
                return
            page += 1

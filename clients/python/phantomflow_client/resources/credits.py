"""Credits: the balance now or at any instant, and the ledger (pages, every entry, CSV)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime

from phantomflow_client._transport import Call
from phantomflow_client.models import Balance, BalanceAt, LedgerEntry, LedgerPage
from phantomflow_client.resources._base import (
    AsyncResource,
    SyncResource,
    instant,
    model,
    text_body,
)

Instant = datetime | str
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class LedgerQuery:
    """Which entries: `start` inclusive, `end` exclusive (an instant without a zone is UTC)."""

    start: Instant | None = None
    end: Instant | None = None
    job_id: str | None = None
    type: str | None = None

    def params(self) -> dict[str, str | None]:
        return {
            "from": instant(self.start),
            "to": instant(self.end),
            "job_id": self.job_id,
            "type": self.type,
        }


def balance_call() -> Call[Balance]:
    return Call("GET", "/api/credits", model(Balance))


def balance_at_call(at: Instant) -> Call[BalanceAt]:
    return Call("GET", "/api/credits/balance", model(BalanceAt), params={"at": instant(at)})


def ledger_call(query: LedgerQuery, page: int, limit: int) -> Call[LedgerPage]:
    params = {**query.params(), "page": page, "limit": limit}
    return Call("GET", "/api/credits/ledger", model(LedgerPage), params=params)


def csv_call(query: LedgerQuery) -> Call[str]:
    params = {**query.params(), "format": "csv"}
    return Call(
        "GET",
        "/api/credits/ledger",
        text_body,
        params=params,
        headers={"Accept": "text/csv"},
    )


class Credits(SyncResource):
    def balance(self) -> Balance:
        """The balance now (exact: read from the account itself)."""
        return self._transport.send(balance_call())

    def balance_at(self, at: Instant) -> BalanceAt:
        """The balance at an instant, replayed from the account's events."""
        return self._transport.send(balance_at_call(at))

    def ledger(
        self,
        *,
        page: int = 1,
        limit: int = 50,
        start: Instant | None = None,
        end: Instant | None = None,
        job_id: str | None = None,
        type: str | None = None,
    ) -> LedgerPage:
        """One page of the ledger, oldest first, with `totals` over the whole period."""
        query = LedgerQuery(start, end, job_id, type)
        return self._transport.send(ledger_call(query, page, limit))

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
        query, page = LedgerQuery(start, end, job_id, type), 1
        while True:
            found = self._transport.send(ledger_call(query, page, page_size))
            yield from found.entries
            if len(found.entries) < page_size:
                return
            page += 1

    def ledger_csv(
        self,
        *,
        start: Instant | None = None,
        end: Instant | None = None,
        job_id: str | None = None,
        type: str | None = None,
    ) -> str:
        """The whole period as CSV (header `seq,at,type,amount,balance_after,job_id,reason`)."""
        return self._transport.send(csv_call(LedgerQuery(start, end, job_id, type)))


class AsyncCredits(AsyncResource):
    async def balance(self) -> Balance:
        return await self._transport.send(balance_call())

    async def balance_at(self, at: Instant) -> BalanceAt:
        return await self._transport.send(balance_at_call(at))

    async def ledger(
        self,
        *,
        page: int = 1,
        limit: int = 50,
        start: Instant | None = None,
        end: Instant | None = None,
        job_id: str | None = None,
        type: str | None = None,
    ) -> LedgerPage:
        query = LedgerQuery(start, end, job_id, type)
        return await self._transport.send(ledger_call(query, page, limit))

    async def iter_ledger(
        self,
        *,
        start: Instant | None = None,
        end: Instant | None = None,
        job_id: str | None = None,
        type: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[LedgerEntry]:
        query, page = LedgerQuery(start, end, job_id, type), 1
        while True:
            found = await self._transport.send(ledger_call(query, page, page_size))
            for entry in found.entries:
                yield entry
            if len(found.entries) < page_size:
                return
            page += 1

    async def ledger_csv(
        self,
        *,
        start: Instant | None = None,
        end: Instant | None = None,
        job_id: str | None = None,
        type: str | None = None,
    ) -> str:
        return await self._transport.send(csv_call(LedgerQuery(start, end, job_id, type)))

/** Credits: the balance now or at any instant, and the ledger (pages, every entry, CSV). */

import type { Balance, BalanceAt, LedgerEntry, LedgerPage } from "../models.js";
import { Resource } from "./base.js";

/** Which entries: `from` inclusive, `to` exclusive (an instant without a zone is UTC). */
export interface LedgerQuery {
  from?: string | Date;
  to?: string | Date;
  jobId?: string;
  type?: string;
}

function params(query: LedgerQuery): Record<string, string | undefined> {
  const instant = (value?: string | Date) => (value instanceof Date ? value.toISOString() : value);
  return { from: instant(query.from), to: instant(query.to), job_id: query.jobId, type: query.type };
}

export class Credits extends Resource {
  /** The balance now (exact: read from the account itself). */
  balance(): Promise<Balance> {
    return this.transport.json({ method: "GET", path: "/api/credits" });
  }

  /** The balance at an instant, replayed from the account's events. */
  balanceAt(at: string | Date): Promise<BalanceAt> {
    const instant = at instanceof Date ? at.toISOString() : at;
    return this.transport.json({ method: "GET", path: "/api/credits/balance", query: { at: instant } });
  }

  /** One page of the ledger, oldest first, with `totals` over the whole period. */
  ledger(query: LedgerQuery & { page?: number; limit?: number } = {}): Promise<LedgerPage> {
    return this.transport.json({
      method: "GET",
      path: "/api/credits/ledger",
      query: { ...params(query), page: query.page, limit: query.limit },
    });
  }

  /** Every entry of the period, oldest first (the ledger only grows at its end). */
  async *iterLedger(query: LedgerQuery & { pageSize?: number } = {}): AsyncGenerator<LedgerEntry> {
    const pageSize = query.pageSize ?? 1000;
    for (let page = 1; ; page++) {
      const found = await this.ledger({ ...query, page, limit: pageSize });
      yield* found.entries;
      if (found.entries.length < pageSize) return;
    }
  }

  /** The whole period as CSV (`seq,at,type,amount,balance_after,job_id,reason`). */
  ledgerCsv(query: LedgerQuery = {}): Promise<string> {
    return this.transport.text({
      method: "GET",
      path: "/api/credits/ledger.csv",
      query: params(query),
      headers: { accept: "text/csv" },
    });
  }
}

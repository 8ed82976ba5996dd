// Credits: balance, plan and limits, the ledger (filters, pages, CSV) and a chart of the
// balance over time.

import { html, nothing } from "../../vendor/lit-html/lit-html.js";
import { balanceChart } from "../chart.js";
import {
  columnHeads,
  count,
  credits,
  emptyState,
  errorBox,
  href,
  loading,
  shortId,
  when,
} from "../ui.js";

const TYPES = ["grant", "charge", "settlement_refund", "failure_refund", "cancellation_refund"];
const LIMIT = 50;
// The chart reads the whole history in pages of 1,000, up to this many entries.
const CHART_MAX_ENTRIES = 10_000;

// A datetime-local value (the user's time) as an ISO instant.
function instant(local) {
  if (!local) return "";
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

class CreditsPage {
  constructor(ctx, query) {
    this.ctx = ctx;
    this.filters = {
      type: TYPES.includes(query.get("type")) ? query.get("type") : "",
      from: query.get("from") || "",
      to: query.get("to") || "",
      job_id: query.get("job_id") || "",
    };
    this.page = Math.max(1, Number(query.get("page")) || 1);
    this.account = null;
    this.ledger = null;
    this.error = null;
    this.ledgerError = null;
    this.chartState = "loading";
    this.chartSummary = "";
    this.removeChart = null;
    this.load();
    this.loadLedger();
    this.drawChart();
  }

  destroy() {
    if (this.removeChart) this.removeChart();
  }

  query(extra = {}) {
    return {
      type: this.filters.type,
      from: instant(this.filters.from),
      to: instant(this.filters.to),
      job_id: this.filters.job_id.trim(),
      ...extra,
    };
  }

  async load() {
    try {
      this.account = await this.ctx.api.get("/api/account");
      this.ctx.session.account = this.account;
    } catch (error) {
      this.error = error;
    }
    this.ctx.refresh();
  }

  async loadLedger() {
    try {
      this.ledger = await this.ctx.api.get("/api/credits/ledger", {
        query: this.query({ page: this.page, limit: LIMIT }),
      });
      this.ledgerError = null;
    } catch (error) {
      this.ledgerError = error;
    }
    this.ctx.refresh();
  }

  async drawChart() {
    const points = [];
    try {
      for (let page = 1; points.length < CHART_MAX_ENTRIES; page += 1) {
        const found = await this.ctx.api.get("/api/credits/ledger", {
          query: { page, limit: 1000 },
        });
        for (const entry of found.entries) points.push({ at: entry.at, balance: entry.balance_after });
        if (page * 1000 >= found.total) break;
      }
    } catch (error) {
      this.chartState = "failed";
      this.ledgerError = this.ledgerError || error;
      this.ctx.refresh();
      return;
    }
    if (points.length === 0) {
      this.chartState = "empty";
      this.ctx.refresh();
      return;
    }
    // The balance holds until now.
    points.push({ at: new Date().toISOString(), balance: points[points.length - 1].balance });
    const balances = points.map((p) => p.balance);
    this.chartSummary = `From ${when(points[0].at)} to now the balance went from ${count(
      balances[0],
    )} to ${count(balances[balances.length - 1])} credits (lowest ${count(
      Math.min(...balances),
    )}, highest ${count(Math.max(...balances))}).`;
    this.chartState = "drawn";
    this.ctx.refresh();
    await new Promise((resolve) => requestAnimationFrame(resolve));
    const container = document.getElementById("balance-chart");
    if (container) this.removeChart = await balanceChart(container, points);
  }

  applyFilters(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    for (const name of Object.keys(this.filters)) this.filters[name] = String(form.get(name) || "");
    this.page = 1;
    this.syncUrl();
    this.loadLedger();
  }

  clearFilters() {
    for (const name of Object.keys(this.filters)) this.filters[name] = "";
    this.page = 1;
    this.syncUrl();
    this.loadLedger();
  }

  goTo(page) {
    this.page = page;
    this.syncUrl();
    this.loadLedger();
  }

  syncUrl() {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(this.filters)) if (value) query.set(name, value);
    if (this.page > 1) query.set("page", this.page);
    const text = query.toString();
    window.history.replaceState(null, "", href(`/credits${text ? `?${text}` : ""}`));
  }

  async download() {
    try {
      await this.ctx.api.download("/api/credits/ledger", this.query({ format: "csv" }), "ledger.csv");
      this.ctx.announce("The ledger CSV is downloading.");
    } catch (error) {
      this.ledgerError = error;
      this.ctx.refresh();
    }
  }

  view() {
    return html`<h1 tabindex="-1">Credits</h1>
      ${errorBox(this.error)} ${this.accountView()}
      <section class="card" aria-labelledby="chart-heading">
        <h2 id="chart-heading">Balance over time</h2>
        ${this.chartState === "loading" ? loading("Loading the history") : nothing}
        ${this.chartState === "empty" ? emptyState("No credit movements yet.") : nothing}
        ${this.chartState === "drawn"
          ? html`<div id="balance-chart" class="chart" role="img" aria-label=${this.chartSummary}></div>
              <p class="help">${this.chartSummary}</p>`
          : nothing}
      </section>
      ${this.ledgerView()}`;
  }

  accountView() {
    const a = this.account;
    if (!a) return this.error ? nothing : loading("Loading your account");
    return html`<div class="stats">
      <div class="stat">
        <span class="stat-label">Balance</span>
        <span class="stat-value" data-testid="balance">${count(a.credits)}</span>
        <span class="stat-unit">credits</span>
      </div>
      <div class="stat">
        <span class="stat-label">Plan</span>
        <span class="stat-value">${a.plan}</span>
      </div>
      <div class="stat">
        <span class="stat-label">Requests a minute</span>
        <span class="stat-value">${count(a.limits.requests_per_minute)}</span>
      </div>
      <div class="stat">
        <span class="stat-label">Jobs at once</span>
        <span class="stat-value">${a.active_jobs} / ${a.limits.concurrent_jobs}</span>
      </div>
    </div>
    <p class="help">
      Credits are granted by your operator (<code>phantomflow credits grant</code>); a render is
      charged its estimate when submitted, and refunded whatever it did not use.
      ${a.key.mode === "test" ? html`<strong>This is a sandbox key: its jobs cost nothing.</strong>` : nothing}
    </p>`;
  }

  ledgerView() {
    const ledger = this.ledger;
    const pages = ledger ? Math.max(1, Math.ceil(ledger.total / LIMIT)) : 1;
    const f = this.filters;
    return html`<section class="card" aria-labelledby="ledger-heading">
      <div class="title-row">
        <h2 id="ledger-heading">Ledger</h2>
        <button type="button" @click=${() => this.download()}>Download CSV</button>
      </div>
      <form class="filters" @submit=${(event) => this.applyFilters(event)}>
        <div class="field">
          <label for="ledger-type">Type</label>
          <select id="ledger-type" name="type">
            <option value="" ?selected=${!f.type}>All</option>
            ${TYPES.map((t) => html`<option value=${t} ?selected=${f.type === t}>${t.replace("_", " ")}</option>`)}
          </select>
        </div>
        <div class="field">
          <label for="ledger-from">From</label>
          <input id="ledger-from" name="from" type="datetime-local" .value=${f.from} />
        </div>
        <div class="field">
          <label for="ledger-to">Until</label>
          <input id="ledger-to" name="to" type="datetime-local" .value=${f.to} />
        </div>
        <div class="field">
          <label for="ledger-job">Job id</label>
          <input id="ledger-job" name="job_id" .value=${f.job_id} spellcheck="false" />
        </div>
        <div class="actions">
          <button type="submit">Filter</button>
          <button type="button" class="link" @click=${() => this.clearFilters()}>Clear</button>
        </div>
      </form>
      ${errorBox(this.ledgerError)}
      ${ledger === null && !this.ledgerError ? loading("Loading the ledger") : nothing}
      ${ledger && ledger.entries.length === 0 ? emptyState("No entries match.") : nothing}
      ${ledger && ledger.entries.length
        ? html`<p class="totals">
              ${Object.entries(ledger.totals)
                .filter(([, value]) => value)
                .map(([type, value]) => html`<span>${type.replace("_", " ")}: <strong>${count(value)}</strong></span> `)}
            </p>
            <table class="responsive ledger">
              <caption class="sr-only">Credit movements, oldest first</caption>
              ${columnHeads(["When", "Type", "Amount", "Balance", "Job", "Reason"], { numeric: ["Amount", "Balance"] })}
              <tbody>
                ${ledger.entries.map(
                  (e) => html`<tr>
                    <td data-label="When">${when(e.at)}</td>
                    <td data-label="Type">${e.type.replace("_", " ")}</td>
                    <td data-label="Amount" class="num ${e.amount < 0 ? "minus" : "plus"}">
                      ${e.amount > 0 ? "+" : ""}${count(e.amount)}
                    </td>
                    <td data-label="Balance" class="num">${count(e.balance_after)}</td>
                    <td data-label="Job">
                      ${e.job_id ? html`<a href=${href(`/jobs/${e.job_id}`)}><code>${shortId(e.job_id)}</code></a>` : "—"}
                    </td>
                    <td data-label="Reason">${e.reason || "—"}</td>
                  </tr>`,
                )}
              </tbody>
            </table>
            <nav class="pager" aria-label="Pages of the ledger">
              ${this.page > 1
                ? html`<button type="button" class="link" @click=${() => this.goTo(this.page - 1)}>Previous</button>`
                : nothing}
              <span>Page ${this.page} of ${pages} · ${count(ledger.total)} entries</span>
              ${this.page < pages
                ? html`<button type="button" class="link" @click=${() => this.goTo(this.page + 1)}>Next</button>`
                : nothing}
            </nav>`
        : nothing}
    </section>`;
  }
}

export default {
  path: "/credits",
  title: "Credits",
  nav: "Credits",
  create: (ctx, params, query) => new CreditsPage(ctx, query),
};

// Jobs: the list, filtered by status, with progress moving live from the event feed.

import { html, nothing } from "../../vendor/lit-html/lit-html.js";
import {
  columnHeads,
  credits,
  debounce,
  emptyState,
  errorBox,
  href,
  loading,
  progressBar,
  seconds,
  shortId,
  statusBadge,
  when,
} from "../ui.js";

export const STATUSES = ["queued", "processing", "completed", "failed", "cancelled"];
const LIMIT = 20;

// What an event of the account feed changes in a job as the list shows it.
export function applyEvent(job, event) {
  const data = event.data;
  if (event.type === "progress") {
    job.progress = data.progress;
    job.stage = data.stage;
    job.status = data.stage === "queued" ? "queued" : "processing";
  } else if (event.type === "complete") {
    job.status = "completed";
    job.progress = 1;
    job.stage = "complete";
    job.output_uri = data.outputUri;
    job.credits_used = data.creditsUsed;
    job.duration_seconds = data.durationSeconds;
    job.file_size_bytes = data.fileSizeBytes;
    if (data.metadata) job.metadata = data.metadata;
  } else if (event.type === "error") {
    job.status = data.code === "CANCELLED" ? "cancelled" : "failed";
    job.error = { code: data.code, message: data.message };
  }
}

// How far along a job is: queued, running, ended. Events and reads are compared by it.
function rank(status) {
  return { queued: 0, processing: 1 }[status] ?? 2;
}

function eventRank(event) {
  if (event.type === "progress") return event.data.stage === "queued" ? 0 : 1;
  return 2;
}

// Whether an event of the feed tells more than `job` already shows. A job read from the
// list comes from the read model, a moment behind the event store (docs/api.md, Jobs):
// it may be older than events the feed has already delivered, and must not undo them.
export function advances(job, event) {
  if (!["progress", "complete", "error"].includes(event.type)) return false;
  const now = rank(job.status);
  const then = eventRank(event);
  if (then !== now) return then > now;
  return then === 1 && (event.data.progress ?? 0) >= (job.progress ?? 0);
}

class JobsPage {
  constructor(ctx, query) {
    this.ctx = ctx;
    this.status = STATUSES.includes(query.get("status")) ? query.get("status") : "";
    this.page = Math.max(1, Number(query.get("page")) || 1);
    // One metadata filter (`metadata.<key>=<value>`), as the API takes it.
    const named = [...query.keys()].find((name) => name.startsWith("metadata."));
    this.metaKey = named ? named.slice("metadata.".length) : "";
    this.metaValue = named ? query.get(named) : "";
    this.jobs = null;
    this.total = 0;
    this.error = null;
    this.reload = debounce(() => this.load(), 300);
    // The feed's last word on each job, and jobs read one by one (consistent with the
    // event store) that the list did not have yet: both survive a list reload.
    this.latest = new Map();
    this.found = new Map();
    this.finding = new Set();
    this.early = new Set(); // jobs the feed spoke of before the first list arrived
    // Reload what the stream could not replay, or what failed while it was down.
    this.unfollow = ctx.feed.follow(
      (event) => this.onEvent(event),
      (replayed) => (!replayed || this.error) && this.reload(),
    );
    this.load();
  }

  destroy() {
    this.unfollow();
    this.reload.cancel();
  }

  async load() {
    try {
      const found = await this.ctx.api.get("/api/jobs", {
        query: { status: this.status, page: this.page, limit: LIMIT, ...this.metaQuery() },
      });
      this.total = found.total;
      this.jobs = this.merge(found.jobs);
      this.error = null;
      for (const jobId of this.early) {
        if (this.page === 1 && !this.jobs.some((j) => j.job_id === jobId)) this.find(jobId);
      }
      this.early.clear();
    } catch (error) {
      this.error = error;
    }
    this.ctx.refresh();
  }

  metaQuery() {
    return this.metaKey ? { [`metadata.${this.metaKey}`]: this.metaValue } : {};
  }

  // Whether a job read alone belongs in this list: its status and metadata filters,
  // the metadata compared as the API compares it (a number or boolean as JSON writes it).
  fits(job) {
    if (this.status && job.status !== this.status) return false;
    if (!this.metaKey) return true;
    const value = (job.metadata || {})[this.metaKey];
    if (value === null || typeof value === "object" || value === undefined) return false;
    return String(value) === this.metaValue;
  }

  // The list as read, completed by what is known to be newer: each job brought up to
  // the feed's last event for it, and (on the first page) the jobs read one by one that
  // the read model has not listed yet.
  merge(listed) {
    const jobs = [...listed];
    for (const job of jobs) {
      this.found.delete(job.job_id);
      const event = this.latest.get(job.job_id);
      if (event && advances(job, event)) applyEvent(job, event);
    }
    if (this.page === 1) {
      for (const job of this.found.values()) {
        if (!this.fits(job)) continue;
        if (jobs.some((j) => j.job_id === job.job_id)) continue;
        jobs.push(job);
        this.total += 1;
      }
      jobs.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
    }
    return jobs;
  }

  // A job the feed speaks of that the list does not have: read it alone, which is never
  // behind the event store, rather than the list again, which may be.
  async find(jobId) {
    if (this.finding.has(jobId)) return;
    this.finding.add(jobId);
    try {
      const job = await this.ctx.api.get(`/api/jobs/${encodeURIComponent(jobId)}`);
      if (job.job_id !== jobId) throw new Error("not the job asked for");
      const event = this.latest.get(jobId);
      if (event && advances(job, event)) applyEvent(job, event);
      this.found.set(jobId, job);
      if (this.jobs) this.jobs = this.merge(this.jobs);
      this.ctx.refresh();
    } catch {
      this.reload(); // not readable alone (a network error): the list will say
    } finally {
      this.finding.delete(jobId);
    }
  }

  onEvent(event) {
    const jobId = event.data.jobId;
    if (!jobId) return;
    if (["progress", "complete", "error"].includes(event.type)) this.latest.set(jobId, event);
    // Still loading: the load's answer is brought up to these events when it arrives.
    if (!this.jobs) {
      if (event.type !== "webhook" && event.type !== "export") this.early.add(jobId);
      return;
    }
    const job = this.jobs.find((j) => j.job_id === jobId) || this.found.get(jobId);
    if (job) {
      if (advances(job, event)) applyEvent(job, event);
      else if (event.type === "complete") applyEvent(job, event); // its final figures
      if (!this.jobs.includes(job)) this.jobs = this.merge(this.jobs); // now in the filter?
      else if (this.status && job.status !== this.status) this.reload();
      this.ctx.refresh();
    } else if (event.type !== "webhook" && event.type !== "export") {
      // A job this page does not show yet (submitted elsewhere, or moved into the filter).
      if (this.page === 1) this.find(jobId);
      else this.reload();
    }
  }

  query({ status = this.status, page = 1, metaKey = this.metaKey, metaValue = this.metaValue } = {}) {
    const query = new URLSearchParams();
    if (status) query.set("status", status);
    if (metaKey) query.set(`metadata.${metaKey}`, metaValue);
    if (page > 1) query.set("page", page);
    const text = query.toString();
    return `/jobs${text ? `?${text}` : ""}`;
  }

  filterTo(status) {
    this.ctx.navigate(this.query({ status }));
  }

  filterByMetadata(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    const metaKey = String(form.get("meta-key") || "").trim();
    const metaValue = String(form.get("meta-value") || "");
    this.ctx.navigate(this.query({ metaKey, metaValue: metaKey ? metaValue : "" }));
  }

  pageLink(page) {
    return href(this.query({ page }));
  }

  view() {
    const pages = Math.max(1, Math.ceil(this.total / LIMIT));
    return html`<div class="title-row">
        <h1 tabindex="-1">Jobs</h1>
        <a class="button" href=${href("/render")}>New render</a>
      </div>
      <form class="filters" @submit=${(event) => this.filterByMetadata(event)}>
        <div class="field">
          <label for="status-filter">Status</label>
          <select id="status-filter" @change=${(event) => this.filterTo(event.target.value)}>
            <option value="" ?selected=${!this.status}>All</option>
            ${STATUSES.map(
              (s) => html`<option value=${s} ?selected=${this.status === s}>${s}</option>`,
            )}
          </select>
        </div>
        <div class="field">
          <label for="meta-key">Metadata key</label>
          <input id="meta-key" name="meta-key" autocomplete="off" spellcheck="false" .value=${this.metaKey} />
        </div>
        <div class="field">
          <label for="meta-value">equals</label>
          <input id="meta-value" name="meta-value" autocomplete="off" spellcheck="false" .value=${this.metaValue} />
        </div>
        <div class="actions">
          <button type="submit">Find</button>
          ${this.metaKey
            ? html`<a href=${href(this.query({ metaKey: "", metaValue: "" }))}>Clear</a>`
            : nothing}
        </div>
      </form>
      ${errorBox(this.error)}
      ${this.jobs === null && !this.error ? loading("Loading your jobs") : nothing}
      ${this.jobs && this.jobs.length === 0
        ? emptyState(
            this.metaKey
              ? `No ${this.status ? `${this.status} ` : ""}jobs with ${this.metaKey} = ${this.metaValue}.`
              : this.status
                ? `No ${this.status} jobs.`
                : "No jobs yet.",
            html`<a href=${href("/render")}>Start a render</a> from the Hello World example or
              one of your templates.`,
          )
        : nothing}
      ${this.jobs && this.jobs.length
        ? html`<table class="jobs responsive">
              <caption class="sr-only">
                Your jobs, newest first
              </caption>
              ${columnHeads(["Job", "Created", "Status", "Stage", "Progress", "Length", "Credits"])}
              <tbody>
                ${this.jobs.map(
                  (job) => html`<tr data-job=${job.job_id}>
                    <th scope="row" data-label="Job">
                      <a href=${href(`/jobs/${job.job_id}`)}
                        ><code>${shortId(job.job_id)}</code></a
                      >${job.sandbox ? html` <span class="badge">sandbox</span>` : nothing}
                    </th>
                    <td data-label="Created">${when(job.created_at)}</td>
                    <td data-label="Status">${statusBadge(job.status)}</td>
                    <td data-label="Stage">${job.stage || "—"}</td>
                    <td data-label="Progress">
                      ${progressBar(job.progress, `Progress of job ${shortId(job.job_id)}`)}
                    </td>
                    <td data-label="Length">${seconds(job.duration_seconds)}</td>
                    <td data-label="Credits">
                      ${credits(job.credits_used ?? job.estimated_credits)}
                    </td>
                  </tr>`,
                )}
              </tbody>
            </table>
            <nav class="pager" aria-label="Pages of jobs">
              ${this.page > 1
                ? html`<a href=${this.pageLink(this.page - 1)} rel="prev">Newer</a>`
                : nothing}
              <span>Page ${this.page} of ${pages} · ${this.total} jobs</span>
              ${this.page < pages
                ? html`<a href=${this.pageLink(this.page + 1)} rel="next">Older</a>`
                : nothing}
            </nav>`
        : nothing}`;
  }
}

export default {
  path: "/jobs",
  title: "Jobs",
  nav: "Jobs",
  create: (ctx, params, query) => new JobsPage(ctx, query),
};

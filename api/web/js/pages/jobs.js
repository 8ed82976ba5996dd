// Jobs: the list, filtered by status, with progress moving live from the event feed.

import { html, nothing } from "../../vendor/lit-html/lit-html.js";
import {
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
  } else if (event.type === "error") {
    job.status = data.code === "CANCELLED" ? "cancelled" : "failed";
    job.error = { code: data.code, message: data.message };
  }
}

class JobsPage {
  constructor(ctx, query) {
    this.ctx = ctx;
    this.status = STATUSES.includes(query.get("status")) ? query.get("status") : "";
    this.page = Math.max(1, Number(query.get("page")) || 1);
    this.jobs = null;
    this.total = 0;
    this.error = null;
    this.reload = debounce(() => this.load(), 300);
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
        query: { status: this.status, page: this.page, limit: LIMIT },
      });
      this.jobs = found.jobs;
      this.total = found.total;
      this.error = null;
    } catch (error) {
      this.error = error;
    }
    this.ctx.refresh();
  }

  onEvent(event) {
    if (!this.jobs || !event.data.jobId) return;
    const job = this.jobs.find((j) => j.job_id === event.data.jobId);
    if (job) {
      applyEvent(job, event);
      if (this.status && job.status !== this.status) this.reload();
      this.ctx.refresh();
    } else if (event.type !== "webhook") {
      // A job this page does not show yet (submitted elsewhere, or moved into the filter).
      this.reload();
    }
  }

  filterTo(status) {
    const query = status ? `?status=${status}` : "";
    this.ctx.navigate(`/jobs${query}`);
  }

  pageLink(page) {
    const query = new URLSearchParams();
    if (this.status) query.set("status", this.status);
    if (page > 1) query.set("page", page);
    const text = query.toString();
    return href(`/jobs${text ? `?${text}` : ""}`);
  }

  view() {
    const pages = Math.max(1, Math.ceil(this.total / LIMIT));
    return html`<div class="title-row">
        <h1 tabindex="-1">Jobs</h1>
        <a class="button" href=${href("/render")}>New render</a>
      </div>
      <form class="filters" @submit=${(event) => event.preventDefault()}>
        <div class="field">
          <label for="status-filter">Status</label>
          <select id="status-filter" @change=${(event) => this.filterTo(event.target.value)}>
            <option value="" ?selected=${!this.status}>All</option>
            ${STATUSES.map(
              (s) => html`<option value=${s} ?selected=${this.status === s}>${s}</option>`,
            )}
          </select>
        </div>
      </form>
      ${errorBox(this.error)}
      ${this.jobs === null && !this.error ? loading("Loading your jobs") : nothing}
      ${this.jobs && this.jobs.length === 0
        ? emptyState(
            this.status ? `No ${this.status} jobs.` : "No jobs yet.",
            html`<a href=${href("/render")}>Start a render</a> from the Hello World example or
              one of your templates.`,
          )
        : nothing}
      ${this.jobs && this.jobs.length
        ? html`<table class="jobs responsive">
              <caption class="sr-only">
                Your jobs, newest first
              </caption>
              <thead>
                <tr>
                  <th scope="col">Job</th>
                  <th scope="col">Created</th>
                  <th scope="col">Status</th>
                  <th scope="col">Stage</th>
                  <th scope="col">Progress</th>
                  <th scope="col">Length</th>
                  <th scope="col">Credits</th>
                </tr>
              </thead>
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

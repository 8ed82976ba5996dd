// One job: live progress, the video (and deleting it), its metadata, its history,
// webhook deliveries, exports with their status, cancel.

import { html, nothing } from "../../vendor/lit-html/lit-html.js";
import {
  bytes,
  columnHeads,
  credits,
  debounce,
  emptyState,
  errorBox,
  href,
  loading,
  percent,
  progressBar,
  seconds,
  shortId,
  statusBadge,
  when,
} from "../ui.js";
import { advances, applyEvent } from "./jobs.js";

const ENDED = ["completed", "failed", "cancelled"];

// A stored event in a sentence. Runs of progress reports become one line.
function describeEvent(event) {
  const data = event.data || {};
  switch (event.type) {
    case "Submitted": {
      const origin = data.origin || {};
      const from =
        origin.channel === "template"
          ? `from template ${origin.template_id} version ${origin.template_version}`
          : `through the ${origin.channel || "API"}`;
      return `Submitted ${from}; ${credits(data.estimated_credits)} charged as the estimate`;
    }
    case "Started":
      return `A worker took the job${data.worker ? ` (${data.worker})` : ""}`;
    case "TakenOver":
      return "Another worker took the job over";
    case "Completed":
      return `Completed: ${seconds(data.duration_seconds)}, ${credits(data.credits_used)} used`;
    case "Failed":
      return `Failed: ${data.message || data.code}`;
    case "Cancelled":
      return `Cancelled${data.reason ? `: ${data.reason}` : ""}`;
    case "WebhookAttempted":
      return `Webhook attempt ${data.attempt}: ${
        data.delivered ? "delivered" : data.error || `HTTP ${data.status_code}`
      }`;
    case "WebhookRedeliveryRequested":
      return "Webhook redelivery requested";
    case "ExportStarted":
      return `Export ${data.index + 1}: attempt ${data.attempt} started`;
    case "ExportSucceeded":
      return `Export ${data.index + 1}: delivered to ${data.location}`;
    case "ExportFailed":
      return `Export ${data.index + 1}: ${data.final ? "failed for good" : "failed, will retry"} (${data.code}: ${data.message})`;
    case "ExportSkipped":
      return `Export ${data.index + 1}: skipped (${data.code})`;
    case "ExportsSettled":
      return "Every export has settled";
    case "OutputDeleted":
      return "The video and its poster were deleted";
    default:
      return event.type.replace(/([a-z])([A-Z])/g, "$1 $2");
  }
}

export function timeline(events) {
  const items = [];
  for (const event of events) {
    if (event.type === "ProgressReported") {
      const last = items[items.length - 1];
      const value = percent(event.data.progress);
      if (last && last.kind === "progress") {
        last.to = value;
        last.stage = event.data.stage;
        last.reports += 1;
        last.end = event.at;
        continue;
      }
      items.push({ kind: "progress", from: value, to: value, stage: event.data.stage, reports: 1, at: event.at, end: event.at });
      continue;
    }
    items.push({ kind: "event", at: event.at, type: event.type, text: describeEvent(event) });
  }
  return items;
}

class JobPage {
  constructor(ctx, id) {
    this.ctx = ctx;
    this.id = id;
    this.job = null;
    this.events = null;
    this.webhooks = null;
    this.error = null;
    this.actionError = null;
    this.actionMessage = null;
    this.busy = false;
    this.early = []; // events of this job that came before its first read answered
    this.reloadHistory = debounce(() => this.loadHistory(), 250);
    this.unfollow = ctx.feed.follow(
      (event) => this.onEvent(event),
      (replayed) => (!replayed || this.error) && this.loadAll(),
    );
    this.loadAll();
  }

  destroy() {
    this.unfollow();
    this.reloadHistory.cancel();
  }

  title() {
    return `Job ${shortId(this.id)}`;
  }

  async loadAll() {
    let ended = false;
    try {
      const job = await this.ctx.api.get(`/api/jobs/${encodeURIComponent(this.id)}`);
      // The read may have been answered before events the feed has already delivered.
      for (const event of this.early.splice(0)) {
        if (!advances(job, event)) continue;
        applyEvent(job, event);
        ended = ended || event.type !== "progress";
      }
      this.job = job;
      this.error = null;
    } catch (error) {
      this.error = error;
    }
    this.ctx.refresh();
    if (ended) await this.loadJob(); // the poster and the final figures
    if (this.job) await this.loadHistory();
  }

  async loadJob() {
    try {
      this.job = await this.ctx.api.get(`/api/jobs/${encodeURIComponent(this.id)}`);
    } catch (error) {
      this.actionError = error;
    }
    this.ctx.refresh();
  }

  async loadHistory() {
    const api = this.ctx.api;
    const id = encodeURIComponent(this.id);
    try {
      const [history, webhooks] = await Promise.all([
        api.get(`/api/jobs/${id}/events`),
        api.get(`/api/jobs/${id}/webhooks`),
      ]);
      this.events = history.events;
      this.webhooks = webhooks;
    } catch (error) {
      this.actionError = error;
    }
    this.ctx.refresh();
  }

  onEvent(event) {
    if (event.data.jobId !== this.id) return;
    if (!this.job) {
      this.early.push(event);
      return;
    }
    if (event.type === "webhook" || event.type === "export") {
      this.reloadHistory();
      if (event.type === "export") this.loadJob();
      return;
    }
    applyEvent(this.job, event);
    this.ctx.refresh();
    if (event.type === "complete" || event.type === "error") {
      this.ctx.announce(`Job ${shortId(this.id)} ${this.job.status}.`);
      // The poster and the final figures are in the job itself.
      this.loadJob();
      this.reloadHistory();
    }
  }

  // One of the page's actions: its buttons are disabled while it runs, and what it
  // answers (a message, or the error) is shown above them.
  async act(step) {
    this.busy = true;
    this.actionError = null;
    this.ctx.refresh();
    try {
      await step();
    } catch (error) {
      this.actionError = error;
    }
    this.busy = false;
    this.ctx.refresh();
  }

  async cancel() {
    if (!window.confirm("Cancel this job? A queued job is refunded in full; a processing one is charged for the part rendered so far.")) return;
    await this.act(async () => {
      const answer = await this.ctx.api.post(`/api/jobs/${encodeURIComponent(this.id)}/cancel`);
      this.actionMessage = `Cancelled: ${credits(answer.credits_used)} used, ${credits(answer.credits_refunded)} refunded.`;
      await this.loadJob();
      this.reloadHistory();
    });
  }

  async deleteOutput() {
    if (!window.confirm("Delete this job's video and poster? The job, its charge and its history stay; the video's link stops working and cannot be restored.")) return;
    await this.act(async () => {
      const answer = await this.ctx.api.del(`/api/jobs/${encodeURIComponent(this.id)}/output`);
      this.actionMessage = `The video was deleted (${when(answer.output_deleted_at)}).`;
      this.ctx.announce("The video was deleted.");
      await this.loadJob();
      this.reloadHistory();
    });
  }

  async redeliver() {
    await this.act(async () => {
      const answer = await this.ctx.api.post(
        `/api/jobs/${encodeURIComponent(this.id)}/webhooks/redeliver`,
      );
      this.actionMessage = `Redelivery ${answer.redelivery} queued.`;
      this.reloadHistory();
    });
  }

  view() {
    const job = this.job;
    if (!job) {
      return html`<h1 tabindex="-1">Job <code>${shortId(this.id)}</code></h1>
        ${this.error ? errorBox(this.error) : loading("Loading the job")}
        <p><a href=${href("/jobs")}>Back to your jobs</a></p>`;
    }
    const ended = ENDED.includes(job.status);
    return html`<p class="crumbs"><a href=${href("/jobs")}>Jobs</a> › Job</p>
      <div class="title-row">
        <h1 tabindex="-1">Job <code>${shortId(job.job_id)}</code> ${statusBadge(job.status)}</h1>
        ${ended
          ? nothing
          : html`<button type="button" class="danger" ?disabled=${this.busy} @click=${() => this.cancel()}>
              Cancel job
            </button>`}
      </div>
      ${this.actionMessage ? html`<p class="notice" role="status">${this.actionMessage}</p>` : nothing}
      ${errorBox(this.actionError)}
      <div class="columns">
      <div>
      <section aria-labelledby="progress-heading" class="card">
        <h2 id="progress-heading">Progress</h2>
        ${progressBar(job.progress, "Render progress")}
        <p class="stage">Stage: <strong>${job.stage || "waiting"}</strong></p>
        ${job.error
          ? html`<p class="error" role="alert">${job.error.message} (<code>${job.error.code}</code>)</p>`
          : nothing}
      </section>
      ${job.output_deleted_at
        ? html`<section aria-labelledby="video-heading" class="card">
            <h2 id="video-heading">Video</h2>
            ${emptyState(`The video was deleted (${when(job.output_deleted_at)}).`, "The job, its charge and its history stay.")}
          </section>`
        : nothing}
      ${job.status === "completed" && job.output_uri && !job.output_deleted_at
        ? html`<section aria-labelledby="video-heading" class="card">
            <h2 id="video-heading">Video</h2>
            <video
              class="player"
              controls
              preload="auto"
              playsinline
              src=${job.output_uri}
              poster=${job.poster_uri || nothing}
              aria-label="The rendered video"
            ></video>
            <p>
              <a href=${job.output_uri} download>Download the MP4</a>
              (${bytes(job.file_size_bytes)})${job.poster_uri
                ? html` · <a href=${job.poster_uri}>Poster (JPEG)</a>`
                : nothing}
            </p>
            <p>
              <button type="button" class="danger" ?disabled=${this.busy} @click=${() => this.deleteOutput()}>
                Delete the video
              </button>
            </p>
          </section>`
        : nothing}
      </div>
      <section aria-labelledby="details-heading" class="card">
        <h2 id="details-heading">Details</h2>
        <dl class="facts">
          <dt>Job id</dt>
          <dd><code>${job.job_id}</code></dd>
          <dt>Created</dt>
          <dd>${when(job.created_at)}</dd>
          <dt>Started</dt>
          <dd>${when(job.started_at)}</dd>
          <dt>Completed</dt>
          <dd>${when(job.completed_at)}</dd>
          <dt>Length</dt>
          <dd>${seconds(job.duration_seconds)}</dd>
          <dt>Estimate</dt>
          <dd>${credits(job.estimated_credits)}</dd>
          <dt>Used</dt>
          <dd>${credits(job.credits_used)}</dd>
          ${job.sandbox ? html`<dt>Mode</dt><dd>sandbox (not charged)</dd>` : nothing}
        </dl>
      </section>
      </div>
      ${this.metadataView(job.metadata)}
      ${Array.isArray(job.exports) ? this.exportsView(job.exports) : nothing}
      ${this.webhookView()} ${this.timelineView()}`;
  }

  exportsView(exports) {
    return html`<section aria-labelledby="exports-heading" class="card">
      <h2 id="exports-heading">Exports</h2>
      ${exports.length === 0
        ? emptyState("No exports on this job.")
        : html`<table class="responsive">
            ${columnHeads(["Target", "Status", "Attempts", "Where"])}
            <tbody>
              ${exports.map(
                (item) => html`<tr>
                  <td data-label="Target">${item.type}${item.integration_id ? html` <code>${item.integration_id}</code>` : nothing}</td>
                  <td data-label="Status">${statusBadge(item.status)}</td>
                  <td data-label="Attempts">${item.attempts ?? "—"}</td>
                  <td data-label="Where">
                    ${item.location || "—"}
                    ${item.error
                      ? html`<span class="error-inline"
                          >${item.error.message || item.error}${item.error.code
                            ? html` (<code>${item.error.code}</code>)`
                            : nothing}</span
                        >`
                      : nothing}
                    ${item.next_attempt_at
                      ? html`<span class="help">Next attempt ${when(item.next_attempt_at)}</span>`
                      : nothing}
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`}
    </section>`;
  }

  // The job's own metadata, as submitted: top-level keys, nested values as JSON.
  metadataView(metadata) {
    const entries = Object.entries(metadata || {});
    return html`<section aria-labelledby="metadata-heading" class="card">
      <h2 id="metadata-heading">Metadata</h2>
      ${entries.length === 0
        ? emptyState(
            "No metadata on this job.",
            html`Add a <code>metadata</code> object to a script to find its jobs by your own keys.`,
          )
        : html`<dl class="facts metadata">
            ${entries.map(
              ([key, value]) => html`<dt><code>${key}</code></dt>
                <dd>
                  ${typeof value === "string"
                    ? value
                    : html`<code class="wrap">${JSON.stringify(value)}</code>`}
                </dd>`,
            )}
          </dl>`}
    </section>`;
  }

  webhookView() {
    const log = this.webhooks;
    return html`<section aria-labelledby="webhook-heading" class="card">
      <h2 id="webhook-heading">Webhook</h2>
      ${log === null
        ? loading("Loading the deliveries")
        : !log.webhook_uri
          ? emptyState("This job has no webhook_uri.", "Add one to a script to be called when a render ends.")
          : html`<p>
                <code class="wrap">${log.webhook_uri}</code> · ${statusBadge(log.status)}
                ${ENDED.includes(this.job.status)
                  ? html`<button type="button" ?disabled=${this.busy} @click=${() => this.redeliver()}>
                      Redeliver
                    </button>`
                  : nothing}
              </p>
              ${log.attempts.length === 0
                ? emptyState("No delivery attempts yet.")
                : html`<table class="responsive">
                    ${columnHeads(["Attempt", "When", "Trigger", "Answer", "Time"])}
                    <tbody>
                      ${log.attempts.map(
                        (a) => html`<tr>
                          <td data-label="Attempt">${a.attempt}</td>
                          <td data-label="When">${when(a.attempted_at)}</td>
                          <td data-label="Trigger">${a.trigger}</td>
                          <td data-label="Answer">
                            ${a.delivered ? html`<span class="badge status-completed">delivered</span>` : nothing}
                            ${a.status_code ? `HTTP ${a.status_code}` : nothing} ${a.error || nothing}
                            ${a.next_attempt_at ? html`<br />next try ${when(a.next_attempt_at)}` : nothing}
                          </td>
                          <td data-label="Time">${a.duration_ms ?? "—"} ms</td>
                        </tr>`,
                      )}
                    </tbody>
                  </table>`}`}
    </section>`;
  }

  timelineView() {
    return html`<section aria-labelledby="history-heading" class="card">
      <h2 id="history-heading">History</h2>
      ${this.events === null
        ? loading("Loading the history")
        : html`<ol class="timeline">
            ${timeline(this.events).map((item) =>
              item.kind === "progress"
                ? html`<li>
                    <time datetime=${item.at}>${when(item.at)}</time>
                    <span>Progress ${item.from} → ${item.to} % (${item.reports} reports, last stage ${item.stage})</span>
                  </li>`
                : html`<li class="event-${item.type}">
                    <time datetime=${item.at}>${when(item.at)}</time>
                    <span>${item.text}</span>
                  </li>`,
            )}
          </ol>`}
    </section>`;
  }
}

export default {
  path: "/jobs/:id",
  title: "Job",
  create: (ctx, params) => new JobPage(ctx, params.id),
};

// Small pieces every page uses: formats, the error box, empty states, status badges.

import { html, nothing } from "../vendor/lit-html/lit-html.js";
import { ApiError } from "./api.js";

export const BASE = "/dashboard";
export const href = (path) => `${BASE}${path}`;

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const number = new Intl.NumberFormat();

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

export const credits = (value) =>
  value === null || value === undefined
    ? "—"
    : `${number.format(value)} ${value === 1 ? "credit" : "credits"}`;

export const count = (value) => number.format(value);

export function seconds(value) {
  if (value === null || value === undefined) return "—";
  return `${Number(value).toFixed(value < 10 ? 2 : 1)} s`;
}

export function bytes(value) {
  if (value === null || value === undefined) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export const percent = (progress) => Math.round((progress || 0) * 100);

export const shortId = (id) => (id ? id.slice(0, 8) : "");

export function statusBadge(status) {
  return html`<span class="badge status-${status}">${status}</span>`;
}

// The progress of a job: a native <progress> (announced by screen readers) and its number.
export function progressBar(progress, label) {
  const value = percent(progress);
  return html`<span class="progress">
    <progress max="100" value=${value} aria-label=${label}></progress>
    <span class="progress-value">${value} %</span>
  </span>`;
}

// An error in plain words, from the API's error body. A 402 shows the way to credits.
export function errorBox(error) {
  if (!error) return nothing;
  if (!(error instanceof ApiError)) {
    return html`<div class="error" role="alert"><p>${error.message || String(error)}</p></div>`;
  }
  const detail = error.detail || {};
  return html`<div class="error" role="alert">
    <p>${error.message}</p>
    ${error.path !== null && error.path !== undefined
      ? html`<p class="error-path">At <code>${error.path === "" ? "(the whole body)" : error.path}</code></p>`
      : nothing}
    ${error.status === 402
      ? html`<p>
          ${detail.required !== undefined
            ? html`This needs ${credits(detail.required)}; your balance is
                ${credits(detail.balance)}. `
            : nothing}
          <a href=${href("/credits")}>See your credits and plan</a>
        </p>`
      : nothing}
    ${error.status === 429 && error.retryAfter
      ? html`<p>Try again in ${error.retryAfter} s.</p>`
      : nothing}
    ${error.code === "CONCURRENCY_LIMIT_EXCEEDED"
      ? html`<p><a href=${href("/jobs?status=processing")}>See the jobs running now</a></p>`
      : nothing}
    ${error.code ? html`<p class="error-code">Code: <code>${error.code}</code></p>` : nothing}
  </div>`;
}

export function emptyState(title, body) {
  return html`<div class="empty"><p class="empty-title">${title}</p>${body ? html`<p>${body}</p>` : nothing}</div>`;
}

// A table's header row: one column heading a label, those in `numeric` right-aligned
// (class "num"); with `actions`, a last column of buttons, named for screen readers only.
export function columnHeads(labels, { numeric = [], actions = false } = {}) {
  return html`<thead>
    <tr>
      ${labels.map((label) =>
        numeric.includes(label)
          ? html`<th scope="col" class="num">${label}</th>`
          : html`<th scope="col">${label}</th>`,
      )}
      ${actions ? html`<th scope="col"><span class="sr-only">Actions</span></th>` : nothing}
    </tr>
  </thead>`;
}

export function loading(what = "Loading") {
  return html`<p class="loading" role="status">${what}…</p>`;
}

// Copy text to the clipboard; where the Clipboard API is refused (plain http on a
// host other than localhost), select the text so the user can copy it themselves.
export async function copyText(text, fallbackInput) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (fallbackInput) {
      fallbackInput.focus();
      fallbackInput.select();
    }
    return false;
  }
}

// Calls `fn` at most once per `ms`, at the end of a burst.
export function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

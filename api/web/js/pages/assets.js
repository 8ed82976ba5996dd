// Assets: your uploaded images, videos, audio and fonts. Upload by dropping files on
// the zone (or choosing them), with a progress bar; the list with the storage used;
// delete. A script names an asset by its id (`"src": "asset_…"`).

import { html, nothing } from "../../vendor/lit-html/lit-html.js";
import { ApiError, NetworkError } from "../api.js";
import {
  bytes,
  columnHeads,
  copyText,
  emptyState,
  errorBox,
  loading,
  seconds,
  when,
} from "../ui.js";

const LIMIT = 20;
export const MAX_FILES = 20;

// POST /api/assets as multipart/form-data with XMLHttpRequest, which reports upload
// progress where fetch cannot. `onProgress(loaded, total)`.
export function upload(session, files, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/assets");
    for (const [name, value] of Object.entries(session.headers())) xhr.setRequestHeader(name, value);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else {
        const headers = { get: (name) => xhr.getResponseHeader(name) };
        reject(new ApiError(xhr.status, xhr.response, headers));
      }
    });
    xhr.addEventListener("error", () => reject(new NetworkError()));
    xhr.addEventListener("abort", () => reject(new Error("The upload was stopped.")));
    xhr.send(form);
  });
}

function shape(asset) {
  const parts = [];
  if (asset.width && asset.height) parts.push(`${asset.width}×${asset.height}`);
  if (asset.duration_seconds) parts.push(seconds(asset.duration_seconds));
  return parts.join(", ") || "—";
}

class AssetsPage {
  constructor(ctx, query) {
    this.ctx = ctx;
    this.page = Math.max(1, Number(query.get("page")) || 1);
    this.assets = null;
    this.total = 0;
    this.storage = null;
    this.error = null;
    this.uploadError = null;
    this.uploading = null; // {names, loaded, total}
    this.uploaded = null;
    this.dragging = false;
    this.copied = null;
    this.load();
  }

  async load() {
    try {
      const found = await this.ctx.api.get("/api/assets", { query: { page: this.page, limit: LIMIT } });
      this.assets = found.assets;
      this.total = found.total;
      this.storage = found.storage;
      this.error = null;
    } catch (error) {
      this.error = error;
    }
    this.ctx.refresh();
  }

  async send(fileList) {
    const files = [...fileList];
    if (files.length === 0 || this.uploading) return;
    this.uploadError = null;
    this.uploaded = null;
    if (files.length > MAX_FILES) {
      this.uploadError = new Error(`At most ${MAX_FILES} files at once: you chose ${files.length}.`);
      this.ctx.refresh();
      return;
    }
    const total = files.reduce((sum, file) => sum + file.size, 0);
    this.uploading = { names: files.map((f) => f.name), loaded: 0, total };
    this.ctx.refresh();
    try {
      const answer = await upload(this.ctx.session, files, (loaded, size) => {
        this.uploading = { ...this.uploading, loaded, total: size };
        this.ctx.refresh();
      });
      this.uploaded = answer.assets;
      this.ctx.announce(`Uploaded ${answer.assets.length} file${answer.assets.length === 1 ? "" : "s"}.`);
      await this.load();
    } catch (error) {
      this.uploadError = error;
    }
    this.uploading = null;
    this.ctx.refresh();
  }

  onDrop(event) {
    event.preventDefault();
    this.dragging = false;
    this.send(event.dataTransfer.files);
  }

  onDrag(event, over) {
    event.preventDefault();
    if (this.dragging !== over) {
      this.dragging = over;
      this.ctx.refresh();
    }
  }

  async remove(asset) {
    if (!window.confirm(`Delete ${asset.name}? Scripts that name ${asset.id} can no longer render.`)) return;
    try {
      await this.ctx.api.del(`/api/assets/${encodeURIComponent(asset.id)}`);
      this.ctx.announce(`${asset.name} deleted.`);
      this.error = null;
      await this.load();
    } catch (error) {
      this.error = error;
      this.ctx.refresh();
    }
  }

  async copy(asset) {
    const ok = await copyText(asset.id);
    this.copied = ok ? `Copied ${asset.id}.` : `The id is ${asset.id}.`;
    this.ctx.refresh();
  }

  uploadView() {
    const up = this.uploading;
    const value = up && up.total ? Math.round((up.loaded / up.total) * 100) : 0;
    return html`<section class="card" aria-labelledby="upload-heading">
      <h2 id="upload-heading">Upload</h2>
      <div
        class="dropzone ${this.dragging ? "dragging" : ""}"
        @dragenter=${(e) => this.onDrag(e, true)}
        @dragover=${(e) => this.onDrag(e, true)}
        @dragleave=${(e) => this.onDrag(e, false)}
        @drop=${(e) => this.onDrop(e)}
        data-testid="dropzone"
      >
        <p>Drop images, videos, audio or fonts here (up to ${MAX_FILES} at once), or</p>
        <input id="asset-files" class="sr-only" type="file" multiple
          ?disabled=${Boolean(up)}
          @change=${(e) => { this.send(e.target.files); e.target.value = ""; }} />
        <label class="button" for="asset-files">Choose files</label>
      </div>
      ${up
        ? html`<p role="status">
            Uploading ${up.names.join(", ")}:
            <span class="progress">
              <progress max="100" value=${value} aria-label="Upload progress"></progress>
              <span class="progress-value">${value} %</span>
            </span>
            (${bytes(up.loaded)} of ${bytes(up.total)})
          </p>`
        : nothing}
      ${this.uploaded
        ? html`<p class="notice" role="status">
            Uploaded ${this.uploaded.map((a) => html`<strong>${a.name}</strong> (<code>${a.id}</code>) `)}
          </p>`
        : nothing}
      ${errorBox(this.uploadError)}
    </section>`;
  }

  view() {
    const list = this.assets;
    const storage = this.storage;
    return html`<h1 tabindex="-1">Assets</h1>
      <p>
        Your own images, videos, audio and fonts, kept here so scripts can use them without a
        public URL: name one by its id, <code>"src": "asset_…"</code>.
      </p>
      ${storage
        ? html`<p class="storage">
            Storage: ${bytes(storage.used_bytes)} of ${bytes(storage.limit_bytes)} used
            <progress max=${storage.limit_bytes} value=${storage.used_bytes} aria-label="Storage used"></progress>
          </p>`
        : nothing}
      ${this.uploadView()}
      ${errorBox(this.error)}
      ${this.copied ? html`<p role="status">${this.copied}</p>` : nothing}
      ${list === null && !this.error ? loading("Loading your assets") : nothing}
      ${list && list.length === 0 ? emptyState("No assets yet.", "Drop a file above to upload it.") : nothing}
      ${list && list.length
        ? html`<table class="responsive assets">
            <caption class="sr-only">Your assets, newest first</caption>
            ${columnHeads(["Name", "Type", "Size", "Shape", "Uploaded"], { actions: true })}
            <tbody>
              ${list.map(
                (asset) => html`<tr data-asset=${asset.id}>
                  <th scope="row" data-label="Name" class="wrap">${asset.name}<br /><code class="help">${asset.id}</code></th>
                  <td data-label="Type">${asset.type}</td>
                  <td data-label="Size">${bytes(asset.size)}</td>
                  <td data-label="Shape">${shape(asset)}</td>
                  <td data-label="Uploaded">${when(asset.created_at)}</td>
                  <td data-label="Actions">
                    <button type="button" class="small" aria-label=${`Copy the id of ${asset.name}`}
                      @click=${() => this.copy(asset)}>Copy id</button>
                    <button type="button" class="danger small" aria-label=${`Delete ${asset.name}`}
                      @click=${() => this.remove(asset)}>Delete</button>
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : nothing}`;
  }
}

export default {
  path: "/assets",
  title: "Assets",
  nav: "Assets",
  create: (ctx, params, query) => new AssetsPage(ctx, query),
};

// A preview of what New render would submit: POST /api/previews, then its storyboard
// stills as soon as they are drawn and the watermarked proxy video once it is, followed
// on the preview's own event stream; "Render this" renders exactly what was previewed.

import { html, nothing } from "../vendor/lit-html/lit-html.js";
import { readEvents } from "./sse.js";
import { credits, errorBox, progressBar, seconds } from "./ui.js";

const ENDED = ["completed", "failed", "expired"];
const POLL_MS = 1500;

function storyboardOf(frames) {
  // The stream says imageUri, the preview itself image_uri.
  return (frames || []).map((frame) => ({ ...frame, image_uri: frame.image_uri ?? frame.imageUri }));
}

function caption(frame) {
  const at = seconds(frame.time);
  return frame.kind === "transition"
    ? `Transition after scene ${frame.scene + 1}, at ${at}`
    : `Scene ${frame.scene + 1}, at ${at}`;
}

export class PreviewPanel {
  constructor(ctx, { onRendered }) {
    this.ctx = ctx;
    this.onRendered = onRendered;
    this.preview = null;
    this.fingerprint = null;
    this.error = null;
    this.busy = false;
    this.renderKey = null;
    this.controller = null;
    this.timer = null;
  }

  destroy() {
    this.stop();
  }

  stop() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    clearTimeout(this.timer);
  }

  // Starts a preview of `body` (a script, or a template and its variables).
  async start(body) {
    this.stop();
    this.busy = true;
    this.error = null;
    this.preview = null;
    this.fingerprint = JSON.stringify(body);
    this.renderKey = crypto.randomUUID(); // one render of this preview, however often asked
    this.ctx.refresh();
    try {
      this.preview = await this.ctx.api.post("/api/previews", body);
      this.ctx.announce("Preview started.");
      this.follow(this.preview.preview_id);
    } catch (error) {
      this.error = error;
    }
    this.busy = false;
    this.ctx.refresh();
  }

  // The preview's events (fetch, so the key stays in a header); when the stream is cut
  // before the end, the preview is read every 1.5 s instead, which loses nothing: the
  // read is the preview's whole state.
  async follow(id) {
    const controller = new AbortController();
    this.controller = controller;
    try {
      const response = await fetch(`/api/previews/${encodeURIComponent(id)}/progress`, {
        headers: { ...this.ctx.session.headers(), Accept: "text/event-stream" },
        cache: "no-store",
        credentials: "omit",
        signal: controller.signal,
      });
      if (response.ok && response.body) {
        await readEvents(response.body, (event) => event.data && this.onEvent(id, event));
      }
    } catch {
      // cut or aborted: the reads below carry on
    }
    if (controller.signal.aborted || this.preview?.preview_id !== id) return;
    if (!ENDED.includes(this.preview.status)) this.poll(id);
  }

  onEvent(id, event) {
    const preview = this.preview;
    if (!preview || preview.preview_id !== id) return;
    const data = event.data;
    if (event.type === "progress") {
      preview.progress = data.progress;
      preview.stage = data.stage;
      if (preview.status === "queued" && data.stage !== "queued") preview.status = "processing";
    } else if (event.type === "storyboard") {
      preview.storyboard = storyboardOf(data.storyboard);
    } else if (event.type === "complete" || event.type === "error") {
      // The preview itself has every figure and file, in its own shape.
      this.read(id);
      return;
    }
    this.ctx.refresh();
  }

  async read(id) {
    try {
      const found = await this.ctx.api.get(`/api/previews/${encodeURIComponent(id)}`);
      if (this.preview?.preview_id !== id) return;
      this.preview = found;
      if (found.status === "completed") this.ctx.announce("The preview is ready.");
    } catch (error) {
      this.error = error;
    }
    this.ctx.refresh();
  }

  poll(id) {
    this.timer = setTimeout(async () => {
      await this.read(id);
      if (this.preview?.preview_id === id && !ENDED.includes(this.preview.status) && !this.error) {
        this.poll(id);
      }
    }, POLL_MS);
  }

  async renderIt() {
    const preview = this.preview;
    if (!preview) return;
    this.busy = true;
    this.error = null;
    this.ctx.refresh();
    try {
      const submitted = await this.ctx.api.post(
        `/api/previews/${encodeURIComponent(preview.preview_id)}/render`,
        {},
        { headers: { "Idempotency-Key": this.renderKey } },
      );
      this.busy = false;
      this.onRendered(submitted);
      return;
    } catch (error) {
      this.error = error;
    }
    this.busy = false;
    this.ctx.refresh();
  }

  // `current`: what the form would submit now, to say when the preview no longer shows it.
  view(current) {
    const preview = this.preview;
    if (!preview) {
      return this.error || this.busy
        ? html`<section class="card preview" aria-labelledby="preview-heading">
            <h2 id="preview-heading">Preview</h2>
            ${this.busy ? html`<p role="status">Starting the preview…</p>` : nothing}
            ${errorBox(this.error)}
          </section>`
        : nothing;
    }
    const stale = current !== undefined && JSON.stringify(current) !== this.fingerprint;
    const storyboard = storyboardOf(preview.storyboard);
    const poster = storyboard.length ? storyboard[0].image_uri : null;
    return html`<section class="card preview" aria-labelledby="preview-heading">
      <h2 id="preview-heading">Preview</h2>
      <p>
        Free and watermarked, at a small size: what rendering would make.
        ${preview.status === "failed" ? nothing : progressBar(preview.progress, "Preview progress")}
        <span class="stage">Stage: <strong>${preview.status === "completed" ? "ready" : preview.stage || "queued"}</strong></span>
      </p>
      ${preview.error
        ? html`<p class="error" role="alert">${preview.error.message} (<code>${preview.error.code}</code>)</p>`
        : nothing}
      ${stale
        ? html`<p class="notice" role="status">
            The script has changed since this preview: Render this renders the previewed one.
            Preview again to see your changes.
          </p>`
        : nothing}
      ${preview.proxy_uri
        ? html`<video
            class="player"
            controls
            preload="auto"
            playsinline
            src=${preview.proxy_uri}
            poster=${poster || nothing}
            aria-label="The preview video"
          ></video>`
        : nothing}
      ${storyboard.length
        ? html`<h3>Storyboard</h3>
            <ol class="storyboard">
              ${storyboard.map(
                (frame) => html`<li>
                  <figure>
                    <img src=${frame.image_uri} alt=${caption(frame)} loading="lazy" />
                    <figcaption>${caption(frame)}</figcaption>
                  </figure>
                </li>`,
              )}
            </ol>`
        : preview.status === "failed"
          ? nothing
          : html`<p class="loading" role="status">Drawing the storyboard…</p>`}
      <p>
        Rendering it costs <strong>${credits(preview.estimated_credits)}</strong>
        (${seconds(preview.duration_seconds)} of video).
        ${preview.viewer_url
          ? html`<a href=${preview.viewer_url} target="_blank" rel="noopener">Share this preview</a>
              (anyone with the link can watch it until it expires).`
          : nothing}
      </p>
      ${errorBox(this.error)}
      <div class="actions">
        <button type="button" class="primary" ?disabled=${this.busy} @click=${() => this.renderIt()}>
          Render this
        </button>
      </div>
    </section>`;
  }
}

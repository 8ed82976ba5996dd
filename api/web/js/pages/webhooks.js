// The webhook signing secret: show it, rotate it.

import { html, nothing } from "../../vendor/lit-html/lit-html.js";
import { copyText, errorBox, loading, when } from "../ui.js";

class WebhooksPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.secret = null;
    this.revealed = false;
    this.previousExpires = null;
    this.error = null;
    this.copied = null;
    this.load();
  }

  destroy() {
    this.secret = null;
  }

  async load() {
    try {
      this.secret = (await this.ctx.api.get("/api/webhooks/secret")).secret;
    } catch (error) {
      this.error = error;
    }
    this.ctx.refresh();
  }

  async rotate() {
    if (!window.confirm("Rotate the signing secret? The current one keeps signing beside the new one for 24 hours, so receivers can switch.")) return;
    try {
      const rotated = await this.ctx.api.post("/api/webhooks/secret/rotate");
      this.secret = rotated.secret;
      this.previousExpires = rotated.previous_secret_expires_at;
      this.revealed = true;
      this.ctx.announce("The webhook secret was rotated.");
    } catch (error) {
      this.error = error;
    }
    this.ctx.refresh();
  }

  async copy() {
    const ok = await copyText(this.secret, document.getElementById("webhook-secret"));
    this.copied = ok ? "Copied to the clipboard." : "Selected: press Ctrl+C (⌘C) to copy.";
    this.ctx.refresh();
  }

  view() {
    return html`<h1 tabindex="-1">Webhooks</h1>
      <p>
        Every webhook is signed with this secret (Standard Webhooks: the
        <code>webhook-signature</code> header). Verify it on your side before trusting a payload.
        A job's deliveries, and a button to send one again, are on the job's page.
      </p>
      ${errorBox(this.error)}
      ${this.secret === null && !this.error ? loading("Loading the secret") : nothing}
      ${this.secret
        ? html`<section class="card" aria-labelledby="secret-heading">
            <h2 id="secret-heading">Current secret</h2>
            <div class="copy-row">
              <label class="sr-only" for="webhook-secret">Signing secret</label>
              <input
                id="webhook-secret"
                class="code"
                readonly
                .value=${this.revealed ? this.secret : "•".repeat(32)}
              />
              <button type="button" aria-pressed=${this.revealed ? "true" : "false"}
                @click=${() => { this.revealed = !this.revealed; this.ctx.refresh(); }}>
                ${this.revealed ? "Hide" : "Show"}
              </button>
              <button type="button" @click=${() => this.copy()}>Copy</button>
            </div>
            ${this.copied ? html`<p role="status">${this.copied}</p>` : nothing}
            ${this.previousExpires
              ? html`<p class="notice" role="status">
                  The previous secret keeps signing until ${when(this.previousExpires)}.
                </p>`
              : nothing}
            <button type="button" class="danger" @click=${() => this.rotate()}>Rotate the secret</button>
          </section>`
        : nothing}`;
  }
}

export default {
  path: "/webhooks",
  title: "Webhooks",
  nav: "Webhooks",
  create: (ctx) => new WebhooksPage(ctx),
};

// API keys: list, mint (the secret shown once, with a copy button), revoke.

import { html, nothing } from "../../vendor/lit-html/lit-html.js";
import { columnHeads, copyText, emptyState, errorBox, loading } from "../ui.js";

class KeysPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.keys = null;
    this.error = null;
    this.mode = "live";
    this.minted = null; // {id, api_key, prefix, mode}: shown once
    this.copied = null;
    this.busy = false;
    this.load();
  }

  destroy() {
    this.minted = null; // the secret leaves memory with the page
  }

  async load() {
    try {
      this.keys = (await this.ctx.api.get("/api/keys")).keys;
    } catch (error) {
      this.error = error;
    }
    this.ctx.refresh();
  }

  async mint(event) {
    event.preventDefault();
    this.busy = true;
    this.error = null;
    this.copied = null;
    this.ctx.refresh();
    try {
      this.minted = await this.ctx.api.post("/api/keys", { mode: this.mode });
      this.ctx.announce("A new key was minted. Copy its secret now: it is shown only once.");
      await this.load();
      document.getElementById("new-secret")?.focus();
    } catch (error) {
      this.error = error;
    }
    this.busy = false;
    this.ctx.refresh();
  }

  async revoke(key) {
    const own = this.ctx.session.account && key.prefix === this.ctx.session.account.key.prefix;
    const warning = own
      ? "This is the key this tab signed in with: revoking it signs you out. Revoke it?"
      : `Revoke the key ${key.prefix}…? Anything using it gets 401 from its next request on.`;
    if (!window.confirm(warning)) return;
    try {
      await this.ctx.api.del(`/api/keys/${encodeURIComponent(key.id)}`);
      if (this.minted && this.minted.id === key.id) this.minted = null;
      this.ctx.announce(`Key ${key.prefix}… revoked.`);
      await this.load();
    } catch (error) {
      this.error = error;
      this.ctx.refresh();
    }
  }

  async copy() {
    const ok = await copyText(this.minted.api_key, document.getElementById("new-secret"));
    this.copied = ok ? "Copied to the clipboard." : "Selected: press Ctrl+C (⌘C) to copy.";
    this.ctx.refresh();
  }

  view() {
    const signedInWith = this.ctx.session.account?.key.prefix;
    return html`<h1 tabindex="-1">API keys</h1>
      <p>
        Keys authenticate every API request (<code>x-api-key</code>). Live keys spend credits;
        test keys run the sandbox, free. A secret is shown once, when it is minted: PhantomFlow
        keeps only its hash.
      </p>
      <form class="card inline-form" @submit=${(event) => this.mint(event)}>
        <div class="field">
          <label for="key-mode">Mode</label>
          <select id="key-mode" @change=${(event) => { this.mode = event.target.value; }}>
            <option value="live" ?selected=${this.mode === "live"}>live</option>
            <option value="test" ?selected=${this.mode === "test"}>test (sandbox)</option>
          </select>
        </div>
        <button type="submit" class="primary" ?disabled=${this.busy}>Mint a key</button>
      </form>
      ${this.minted
        ? html`<section class="card secret" aria-labelledby="secret-heading">
            <h2 id="secret-heading">Your new ${this.minted.mode} key</h2>
            <p><strong>Copy it now: this is the only time it is shown.</strong></p>
            <div class="copy-row">
              <label class="sr-only" for="new-secret">The new key's secret</label>
              <input id="new-secret" class="code" readonly .value=${this.minted.api_key} />
              <button type="button" @click=${() => this.copy()}>Copy</button>
            </div>
            ${this.copied ? html`<p role="status">${this.copied}</p>` : nothing}
            <button type="button" class="link" @click=${() => { this.minted = null; this.ctx.refresh(); }}>
              I have stored it: hide it
            </button>
          </section>`
        : nothing}
      ${errorBox(this.error)}
      ${this.keys === null && !this.error ? loading("Loading your keys") : nothing}
      ${this.keys && this.keys.length === 0 ? emptyState("This account has no keys.") : nothing}
      ${this.keys && this.keys.length
        ? html`<table class="responsive">
            <caption class="sr-only">Your API keys</caption>
            ${columnHeads(["Key", "Mode", "State"], { actions: true })}
            <tbody>
              ${this.keys.map(
                (key) => html`<tr data-key=${key.id}>
                  <th scope="row" data-label="Key">
                    <code>${key.prefix}…</code>
                    ${key.prefix === signedInWith ? html`<span class="badge">this tab</span>` : nothing}
                  </th>
                  <td data-label="Mode">${key.mode}</td>
                  <td data-label="State">
                    ${key.revoked
                      ? html`<span class="badge status-cancelled">revoked</span>`
                      : html`<span class="badge status-completed">active</span>`}
                  </td>
                  <td data-label="Actions">
                    ${key.revoked
                      ? nothing
                      : html`<button type="button" class="danger small" @click=${() => this.revoke(key)}
                          aria-label=${`Revoke ${key.prefix}`}>Revoke</button>`}
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : nothing}`;
  }
}

export default {
  path: "/keys",
  title: "API keys",
  nav: "API keys",
  create: (ctx) => new KeysPage(ctx),
};

// Signing in. One method today: paste an API key. The e-mail and password sign-in
// (a bearer token from the accounts routes, when they exist) becomes a second entry in
// METHODS, with a scheme of its own in session.js.

import { html, nothing } from "../../vendor/lit-html/lit-html.js";
import { errorBox } from "../ui.js";

const KEY_FORMAT = /^ve_(live|test)_[A-Za-z0-9_-]{20,}$/;

const apiKeyMethod = {
  id: "api_key",
  label: "API key",
  view(page) {
    return html`<form class="card narrow" @submit=${(event) => page.submitKey(event)} novalidate>
      <p>
        Paste one of your API keys (<code>ve_live_…</code>, or <code>ve_test_…</code> for the
        sandbox). It stays in this browser tab only and is forgotten when the tab closes.
      </p>
      <label for="api-key">API key</label>
      <input
        id="api-key"
        name="api-key"
        type="password"
        autocomplete="off"
        spellcheck="false"
        required
        aria-describedby="api-key-help"
        .value=${page.key}
        @input=${(event) => {
          page.key = event.target.value.trim();
        }}
      />
      <p id="api-key-help" class="help">
        Keys come from <code>phantomflow accounts create</code> or the API keys page.
      </p>
      ${errorBox(page.error)}
      <button type="submit" ?disabled=${page.busy}>${page.busy ? "Signing in…" : "Sign in"}</button>
    </form>`;
  },
};

const METHODS = [apiKeyMethod];

class SignInPage {
  constructor(ctx, query) {
    this.ctx = ctx;
    this.next = query.get("next") || "/jobs";
    if (!this.next.startsWith("/") || this.next.startsWith("//")) this.next = "/jobs";
    this.key = "";
    this.error = null;
    this.busy = false;
  }

  async submitKey(event) {
    event.preventDefault();
    const { ctx } = this;
    if (!KEY_FORMAT.test(this.key)) {
      this.error = new Error("That is not an API key: keys start with ve_live_ or ve_test_.");
      ctx.refresh();
      return;
    }
    this.busy = true;
    this.error = null;
    ctx.refresh();
    ctx.session.signIn("api_key", this.key);
    try {
      ctx.session.account = await ctx.api.get("/api/account");
    } catch (error) {
      ctx.session.signOut();
      this.busy = false;
      this.error =
        error.status === 401 ? new Error("The API does not know this key, or it was revoked.") : error;
      ctx.refresh();
      return;
    }
    this.key = "";
    this.busy = false;
    ctx.signedIn();
    ctx.navigate(this.next, { replace: true });
  }

  view() {
    return html`<h1 tabindex="-1">Sign in to PhantomFlow</h1>
      ${METHODS.length > 1
        ? html`<p>Sign in with: ${METHODS.map((m) => m.label).join(" or ")}</p>`
        : nothing}
      ${METHODS.map((method) => method.view(this))}`;
  }
}

export default {
  path: "/signin",
  title: "Sign in",
  public: true,
  create: (ctx, params, query) => new SignInPage(ctx, query),
};

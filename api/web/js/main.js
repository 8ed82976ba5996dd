// The dashboard's shell: the router, the header and navigation, the session.

import { html, nothing, render } from "../vendor/lit-html/lit-html.js";
import { createApi } from "./api.js";
import { PAGES } from "./pages/index.js";
import { Session } from "./session.js";
import { EventFeed } from "./sse.js";
import { BASE, href } from "./ui.js";

function compile(path) {
  const names = [];
  const pattern = path.replace(/:([a-z_]+)/g, (_, name) => {
    names.push(name);
    return "([^/]+)";
  });
  return { regex: new RegExp(`^${pattern}/?$`), names };
}

const ROUTES = PAGES.map((page) => ({ page, ...compile(page.path) }));

function match(path) {
  for (const route of ROUTES) {
    const found = route.regex.exec(path);
    if (found) {
      const params = Object.fromEntries(
        route.names.map((name, i) => [name, decodeURIComponent(found[i + 1])]),
      );
      return { page: route.page, params };
    }
  }
  return null;
}

class App {
  constructor(root) {
    this.root = root;
    this.session = new Session();
    this.api = createApi(this.session, { onUnauthorized: () => this.keyRefused() });
    this.feed = new EventFeed(this.session);
    this.current = null; // {definition, page}
    this.notice = null;
    this.scheduled = false;
    this.liveState = "closed";
    this.feed.onState((state) => {
      this.liveState = state;
      this.refresh();
    });
    this.ctx = {
      api: this.api,
      session: this.session,
      feed: this.feed,
      refresh: () => this.refresh(),
      navigate: (path, options) => this.navigate(path, options),
      signedIn: () => this.signedIn(),
      announce: (message) => this.announce(message),
    };
  }

  start() {
    this.root.replaceChildren(); // the "Loading…" line of index.html
    document.addEventListener("click", (event) => this.onClick(event));
    window.addEventListener("popstate", () => this.route({ focus: true }));
    if (this.session.signedIn) this.signedIn();
    this.route({ focus: false });
  }

  // After a sign-in (or a reload of a signed-in tab): who the key is, and live events.
  async signedIn() {
    this.feed.start();
    try {
      this.session.account = await this.api.get("/api/account");
    } catch {
      // shown as the key's own error on the page that needs it
    }
    this.refresh();
  }

  keyRefused() {
    // On the sign-in page the refusal is that page's own answer.
    if (!this.session.signedIn || this.current?.definition.path === "/signin") return;
    this.session.signOut();
    this.feed.stop();
    this.notice = "The API refused your key (it may have been revoked). Sign in again.";
    this.navigate("/signin", { replace: true });
  }

  signOut() {
    this.session.signOut();
    this.feed.stop();
    this.notice = "Signed out. The key is gone from this tab.";
    this.navigate("/signin");
  }

  onClick(event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest("a[href]");
    if (!link || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href);
    if (url.origin !== window.location.origin || !url.pathname.startsWith(`${BASE}/`)) return;
    event.preventDefault();
    this.navigate(url.pathname.slice(BASE.length) + url.search);
  }

  navigate(path, { replace = false } = {}) {
    const url = href(path);
    if (replace) window.history.replaceState(null, "", url);
    else window.history.pushState(null, "", url);
    this.route({ focus: true });
  }

  route({ focus }) {
    let path = window.location.pathname.slice(BASE.length) || "/";
    if (path === "/" || path === "") {
      window.history.replaceState(null, "", href("/jobs"));
      path = "/jobs";
    }
    let found = match(path);
    if (found && !found.page.public && !this.session.signedIn) {
      const next = path + window.location.search;
      window.history.replaceState(null, "", href(`/signin?next=${encodeURIComponent(next)}`));
      found = match("/signin");
    }
    if (this.current && this.current.page.destroy) this.current.page.destroy();
    const query = new URLSearchParams(window.location.search);
    if (found) {
      const page = found.page.create(this.ctx, found.params, query);
      this.current = { definition: found.page, page };
    } else {
      this.current = { definition: { title: "Not found" }, page: notFoundPage() };
    }
    this.renderNow();
    if (focus) {
      const heading = this.root.querySelector("main h1");
      if (heading) heading.focus();
    }
  }

  announce(message) {
    const region = document.getElementById("announcer");
    if (region) region.textContent = message;
  }

  refresh() {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.renderNow();
    });
  }

  renderNow() {
    const { definition, page } = this.current;
    const title = (page.title && page.title()) || definition.title;
    document.title = title ? `${title} · PhantomFlow` : "PhantomFlow";
    render(this.shell(definition, page), this.root);
  }

  shell(definition, page) {
    const signedIn = this.session.signedIn;
    const account = this.session.account;
    const current = window.location.pathname;
    const notice = this.notice;
    if (definition.path !== "/signin") this.notice = null;
    return html`
      <a class="skip" href="#main">Skip to the content</a>
      <header class="top">
        <a class="brand" href=${href("/jobs")}>PhantomFlow</a>
        ${signedIn
          ? html`<nav aria-label="Main">
              <ul>
                ${PAGES.filter((p) => p.nav).map((p) => {
                  const target = href(p.navPath || p.path);
                  const here = current === target || current.startsWith(`${target}/`);
                  return html`<li>
                    <a href=${target} aria-current=${here ? "page" : nothing}>${p.nav}</a>
                  </li>`;
                })}
              </ul>
            </nav>
            <div class="who">
              <span class="live live-${this.liveState}" role="status"
                >${{ open: "Live", reconnecting: "Reconnecting…", closed: "Offline" }[
                  this.liveState
                ]}</span
              >
              ${account
                ? html`<span class="key" title="The key this tab signed in with"
                    >${account.key.prefix}… ·
                    ${account.key.mode === "test" ? "sandbox" : account.plan}</span
                  >`
                : nothing}
              <button type="button" class="link" @click=${() => this.signOut()}>Sign out</button>
            </div>`
          : nothing}
      </header>
      <main id="main" tabindex="-1">
        ${notice ? html`<p class="notice" role="status">${notice}</p>` : nothing} ${page.view()}
      </main>
      <div id="announcer" class="sr-only" aria-live="polite"></div>
    `;
  }
}

function notFoundPage() {
  return {
    view: () => html`<h1 tabindex="-1">Not found</h1>
      <p>There is no such page. <a href=${href("/jobs")}>Go to your jobs</a>.</p>`,
  };
}

new App(document.getElementById("app")).start();

// One template: edit it (name, visibility, script), its versions with the fields each
// changed, view any version, render a pinned one. `/templates/new` creates one.

import { html, nothing } from "../../vendor/lit-html/lit-html.js";
import { JsonEditor } from "../editor.js";
import { SchemaChecker, loadSchema } from "../schema.js";
import { errorBox, href, loading, when } from "../ui.js";
import { HELLO_WORLD } from "./render.js";

const HOLDS_PLACEHOLDER = /\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}/;

const STARTER = {
  ...HELLO_WORLD,
  scenes: [
    {
      duration: "{{seconds}}",
      background: "#1E1B4B",
      elements: [
        { type: "text", text: "{{headline}}", font_size: 64, color: "#FFFFFF", position: "center" },
      ],
    },
  ],
};

class TemplatePage {
  constructor(ctx, id, query) {
    this.ctx = ctx;
    this.id = id === "new" ? null : id;
    this.viewing = query.get("version") || "";
    this.template = null;
    this.versions = null;
    this.name = this.id ? "" : "My template";
    this.isPublic = false;
    this.error = null;
    this.saveError = null;
    this.message = null;
    this.busy = false;
    this.checker = null;
    this.editor = new JsonEditor({
      id: "template-script",
      label: "Script, with {{variables}} (JSON)",
      text: this.id ? "" : JSON.stringify(STARTER, null, 2),
      check: (value) =>
        this.checker
          ? this.checker.check(value, { excuse: (text) => HOLDS_PLACEHOLDER.test(text) })
          : null,
      refresh: () => ctx.refresh(),
    });
    loadSchema(ctx.api).then(
      (schema) => {
        this.checker = new SchemaChecker(schema);
        this.editor.recheck();
      },
      (error) => {
        this.error = error;
        ctx.refresh();
      },
    );
    if (this.id) this.load();
  }

  title() {
    return this.template ? this.template.name : this.id ? "Template" : "New template";
  }

  async load() {
    const api = this.ctx.api;
    const id = encodeURIComponent(this.id);
    try {
      const [template, versions] = await Promise.all([
        api.get(`/api/templates/${id}`, { query: { version: this.viewing } }),
        api.get(`/api/templates/${id}/versions`),
      ]);
      this.template = template;
      this.versions = versions.versions;
      this.name = template.name;
      this.isPublic = template.is_public;
      this.editor.setText(JSON.stringify(template.script, null, 2), { quiet: true });
      this.editor.recheck();
      this.error = null;
    } catch (error) {
      this.error = error;
    }
    this.ctx.refresh();
  }

  async save(event) {
    event.preventDefault();
    if (!this.editor.valid) {
      document.getElementById("template-script").focus();
      return;
    }
    const { ctx } = this;
    this.busy = true;
    this.saveError = null;
    this.message = null;
    ctx.refresh();
    try {
      if (!this.id) {
        const created = await ctx.api.post("/api/templates", {
          name: this.name,
          is_public: this.isPublic,
          script: this.editor.value,
        });
        ctx.navigate(`/templates/${created.id}`, { replace: true });
        return;
      }
      const changes = {};
      if (this.name !== this.template.name) changes.name = this.name;
      if (this.isPublic !== this.template.is_public) changes.is_public = this.isPublic;
      if (JSON.stringify(this.editor.value) !== JSON.stringify(this.template.script)) {
        changes.script = this.editor.value;
      }
      const changed = await ctx.api.patch(`/api/templates/${encodeURIComponent(this.id)}`, changes);
      this.message =
        changed.version === this.template.version
          ? "Nothing changed: the version stays."
          : `Saved as version ${changed.version}.`;
      this.viewing = "";
      window.history.replaceState(null, "", href(`/templates/${this.id}`));
      await this.load();
    } catch (error) {
      this.saveError = error;
    }
    this.busy = false;
    ctx.refresh();
  }

  async remove() {
    if (!window.confirm(`Delete the template "${this.template.name}" and all its versions?`)) return;
    try {
      await this.ctx.api.del(`/api/templates/${encodeURIComponent(this.id)}`);
      this.ctx.navigate("/templates", { replace: true });
    } catch (error) {
      this.saveError = error;
      this.ctx.refresh();
    }
  }

  showVersion(version) {
    this.viewing = version === this.versions[0].version ? "" : String(version);
    const query = this.viewing ? `?version=${this.viewing}` : "";
    window.history.replaceState(null, "", href(`/templates/${this.id}${query}`));
    this.message = null;
    this.load();
  }

  view() {
    if (this.id && !this.template) {
      return html`<h1 tabindex="-1">Template</h1>
        ${this.error ? errorBox(this.error) : loading("Loading the template")}`;
    }
    const pinned = this.viewing !== "";
    return html`<p class="crumbs"><a href=${href("/templates")}>Templates</a> › ${this.id ? "Template" : "New"}</p>
      <div class="title-row">
        <h1 tabindex="-1">${this.id ? this.template.name : "New template"}</h1>
        ${this.id
          ? html`<a class="button" href=${href(`/render?template=${this.id}${pinned ? `&version=${this.viewing}` : ""}`)}
              >Render ${pinned ? `version ${this.viewing}` : "this template"}</a
            >`
          : nothing}
      </div>
      ${this.id
        ? html`<p>
            <code>${this.id}</code> · version ${this.template.version}${pinned
              ? html` <span class="badge">an earlier version</span>`
              : " (latest)"}
          </p>`
        : nothing}
      ${this.message ? html`<p class="notice" role="status">${this.message}</p>` : nothing}
      ${errorBox(this.error)}
      <div class=${this.id ? "columns" : ""}>
        <form class="card" @submit=${(event) => this.save(event)} novalidate>
          <h2>${pinned ? `Version ${this.viewing}` : this.id ? "Edit" : "Create"}</h2>
          ${pinned
            ? html`<p class="help">Saving makes this version's content the newest version.</p>`
            : nothing}
          <div class="field">
            <label for="template-name">Name</label>
            <input
              id="template-name"
              required
              maxlength="200"
              .value=${this.name}
              @input=${(event) => {
                this.name = event.target.value;
              }}
            />
          </div>
          <div class="field inline">
            <input
              id="template-public"
              type="checkbox"
              .checked=${this.isPublic}
              @change=${(event) => {
                this.isPublic = event.target.checked;
              }}
            />
            <label for="template-public">Public: any account may read and render it</label>
          </div>
          ${this.editor.view()}
          ${errorBox(this.saveError)}
          <div class="actions">
            <button type="submit" class="primary" ?disabled=${this.busy}>
              ${this.id ? "Save" : "Create template"}
            </button>
            ${this.id
              ? html`<button type="button" class="danger" @click=${() => this.remove()}>Delete</button>`
              : nothing}
          </div>
        </form>
        ${this.id ? this.versionsView() : nothing}
      </div>`;
  }

  versionsView() {
    const current = this.template.version;
    return html`<section class="card" aria-labelledby="versions-heading">
      <h2 id="versions-heading">Versions</h2>
      <ol class="versions" reversed>
        ${this.versions.map(
          (v) => html`<li class=${v.version === current ? "current" : ""}>
            <div>
              <strong>Version ${v.version}</strong> · ${when(v.created_at)}
              ${v.version === current ? html`<span class="badge">shown</span>` : nothing}
            </div>
            <div class="changed">
              ${v.version === 1 ? "Created" : html`Changed: ${v.changed.join(", ") || "nothing"}`}
            </div>
            <div class="version-actions">
              <button type="button" class="small" @click=${() => this.showVersion(v.version)}
                aria-label=${`Show version ${v.version}`}>Show</button>
              <a href=${href(`/render?template=${this.id}&version=${v.version}`)}
                aria-label=${`Render version ${v.version}`}>Render</a>
            </div>
          </li>`,
        )}
      </ol>
    </section>`;
  }
}

export default {
  path: "/templates/:id",
  title: "Template",
  create: (ctx, params, query) => new TemplatePage(ctx, params.id, query),
};

// New render: from the Hello World example (a JSON editor checked as you type, with a
// dry-run estimate) or from a template (a form for its variables, a pinned version);
// a free preview of either before paying, then "Render this".

import { html, nothing } from "../../vendor/lit-html/lit-html.js";
import { JsonEditor } from "../editor.js";
import { PreviewPanel } from "../preview.js";
import { SchemaChecker, loadSchema } from "../schema.js";
import { credits, debounce, emptyState, errorBox, href, loading, seconds } from "../ui.js";

// The API reference's own example: 5 s of "Hello World" at 1920×1080.
export const HELLO_WORLD = {
  width: 1920,
  height: 1080,
  quality: "high",
  scenes: [
    {
      duration: 5,
      background: "#000000",
      elements: [
        { type: "text", text: "Hello World", font_size: 48, color: "#FFFFFF", position: "center" },
      ],
    },
  ],
};

const PLACEHOLDER = /^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$/;

// The JSON type a variable takes: a placeholder standing alone in a number or boolean
// field (`"duration": "{{seconds}}"`) is a number or a boolean; anything else is text.
export function variableTypes(script, typedFields) {
  const types = new Map();
  const walk = (node, key) => {
    if (Array.isArray(node)) node.forEach((item) => walk(item, key));
    else if (node && typeof node === "object") {
      for (const [name, child] of Object.entries(node)) walk(child, name);
    } else if (typeof node === "string") {
      const found = PLACEHOLDER.exec(node);
      if (found && typedFields.has(key)) types.set(found[1], typedFields.get(key));
    }
  };
  walk(script, null);
  return types;
}

function coerce(raw, type) {
  if (type === "number") return raw.trim() === "" ? raw : Number(raw);
  if (type === "boolean") return raw === "true";
  return raw;
}

export class Quoter {
  // Asks the API for a dry run of what would be submitted, at most every 400 ms.
  constructor(ctx, path) {
    this.ctx = ctx;
    this.path = path;
    this.quote = null;
    this.error = null;
    this.pending = false;
    this.serial = 0;
    this.ask = debounce((body) => this.run(body), 400);
  }

  request(body) {
    this.pending = true;
    this.ask(body);
  }

  clear() {
    this.ask.cancel();
    this.serial += 1;
    this.pending = false;
    this.quote = null;
    this.error = null;
  }

  async run(body) {
    const serial = ++this.serial;
    try {
      const quote = await this.ctx.api.post(this.path, body, { query: { dry_run: "true" } });
      if (serial !== this.serial) return;
      this.quote = quote;
      this.error = null;
    } catch (error) {
      if (serial !== this.serial) return;
      this.quote = null;
      this.error = error;
    }
    this.pending = false;
    this.ctx.refresh();
  }

  view() {
    if (this.error) return html`<div class="quote">${errorBox(this.error)}</div>`;
    if (this.pending && !this.quote) return html`<p class="quote" role="status">Pricing…</p>`;
    if (!this.quote) return nothing;
    const q = this.quote;
    return html`<p class="quote" role="status">
      Estimate: <strong>${credits(q.estimated_credits)}</strong> for ${seconds(q.duration_seconds)}
      of video; ${credits(q.credits_remaining)} would remain.
    </p>`;
  }
}

class RenderPage {
  constructor(ctx, query) {
    this.ctx = ctx;
    this.source = query.get("template") ? "template" : "script";
    this.checker = null;
    this.schemaError = null;
    this.submitError = null;
    this.busy = false;
    this.previewPanel = new PreviewPanel(ctx, {
      onRendered: (submitted) => this.submitted(submitted),
    });
    this.quoter = new Quoter(ctx, "/api/render");
    this.templateQuoter = new Quoter(ctx, "/api/render/template");
    this.editor = new JsonEditor({
      id: "script",
      label: "Movie script (JSON)",
      text: JSON.stringify(HELLO_WORLD, null, 2),
      check: (value) => (this.checker ? this.checker.check(value) : null),
      onValid: (value) => this.quoter.request(value),
      refresh: () => {
        if (!this.editor.valid) this.quoter.clear();
        ctx.refresh();
      },
    });
    this.idempotencyKey = null;
    this.templates = null;
    this.templateId = query.get("template") || "";
    this.version = query.get("version") || "";
    this.template = null;
    this.values = {};
    this.types = new Map();
    loadSchema(ctx.api).then(
      (schema) => {
        this.checker = new SchemaChecker(schema);
        this.editor.recheck();
        if (this.template) this.setTemplate(this.template);
      },
      (error) => {
        this.schemaError = error;
        ctx.refresh();
      },
    );
    this.loadTemplates();
  }

  destroy() {
    this.previewPanel.destroy();
    this.quoter.ask.cancel();
    this.templateQuoter.ask.cancel();
  }

  async loadTemplates() {
    try {
      this.templates = (await this.ctx.api.get("/api/templates")).templates;
    } catch (error) {
      this.templates = [];
      this.submitError = error;
    }
    if (this.templateId) await this.chooseTemplate(this.templateId, this.version);
    this.ctx.refresh();
  }

  async chooseTemplate(id, version = "") {
    this.templateId = id;
    this.version = version;
    this.template = null;
    this.templateQuoter.clear();
    this.ctx.refresh();
    if (!id) return;
    try {
      const template = await this.ctx.api.get(`/api/templates/${encodeURIComponent(id)}`, {
        query: { version },
      });
      this.setTemplate(template);
    } catch (error) {
      this.submitError = error;
    }
    this.ctx.refresh();
  }

  setTemplate(template) {
    this.template = template;
    this.types = this.checker
      ? variableTypes(template.script, this.checker.typedFields())
      : new Map();
    for (const name of template.variables || []) {
      if (!(name in this.values)) this.values[name] = "";
    }
    this.quoteTemplate();
  }

  templateBody() {
    const variables = {};
    for (const name of this.template.variables || []) {
      variables[name] = coerce(this.values[name] ?? "", this.types.get(name) || "text");
    }
    const body = { template_id: this.template.id, variables };
    if (this.version) body.template_version = Number(this.version);
    return body;
  }

  quoteTemplate() {
    if (!this.template) return;
    const missing = (this.template.variables || []).some((name) => this.values[name] === "");
    if (missing) this.templateQuoter.clear();
    else this.templateQuoter.request(this.templateBody());
  }

  // What the form would submit now: {path, body}, or null when it cannot yet.
  request() {
    if (this.source === "script") {
      return this.editor.valid ? { path: "/api/render", body: this.editor.value } : null;
    }
    return this.template ? { path: "/api/render/template", body: this.templateBody() } : null;
  }

  // A preview takes the very body a render would (a script, or a template's).
  preview() {
    const wanted = this.request();
    if (!wanted) {
      if (this.source === "script") document.getElementById("script").focus();
      return;
    }
    this.previewPanel.start(wanted.body);
  }

  submitted(job) {
    this.ctx.announce(`Submitted: ${job.estimated_credits} credits charged.`);
    this.ctx.navigate(`/jobs/${job.job_id}`);
  }

  async submit(event) {
    event.preventDefault();
    const { ctx } = this;
    const wanted = this.request();
    if (!wanted) {
      if (this.source === "script") document.getElementById("script").focus();
      return;
    }
    const { path, body } = wanted;
    // One key per body: a retry after a dropped answer is the same submission.
    const fingerprint = `${path} ${JSON.stringify(body)}`;
    if (!this.idempotencyKey || this.idempotencyKey.fingerprint !== fingerprint) {
      this.idempotencyKey = { fingerprint, key: crypto.randomUUID() };
    }
    this.busy = true;
    this.submitError = null;
    ctx.refresh();
    try {
      const submitted = await ctx.api.post(path, body, {
        headers: { "Idempotency-Key": this.idempotencyKey.key },
      });
      this.submitted(submitted);
      return;
    } catch (error) {
      this.submitError = error;
    }
    this.busy = false;
    ctx.refresh();
  }

  setSource(source) {
    this.source = source;
    this.submitError = null;
    this.ctx.refresh();
  }

  view() {
    return html`<h1 tabindex="-1">New render</h1>
      <form class="render-form" @submit=${(event) => this.submit(event)} novalidate>
        <fieldset class="choice">
          <legend>Start from</legend>
          <label
            ><input
              type="radio"
              name="source"
              value="script"
              .checked=${this.source === "script"}
              @change=${() => this.setSource("script")}
            />
            A script (the Hello World example)</label
          >
          <label
            ><input
              type="radio"
              name="source"
              value="template"
              .checked=${this.source === "template"}
              @change=${() => this.setSource("template")}
            />
            One of your templates</label
          >
        </fieldset>
        ${this.schemaError ? errorBox(this.schemaError) : nothing}
        ${this.source === "script" ? this.scriptView() : this.templateView()}
        ${errorBox(this.submitError)}
        <div class="actions">
          <button type="submit" class="primary" ?disabled=${this.busy}>
            ${this.busy ? "Submitting…" : "Render"}
          </button>
          <button
            type="button"
            ?disabled=${this.busy || this.previewPanel.busy}
            @click=${() => this.preview()}
          >
            Preview
          </button>
          <span class="help">A preview is free: storyboard stills, then a small watermarked video.</span>
        </div>
      </form>
      ${this.previewPanel.view(this.request()?.body)}`;
  }

  scriptView() {
    return html`${this.editor.view()}
      <p class="help">
        The whole format, with every default, is the
        <a href="/api/render/schema">render schema</a>.
      </p>
      ${this.editor.valid ? this.quoter.view() : nothing}`;
  }

  templateView() {
    if (this.templates === null) return loading("Loading your templates");
    if (this.templates.length === 0 && !this.templateId) {
      return emptyState(
        "You have no templates yet.",
        html`<a href=${href("/templates/new")}>Create one</a> from a script with
          <code>{{variables}}</code>.`,
      );
    }
    const template = this.template;
    return html`<div class="field">
        <label for="template-choice">Template</label>
        <select id="template-choice" @change=${(event) => this.chooseTemplate(event.target.value)}>
          <option value="" ?selected=${!this.templateId}>Choose a template…</option>
          ${this.templates.map(
            (t) =>
              html`<option value=${t.id} ?selected=${t.id === this.templateId}>
                ${t.name} (version ${t.version})
              </option>`,
          )}
          ${this.templateId && !this.templates.some((t) => t.id === this.templateId)
            ? html`<option value=${this.templateId} selected>${this.templateId}</option>`
            : nothing}
        </select>
      </div>
      ${template
        ? html`<p>
              ${template.name}, version ${template.version}${this.version
                ? html` <span class="badge">pinned</span>`
                : " (latest)"}
            </p>
            ${(template.variables || []).length === 0
              ? html`<p>This template has no variables.</p>`
              : html`<fieldset class="variables">
                  <legend>Variables</legend>
                  ${template.variables.map((name) => this.variableInput(name))}
                </fieldset>`}
            ${this.templateQuoter.view()}`
        : this.templateId
          ? loading("Loading the template")
          : nothing}`;
  }

  variableInput(name) {
    const type = this.types.get(name) || "text";
    const id = `var-${name}`;
    const update = (value) => {
      this.values[name] = value;
      this.quoteTemplate();
      this.ctx.refresh();
    };
    if (type === "boolean") {
      return html`<div class="field">
        <label for=${id}>${name}</label>
        <select id=${id} @change=${(event) => update(event.target.value)}>
          <option value="" ?selected=${this.values[name] === ""}>Choose…</option>
          <option value="true" ?selected=${this.values[name] === "true"}>true</option>
          <option value="false" ?selected=${this.values[name] === "false"}>false</option>
        </select>
      </div>`;
    }
    return html`<div class="field">
      <label for=${id}>${name}</label>
      <input
        id=${id}
        type=${type === "number" ? "number" : "text"}
        step="any"
        .value=${this.values[name] ?? ""}
        @input=${(event) => update(event.target.value)}
      />
    </div>`;
  }
}

export default {
  path: "/render",
  title: "New render",
  nav: "New render",
  create: (ctx, params, query) => new RenderPage(ctx, query),
};

// Integrations: where exports deliver (S3, FTP, SFTP, e-mail, YouTube). List, create
// with a form for each type, delete. Secrets are write-only: sent once, never shown
// again (the API answers only that each is set, and the last 4 characters of long ones).

import { html, nothing } from "../../vendor/lit-html/lit-html.js";
import { columnHeads, emptyState, errorBox, loading, when } from "../ui.js";

// Each type's fields, as the API takes them (docs/api.md, Integrations). `kind`: text,
// number, checkbox, select, textarea; `secret`: sent in `secrets`, never shown back.
const pem = { name: "ca_certificate", label: "CA certificate (PEM, to trust a private CA)", kind: "textarea" };
export const TYPES = {
  s3: {
    label: "Amazon S3 (or an S3-compatible store)",
    fields: [
      { name: "bucket", label: "Bucket", required: true },
      { name: "access_key_id", label: "Access key id", required: true },
      { name: "region", label: "Region", placeholder: "us-east-1" },
      { name: "endpoint_url", label: "Endpoint URL (S3-compatible stores only)", kind: "url" },
      { name: "secret_access_key", label: "Secret access key", required: true, secret: true },
    ],
  },
  ftp: {
    label: "FTP or FTPS",
    fields: [
      { name: "host", label: "Host", required: true },
      { name: "port", label: "Port", kind: "number", placeholder: "21" },
      { name: "username", label: "User name", required: true },
      { name: "tls", label: "Use TLS (explicit FTPS)", kind: "checkbox" },
      pem,
      { name: "password", label: "Password", required: true, secret: true },
    ],
  },
  sftp: {
    label: "SFTP",
    fields: [
      { name: "host", label: "Host", required: true },
      { name: "port", label: "Port", kind: "number", placeholder: "22" },
      { name: "username", label: "User name", required: true },
      {
        name: "host_key",
        label: "The server's host key (one OpenSSH line)",
        kind: "textarea",
        required: true,
        help: "The connection is refused unless the server proves it holds this key. ssh-keyscan prints it.",
      },
      { name: "password", label: "Password", secret: true, help: "A password, a private key, or both." },
      { name: "private_key", label: "Private key", kind: "textarea", secret: true },
      { name: "passphrase", label: "Private key passphrase", secret: true },
    ],
  },
  email: {
    label: "E-mail (SMTP)",
    fields: [
      { name: "host", label: "SMTP host", required: true },
      { name: "port", label: "Port", kind: "number", placeholder: "587" },
      { name: "security", label: "Security", kind: "select", options: ["starttls", "tls", "none"] },
      { name: "from_address", label: "From address", kind: "email", required: true },
      { name: "username", label: "User name" },
      pem,
      { name: "password", label: "Password (with a user name)", secret: true },
    ],
  },
  youtube: {
    label: "YouTube",
    fields: [
      { name: "client_id", label: "OAuth client id", required: true },
      { name: "client_secret", label: "OAuth client secret", required: true, secret: true },
      {
        name: "refresh_token",
        label: "Refresh token (granted youtube.upload)",
        required: true,
        secret: true,
      },
    ],
  },
};

// The body of POST /api/integrations from the form's values: empty optional fields left
// out, so the API's defaults apply.
export function integrationBody(type, name, values) {
  const settings = {};
  const secrets = {};
  for (const field of TYPES[type].fields) {
    const raw = values[field.name];
    if (field.kind === "checkbox") {
      if (raw) settings[field.name] = true;
      continue;
    }
    if (raw === undefined || raw === "") continue;
    const value = field.kind === "number" ? Number(raw) : raw;
    (field.secret ? secrets : settings)[field.name] = value;
  }
  return { type, name, settings, secrets };
}

function summary(integration) {
  const s = integration.settings || {};
  if (integration.type === "s3") return `${s.bucket}${s.endpoint_url ? ` at ${s.endpoint_url}` : ` (${s.region})`}`;
  if (integration.type === "youtube") return `client ${s.client_id}`;
  if (integration.type === "email") return `${s.from_address} via ${s.host}:${s.port}`;
  return `${s.username}@${s.host}:${s.port}`;
}

function secretsSummary(secrets) {
  return Object.entries(secrets || {})
    .filter(([, state]) => state && state.set)
    .map(([name, state]) => (state.last4 ? `${name} (…${state.last4})` : name))
    .join(", ");
}

class IntegrationsPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.integrations = null;
    this.error = null;
    this.formError = null;
    this.created = null;
    this.busy = false;
    this.type = "s3";
    this.name = "";
    this.values = {};
    this.load();
  }

  destroy() {
    this.values = {}; // secrets typed but not sent leave memory with the page
  }

  async load() {
    try {
      this.integrations = (await this.ctx.api.get("/api/integrations")).integrations;
      this.error = null;
    } catch (error) {
      this.error = error;
    }
    this.ctx.refresh();
  }

  setType(type) {
    this.type = type;
    this.values = {};
    this.formError = null;
    this.ctx.refresh();
  }

  async create(event) {
    event.preventDefault();
    this.busy = true;
    this.formError = null;
    this.created = null;
    this.ctx.refresh();
    try {
      this.created = await this.ctx.api.post(
        "/api/integrations",
        integrationBody(this.type, this.name, this.values),
      );
      // Sent once: the form forgets every value, secrets first of all.
      this.values = {};
      this.name = "";
      event.target.reset();
      this.ctx.announce(`Integration ${this.created.name} created.`);
      await this.load();
    } catch (error) {
      this.formError = error;
    }
    this.busy = false;
    this.ctx.refresh();
  }

  async remove(integration) {
    const warning = `Delete the integration ${integration.name}? Its secrets are destroyed for good, and exports that still need it fail.`;
    if (!window.confirm(warning)) return;
    try {
      await this.ctx.api.del(`/api/integrations/${encodeURIComponent(integration.id)}`);
      if (this.created && this.created.id === integration.id) this.created = null;
      this.ctx.announce(`Integration ${integration.name} deleted.`);
      await this.load();
    } catch (error) {
      this.error = error;
      this.ctx.refresh();
    }
  }

  // The field the API refused (`settings.host`, `secrets.password`), if it is this one.
  invalid(field) {
    const path = this.formError && this.formError.path;
    return path === `${field.secret ? "secrets" : "settings"}.${field.name}`;
  }

  fieldView(field) {
    const id = `integration-${field.name}`;
    const value = this.values[field.name] ?? "";
    const set = (v) => {
      this.values[field.name] = v;
    };
    const invalid = this.invalid(field) ? "true" : nothing;
    const help = field.help ? html`<p class="help" id=${`${id}-help`}>${field.help}</p>` : nothing;
    const described = field.help ? `${id}-help` : nothing;
    const label = html`<label for=${id}>${field.label}${field.required ? nothing : html` <span class="help">(optional)</span>`}</label>`;
    if (field.kind === "checkbox") {
      return html`<div class="field checkbox">
        <label><input id=${id} type="checkbox" .checked=${Boolean(value)} @change=${(e) => set(e.target.checked)} />
          ${field.label}</label>
      </div>`;
    }
    if (field.kind === "select") {
      return html`<div class="field">
        ${label}
        <select id=${id} @change=${(e) => set(e.target.value)}>
          ${field.options.map((o) => html`<option value=${o} ?selected=${(value || field.options[0]) === o}>${o}</option>`)}
        </select>
      </div>`;
    }
    if (field.kind === "textarea") {
      return html`<div class="field">
        ${label}
        <textarea id=${id} class="code" rows="4" spellcheck="false" autocomplete="off"
          ?required=${field.required} aria-invalid=${invalid} aria-describedby=${described}
          .value=${value} @input=${(e) => set(e.target.value)}></textarea>
        ${help}
      </div>`;
    }
    const type = field.secret ? "password" : field.kind || "text";
    return html`<div class="field">
      ${label}
      <input id=${id} type=${type} placeholder=${field.placeholder || nothing}
        autocomplete=${field.secret ? "new-password" : "off"} spellcheck="false"
        ?required=${field.required} aria-invalid=${invalid} aria-describedby=${described}
        .value=${value} @input=${(e) => set(e.target.value)} />
      ${help}
    </div>`;
  }

  formView() {
    const spec = TYPES[this.type];
    const settings = spec.fields.filter((f) => !f.secret);
    const secrets = spec.fields.filter((f) => f.secret);
    return html`<form class="card integration-form" aria-labelledby="new-integration-heading" @submit=${(e) => this.create(e)} novalidate>
      <h2 id="new-integration-heading">New integration</h2>
      <div class="field">
        <label for="integration-type">Type</label>
        <select id="integration-type" @change=${(e) => this.setType(e.target.value)}>
          ${Object.entries(TYPES).map(
            ([type, t]) => html`<option value=${type} ?selected=${type === this.type}>${t.label}</option>`,
          )}
        </select>
      </div>
      <div class="field">
        <label for="integration-name">Name</label>
        <input id="integration-name" required maxlength="100" .value=${this.name}
          aria-invalid=${this.formError?.path === "name" ? "true" : nothing}
          @input=${(e) => { this.name = e.target.value; }} />
      </div>
      <fieldset>
        <legend>Settings</legend>
        ${settings.map((f) => this.fieldView(f))}
      </fieldset>
      <fieldset>
        <legend>Secrets</legend>
        <p class="help">Sealed when sent and never shown again, here or by the API.</p>
        ${secrets.map((f) => this.fieldView(f))}
      </fieldset>
      ${errorBox(this.formError)}
      <div class="actions">
        <button type="submit" class="primary" ?disabled=${this.busy}>Create integration</button>
      </div>
    </form>`;
  }

  createdView() {
    const created = this.created;
    if (!created) return nothing;
    const example = { type: created.type, integration_id: created.id };
    return html`<section class="notice" role="status">
      <p>Created <strong>${created.name}</strong> (<code>${created.id}</code>). Name it in a script's exports:</p>
      <pre class="code wrap">"exports": [${JSON.stringify(example)}]</pre>
    </section>`;
  }

  view() {
    const list = this.integrations;
    return html`<h1 tabindex="-1">Integrations</h1>
      <p>
        An integration holds what an export needs to reach a destination, once: settings in the
        clear, secrets sealed. A script's <code>exports</code> name it by id, so credentials never
        travel in scripts.
      </p>
      ${this.createdView()}
      ${errorBox(this.error)}
      ${list === null && !this.error ? loading("Loading your integrations") : nothing}
      ${list && list.length === 0
        ? emptyState("No integrations yet.", "Create one below to export renders to S3, FTP, SFTP, e-mail or YouTube.")
        : nothing}
      ${list && list.length
        ? html`<table class="responsive integrations">
            <caption class="sr-only">Your integrations, newest first</caption>
            ${columnHeads(["Name", "Type", "Where", "Secrets", "Created"], { actions: true })}
            <tbody>
              ${list.map(
                (item) => html`<tr data-integration=${item.id}>
                  <th scope="row" data-label="Name">${item.name}<br /><code class="help">${item.id}</code></th>
                  <td data-label="Type">${item.type}</td>
                  <td data-label="Where">${summary(item)}</td>
                  <td data-label="Secrets">${secretsSummary(item.secrets) || "—"}</td>
                  <td data-label="Created">${when(item.created_at)}</td>
                  <td data-label="Actions">
                    <button type="button" class="danger small" aria-label=${`Delete ${item.name}`}
                      @click=${() => this.remove(item)}>Delete</button>
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : nothing}
      ${this.formView()}`;
  }
}

export default {
  path: "/integrations",
  title: "Integrations",
  nav: "Integrations",
  create: (ctx) => new IntegrationsPage(ctx),
};

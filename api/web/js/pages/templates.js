// Templates: the account's own, newest first.

import { html, nothing } from "../../vendor/lit-html/lit-html.js";
import { columnHeads, emptyState, errorBox, href, loading, when } from "../ui.js";

class TemplatesPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.templates = null;
    this.error = null;
    this.load();
  }

  async load() {
    try {
      this.templates = (await this.ctx.api.get("/api/templates")).templates;
    } catch (error) {
      this.error = error;
    }
    this.ctx.refresh();
  }

  view() {
    const list = this.templates;
    return html`<div class="title-row">
        <h1 tabindex="-1">Templates</h1>
        <a class="button" href=${href("/templates/new")}>New template</a>
      </div>
      ${errorBox(this.error)}
      ${list === null && !this.error ? loading("Loading your templates") : nothing}
      ${list && list.length === 0
        ? emptyState(
            "No templates yet.",
            html`A template is a movie script with <code>{{variables}}</code>, rendered many times
              with different values. <a href=${href("/templates/new")}>Create your first</a>.`,
          )
        : nothing}
      ${list && list.length
        ? html`<table class="responsive">
            <caption class="sr-only">Your templates, newest first</caption>
            ${columnHeads(["Name", "Version", "Visibility", "Changed"], { actions: true })}
            <tbody>
              ${list.map(
                (t) => html`<tr>
                  <th scope="row" data-label="Name"><a href=${href(`/templates/${t.id}`)}>${t.name}</a></th>
                  <td data-label="Version">${t.version}</td>
                  <td data-label="Visibility">${t.is_public ? "public" : "private"}</td>
                  <td data-label="Changed">${when(t.updated_at)}</td>
                  <td data-label="Actions">
                    <a href=${href(`/render?template=${t.id}`)} aria-label=${`Render ${t.name}`}>Render</a>
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : nothing}`;
  }
}

export default {
  path: "/templates",
  title: "Templates",
  nav: "Templates",
  create: (ctx) => new TemplatesPage(ctx),
};

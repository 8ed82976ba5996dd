/** Templates: scripts with `{{variable}}` placeholders, versioned, rendered with values. */

import type { Quote, Script, Submission, Template, TemplateSummary, TemplateVersion, Variables } from "../models.js";
import { Resource, encode, withExtras } from "./base.js";
import { type RenderExtras, dryRunCall, extras, submit, submitCall } from "./renders.js";

export interface TemplateChanges {
  name?: string;
  script?: Script;
  is_public?: boolean;
}

export interface TemplateRenderOptions extends RenderExtras {
  version?: number;
  idempotencyKey?: string;
}

export function renderBody(templateId: string, variables: Variables, options: TemplateRenderOptions): Record<string, unknown> {
  return withExtras({ template_id: templateId, variables }, { template_version: options.version, ...extras(options) });
}

export class Templates extends Resource {
  create(name: string, script: Script, options: { isPublic?: boolean } = {}): Promise<TemplateSummary> {
    return this.transport.json({
      method: "POST",
      path: "/api/templates",
      body: { name, script, is_public: options.isPublic ?? false },
    });
  }

  /** The account's own templates, newest first (without their scripts). */
  async list(): Promise<TemplateSummary[]> {
    const found = await this.transport.json<{ templates: TemplateSummary[] }>({ method: "GET", path: "/api/templates" });
    return found.templates;
  }

  /** The latest version, or `version`; yours or a public one. */
  get(templateId: string, options: { version?: number } = {}): Promise<Template> {
    return this.transport.json({
      method: "GET",
      path: `/api/templates/${encode(templateId)}`,
      query: { version: options.version },
    });
  }

  async versions(templateId: string): Promise<TemplateVersion[]> {
    const found = await this.transport.json<{ versions: TemplateVersion[] }>({
      method: "GET",
      path: `/api/templates/${encode(templateId)}/versions`,
    });
    return found.versions;
  }

  /** Change only the fields given (PATCH); the same change twice records nothing. */
  update(templateId: string, changes: TemplateChanges): Promise<TemplateSummary> {
    return this.transport.json({
      method: "PATCH",
      path: `/api/templates/${encode(templateId)}`,
      body: changes,
      idempotent: true,
    });
  }

  /** The same change sent as PUT (the server treats PUT and PATCH alike). */
  replace(templateId: string, changes: TemplateChanges): Promise<TemplateSummary> {
    return this.transport.json({
      method: "PUT",
      path: `/api/templates/${encode(templateId)}`,
      body: changes,
      idempotent: true,
    });
  }

  async delete(templateId: string): Promise<void> {
    await this.transport.json({ method: "DELETE", path: `/api/templates/${encode(templateId)}` });
  }

  /** Substitute `variables` into the template and queue the render. */
  render(templateId: string, variables: Variables = {}, options: TemplateRenderOptions = {}): Promise<Submission> {
    const body = renderBody(templateId, variables, options);
    return submit(this.transport, submitCall("/api/render/template", body, options.idempotencyKey));
  }

  /** A dry run of `render`: substitute, validate and price, recording nothing. */
  quote(templateId: string, variables: Variables = {}, options: Omit<TemplateRenderOptions, "idempotencyKey"> = {}): Promise<Quote> {
    return this.transport.json(dryRunCall("/api/render/template", renderBody(templateId, variables, options)));
  }
}


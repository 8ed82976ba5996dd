/** Templates: scripts with `{{variable}}` placeholders, versioned, rendered with values. */

import type { Quote, Script, Submission, Template, TemplateSummary, TemplateVersion, Variables } from "../models.js";
import { Resource, encode, idempotencyHeaders } from "./base.js";
import { DRY_RUN, submit } from "./renders.js";

export interface TemplateChanges {
  name?: string;
  script?: Script;
  is_public?: boolean;
}

export interface TemplateRenderOptions {
  version?: number;
  webhookUri?: string;
  idempotencyKey?: string;
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

  async delete(templateId: string): Promise<void> {
    await this.transport.json({ method: "DELETE", path: `/api/templates/${encode(templateId)}` });
  }

  /** Substitute `variables` into the template and queue the render. */
  render(templateId: string, variables: Variables = {}, options: TemplateRenderOptions = {}): Promise<Submission> {
    const body: Record<string, unknown> = { template_id: templateId, variables };
    if (options.version !== undefined) body.template_version = options.version;
    if (options.webhookUri !== undefined) body.webhook_uri = options.webhookUri;
    return submit(this.transport, {
      method: "POST",
      path: "/api/render/template",
      body,
      headers: idempotencyHeaders(options.idempotencyKey),
    });
  }

  /** A dry run of `render`: substitute, validate and price, recording nothing. */
  quote(templateId: string, variables: Variables = {}, options: { version?: number } = {}): Promise<Quote> {
    const body: Record<string, unknown> = { template_id: templateId, variables };
    if (options.version !== undefined) body.template_version = options.version;
    return this.transport.json({
      method: "POST",
      path: "/api/render/template",
      query: DRY_RUN,
      body,
      idempotent: true,
    });
  }
}

/**
 * Integrations: stored credentials of the destinations exports deliver to (S3, FTP,
 * SFTP, email, YouTube). Settings are kept and shown; secrets are sealed and never shown
 * again. A render names one by id in its `exports`.
 */

import type { DeletedIntegration, Integration, NewIntegration } from "../models.js";
import { Resource, encode } from "./base.js";

export class Integrations extends Resource {
  /** Store an integration; what each type takes is in docs/api.md, "Integrations". */
  create(integration: NewIntegration): Promise<Integration> {
    return this.transport.json({
      method: "POST",
      path: "/api/integrations",
      body: { secrets: {}, ...integration },
    });
  }

  /** The integrations of this key's mode (live or sandbox), newest first. */
  async list(): Promise<Integration[]> {
    const found = await this.transport.json<{ integrations: Integration[] }>({ method: "GET", path: "/api/integrations" });
    return found.integrations;
  }

  get(integrationId: string): Promise<Integration> {
    return this.transport.json({ method: "GET", path: `/api/integrations/${encode(integrationId)}` });
  }

  /** Delete it: its secret's key is destroyed, so the secret can never be recovered. */
  delete(integrationId: string): Promise<DeletedIntegration> {
    return this.transport.json({ method: "DELETE", path: `/api/integrations/${encode(integrationId)}` });
  }
}

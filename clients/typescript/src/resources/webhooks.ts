/** Webhooks: a job's delivery log, manual redelivery, the account's signing secret.
 * (Checking a received webhook's signature is `verifyWebhook`.) */

import type { Redelivery, WebhookLog, WebhookSecret } from "../models.js";
import { Resource, encode } from "./base.js";

export class Webhooks extends Resource {
  deliveries(jobId: string): Promise<WebhookLog> {
    return this.transport.json({ method: "GET", path: `/api/jobs/${encode(jobId)}/webhooks` });
  }

  /** Send the job's webhook once more (same body, same webhook-id). */
  redeliver(jobId: string): Promise<Redelivery> {
    return this.transport.json({ method: "POST", path: `/api/jobs/${encode(jobId)}/webhooks/redeliver` });
  }

  /** The `whsec_...` secret deliveries are signed with (created on first use). */
  secret(): Promise<WebhookSecret> {
    return this.transport.json({ method: "GET", path: "/api/webhooks/secret" });
  }

  /** A new secret; the previous one signs beside it until `previous_secret_expires_at`. */
  rotateSecret(): Promise<WebhookSecret> {
    return this.transport.json({ method: "POST", path: "/api/webhooks/secret/rotate" });
  }
}

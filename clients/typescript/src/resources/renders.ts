/** Renders: submit a movie script (`POST /api/render`). */

import type { Script, Submission } from "../models.js";
import type { Call, Transport } from "../transport.js";
import { Resource, idempotencyHeaders } from "./base.js";

export interface SubmitOptions {
  webhookUri?: string;
  /** Defaults to a key generated for this call. */
  idempotencyKey?: string;
}

export async function submit(
  transport: Transport,
  call: Call,
): Promise<Submission> {
  const { response, text } = await transport.open(call, true);
  const body = JSON.parse(text ?? "{}") as Omit<Submission, "replayed">;
  return { ...body, replayed: response.headers.get("idempotent-replayed") === "true" };
}

export class Renders extends Resource {
  /**
   * Queue a render of `script` and charge its estimate. Safe to retry: one
   * Idempotency-Key per call makes its retries charge once.
   */
  create(script: Script, options: SubmitOptions = {}): Promise<Submission> {
    const body = options.webhookUri ? { ...script, webhook_uri: options.webhookUri } : script;
    return submit(this.transport, {
      method: "POST",
      path: "/api/render",
      body,
      headers: idempotencyHeaders(options.idempotencyKey),
    });
  }
}

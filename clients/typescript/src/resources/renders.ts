/** Renders: submit a movie script (`POST /api/render`). */

import type { Quote, Script, Submission } from "../models.js";
import type { Call, Transport } from "../transport.js";
import { Resource, idempotencyHeaders } from "./base.js";

export interface SubmitOptions {
  webhookUri?: string;
  /** Defaults to a key generated for this call. */
  idempotencyKey?: string;
}

/** A dry run records nothing, so a lost answer may be asked again. */
export const DRY_RUN = { dry_run: "true" };

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

  /**
   * A dry run: validate and price `script` against the account's credits and limits
   * now, recording nothing. Throws exactly as `create` would.
   */
  quote(script: Script, options: { webhookUri?: string } = {}): Promise<Quote> {
    const body = options.webhookUri ? { ...script, webhook_uri: options.webhookUri } : script;
    return this.transport.json({ method: "POST", path: "/api/render", query: DRY_RUN, body, idempotent: true });
  }
}

/** Renders: submit a movie script (`POST /api/render`). */

import type { ExportTarget, Metadata, Quote, Script, Submission } from "../models.js";
import type { Call, Transport } from "../transport.js";
import { Resource, idempotencyHeaders, withExtras } from "./base.js";

/** What a render carries besides its script; each, when given, replaces the script's. */
export interface RenderExtras {
  webhookUri?: string;
  /** Your own JSON object, kept with the job and sent back with it. */
  metadata?: Metadata;
  /** Where the video goes once rendered, each naming one of your integrations. */
  exports?: ExportTarget[];
}

export interface SubmitOptions extends RenderExtras {
  /** Defaults to a key generated for this call. */
  idempotencyKey?: string;
}

export function extras(options: RenderExtras): Record<string, unknown> {
  return { webhook_uri: options.webhookUri, metadata: options.metadata, exports: options.exports };
}

/** A submission: one Idempotency-Key per call, so that its retries charge once. */
export function submitCall(path: string, body: object, idempotencyKey?: string): Call {
  return { method: "POST", path, body, headers: idempotencyHeaders(idempotencyKey) };
}

/** A dry run of the submission at `path`. */
export function dryRunCall(path: string, body: object): Call {
  return { method: "POST", path, query: DRY_RUN, body, idempotent: true };
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
    const body = withExtras(script, extras(options));
    return submit(this.transport, submitCall("/api/render", body, options.idempotencyKey));
  }

  /**
   * A dry run: validate and price `script` against the account's credits and limits
   * now, recording nothing. Throws exactly as `create` would.
   */
  quote(script: Script, options: RenderExtras = {}): Promise<Quote> {
    return this.transport.json(dryRunCall("/api/render", withExtras(script, extras(options))));
  }
}

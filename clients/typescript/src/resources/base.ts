/**
 * What every resource builds on. A resource is one module: a class whose methods say
 * what to send; the client lists each resource once (client.ts), so a new part of the
 * API is a new module and one line.
 */

import type { Transport } from "../transport.js";

export abstract class Resource {
  constructor(protected readonly transport: Transport) {}
}

/** One key per call, generated unless given, reused by every retry of the call. */
export function idempotencyHeaders(key?: string): Record<string, string> {
  return { "Idempotency-Key": key ?? `pf-${crypto.randomUUID()}` };
}

export function encode(segment: string): string {
  return encodeURIComponent(segment);
}

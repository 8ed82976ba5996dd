/**
 * What every resource builds on. A resource is one module: a class whose methods say
 * what to send; the client lists each resource once (client.ts), so a new part of the
 * API is a new module and one line.
 */

import { WaitTimeoutError } from "../errors.js";
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

/** `body` with each extra that is given set on it: a render's webhook_uri, metadata, exports. */
export function withExtras(body: object, extras: Record<string, unknown>): Record<string, unknown> {
  const given = Object.entries(extras).filter(([, value]) => value !== undefined);
  return { ...body, ...Object.fromEntries(given) };
}

/**
 * A file, whole: public ones (an output, a preview's proxy) read without the key, an
 * asset's with it. A transfer cut short starts again.
 */
export async function downloadWhole(transport: Transport, url: string, anonymous = true): Promise<Uint8Array> {
  for (let attempt = 0; ; attempt++) {
    const { response } = await transport.open({ method: "GET", path: url, anonymous });
    try {
      return new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      // The transfer broke off: start again, within the retries.
      const call = { method: "GET", path: url };
      const delay = transport.delay(call, attempt, undefined, error);
      if (delay === undefined) throw error;
      transport.announce(call, attempt, delay, undefined, error);
    }
  }
}

/** Follow until the stream's end, handing each event on; WaitTimeoutError after `timeout` s. */
export async function drain<E>(
  events: (signal: AbortSignal | undefined) => AsyncGenerator<E>,
  what: string,
  options: { timeout?: number; onEvent?: (event: E) => void | Promise<void>; signal?: AbortSignal },
): Promise<void> {
  const timeout = options.timeout;
  const signals = [options.signal, timeout === undefined ? undefined : AbortSignal.timeout(timeout * 1000)];
  const live = signals.filter((signal): signal is AbortSignal => signal !== undefined);
  const signal = live.length ? AbortSignal.any(live) : undefined;
  try {
    for await (const event of events(signal)) {
      await options.onEvent?.(event);
    }
  } catch (error) {
    if (timeout !== undefined && signal?.aborted && !options.signal?.aborted) {
      throw new WaitTimeoutError(what, timeout);
    }
    throw error;
  }
}

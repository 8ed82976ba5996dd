/**
 * HTTP with retries on `fetch`: one description of a call, sent with the retry policy.
 *
 * What is retried, and why it is safe:
 * - 429 (rate or concurrency limit): always; the server refused before doing anything.
 *   The wait is `Retry-After` when the answer has one, else the backoff.
 * - 500, 502, 503, 504, and a connection lost after the request was sent: only when
 *   sending twice does no harm: an idempotent method (GET, PUT, DELETE) or a request
 *   with an `Idempotency-Key` (submissions always have one, generated once per call and
 *   reused by its retries, so the server charges once).
 * - A connection that could not be opened: always (nothing reached the server).
 *
 * Backoff: `backoff × 2^attempt` seconds, capped at `maxBackoff`, with "equal jitter"
 * (half fixed, half random) so that clients refused together do not return together.
 */

import { APIConnectionError, errorFromResponse, retryAfterSeconds } from "./errors.js";

export const VERSION = "0.1.0";
export const DEFAULT_URL = "http://127.0.0.1:8080";
const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);
const RETRIED_STATUSES = new Set([500, 502, 503, 504]);
// Errors of undici (Node's fetch) that mean the request never left.
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** Passed to `RetryPolicy.onRetry` before each wait (for logs and metrics). */
export interface RetryEvent {
  method: string;
  path: string;
  attempt: number;
  delaySeconds: number;
  status: number | undefined;
  error: unknown;
}

export interface RetryPolicy {
  maxRetries: number;
  /** Seconds before the first retry; doubled at each. */
  backoff: number;
  maxBackoff: number;
  /** A `Retry-After` longer than this (seconds) is not waited for: the 429 is thrown. */
  maxRetryAfter: number;
  onRetry?: (event: RetryEvent) => void;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxRetries: 4,
  backoff: 0.5,
  maxBackoff: 30,
  maxRetryAfter: 120,
};

export interface Call {
  method: string;
  path: string;
  query?: Record<string, string | number | boolean | undefined | null>;
  body?: unknown;
  /** A body that is not JSON (an upload), made anew for each attempt. */
  stream?: () => { body: ReadableStream<Uint8Array>; contentType: string };
  headers?: Record<string, string>;
  /** Safe to send twice; by default, decided by the method and the Idempotency-Key. */
  idempotent?: boolean;
  /** Sent without the key: public documents, and outputs that may be on another host. */
  anonymous?: boolean;
  signal?: AbortSignal;
  /** Milliseconds before the request (headers and body) is given up; none for streams. */
  timeoutMs?: number;
}

export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const cap = Math.min(policy.maxBackoff, policy.backoff * 2 ** attempt);
  return cap / 2 + Math.random() * (cap / 2);
}

export function isIdempotent(call: Call): boolean {
  if (call.idempotent !== undefined) return call.idempotent;
  return IDEMPOTENT_METHODS.has(call.method) || "Idempotency-Key" in (call.headers ?? {});
}

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

export function sleep(seconds: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, seconds * 1000);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export class Transport {
  readonly baseUrl: string;
  readonly retry: RetryPolicy;
  private readonly apiKey: string | undefined;
  private readonly fetchImpl: typeof fetch;
  readonly timeoutMs: number;

  constructor(options: {
    baseUrl: string;
    apiKey: string | undefined;
    retry: RetryPolicy;
    timeoutMs: number;
    fetch?: typeof fetch;
  }) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiKey = options.apiKey;
    this.retry = options.retry;
    this.timeoutMs = options.timeoutMs;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  url(call: Call): string {
    const url = new URL(/^https?:\/\//.test(call.path) ? call.path : this.baseUrl + call.path);
    for (const [name, value] of Object.entries(call.query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    return url.toString();
  }

  /** The decision after a failed attempt: seconds to wait, or undefined to give up. */
  delay(call: Call, attempt: number, response?: Response, error?: unknown): number | undefined {
    const policy = this.retry;
    if (attempt >= policy.maxRetries) return undefined;
    if (error !== undefined) {
      const code = errorCode(error);
      const notSent = code !== undefined && NOT_SENT_CODES.has(code);
      return notSent || isIdempotent(call) ? backoffDelay(policy, attempt) : undefined;
    }
    if (response!.status === 429) {
      const after = retryAfterSeconds(response!.headers);
      if (after === undefined) return backoffDelay(policy, attempt);
      if (after > policy.maxRetryAfter) return undefined;
      return after + Math.random() * Math.min(1, policy.backoff);
    }
    if (RETRIED_STATUSES.has(response!.status) && isIdempotent(call)) {
      return backoffDelay(policy, attempt);
    }
    return undefined;
  }

  announce(call: Call, attempt: number, delaySeconds: number, status?: number, error?: unknown): void {
    this.retry.onRetry?.({ method: call.method, path: call.path, attempt: attempt + 1, delaySeconds, status, error });
  }

  private headers(call: Call): Record<string, string> {
    const headers: Record<string, string> = {
      accept: "application/json",
      "user-agent": `phantomflow-typescript/${VERSION}`,
      ...(call.headers ?? {}),
    };
    if (this.apiKey && !call.anonymous) headers["x-api-key"] = this.apiKey;
    if (call.body !== undefined) headers["content-type"] = "application/json";
    return headers;
  }

  /**
   * The answer to `call` after retries, its body unread (for streams and downloads);
   * an error answer is thrown. With `read`, the body is read inside the retries, so a
   * connection lost while reading it is retried like any other.
   */
  async open(call: Call, read = false): Promise<{ response: Response; text?: string }> {
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      let text: string | undefined;
      const timeout = call.timeoutMs ?? (read ? this.timeoutMs : undefined);
      const signals = [call.signal, timeout ? AbortSignal.timeout(timeout) : undefined].filter(
        (signal): signal is AbortSignal => signal !== undefined,
      );
      try {
        const made = call.stream?.();
        const headers = this.headers(call);
        if (made) headers["content-type"] = made.contentType;
        response = await this.fetchImpl(this.url(call), {
          method: call.method,
          headers,
          body: made ? made.body : call.body === undefined ? undefined : JSON.stringify(call.body),
          signal: signals.length ? AbortSignal.any(signals) : undefined,
          // A stream is sent as it is read (fetch wants to be told so).
          ...(made ? { duplex: "half" } : {}),
        } as RequestInit);
        if (read || response.status >= 400) text = await response.text();
      } catch (error) {
        if (call.signal?.aborted) throw error;
        const delay = this.delay(call, attempt, undefined, error);
        if (delay === undefined) {
          throw new APIConnectionError(`${call.method} ${call.path}: ${describe(error)}`, { cause: error });
        }
        this.announce(call, attempt, delay, undefined, error);
        await sleep(delay, call.signal);
        continue;
      }
      if (response.status >= 400) {
        const delay = this.delay(call, attempt, response);
        if (delay === undefined) throw errorFromResponse(response, text ?? "");
        this.announce(call, attempt, delay, response.status);
        await sleep(delay, call.signal);
        continue;
      }
      return { response, text };
    }
  }

  /** The JSON answer to `call`. */
  async json<T>(call: Call): Promise<T> {
    const { text } = await this.open(call, true);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** The text answer to `call`. */
  async text(call: Call): Promise<string> {
    const { text } = await this.open(call, true);
    return text ?? "";
  }
}

function describe(error: unknown): string {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return code ? `${message} (${code})` : message;
}

/**
 * Checking that a webhook came from PhantomFlow: the Standard Webhooks signature, with
 * Web Crypto (Node 18+, browsers, Deno, Bun, workers).
 *
 * `webhook-signature` holds one or more `v1,<base64 HMAC-SHA256>` separated by spaces
 * (two for a day after a secret is rotated); the signed content is
 * `{webhook-id}.{webhook-timestamp}.{raw body}`, keyed with the bytes that the part of
 * the secret after `whsec_` encodes in base64. Verify the raw body before parsing it.
 */

import { PhantomFlowError } from "./errors.js";

export const TOLERANCE_SECONDS = 5 * 60;

/** The request is not a genuine, recent webhook of the secret's account. */
export class WebhookVerificationError extends PhantomFlowError {}

export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

function bytesOf(body: string | ArrayBuffer | Uint8Array): Uint8Array {
  if (typeof body === "string") return new TextEncoder().encode(body);
  return body instanceof Uint8Array ? body : new Uint8Array(body);
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Compares without stopping at the first difference. */
function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/** The `v1,...` signature of a payload (what the server puts in `webhook-signature`). */
export async function signWebhook(
  secret: string,
  msgId: string,
  timestamp: number,
  body: string | ArrayBuffer | Uint8Array,
): Promise<string> {
  let key: Uint8Array<ArrayBuffer>;
  try {
    key = fromBase64(secret.replace(/^whsec_/, ""));
  } catch {
    throw new WebhookVerificationError("the secret is not a whsec_ base64 secret");
  }
  const prefix = new TextEncoder().encode(`${msgId}.${timestamp}.`);
  const payload = bytesOf(body);
  const signed = new Uint8Array(prefix.length + payload.length);
  signed.set(prefix);
  signed.set(payload, prefix.length);
  const hmac = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return `v1,${toBase64(new Uint8Array(await crypto.subtle.sign("HMAC", hmac, signed)))}`;
}

/**
 * The webhook's JSON payload if `body` was signed with `secret` within `tolerance`
 * seconds of now; throws WebhookVerificationError otherwise.
 */
export async function verifyWebhook<T = Record<string, unknown>>(
  secret: string,
  headers: WebhookHeaders,
  body: string | ArrayBuffer | Uint8Array,
  options: { toleranceSeconds?: number; now?: number } = {},
): Promise<T> {
  const msgId = header(headers, "webhook-id");
  const rawTimestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!msgId || !rawTimestamp || !signatures) {
    throw new WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature");
  }
  const timestamp = Number(rawTimestamp);
  if (!Number.isInteger(timestamp)) throw new WebhookVerificationError("webhook-timestamp is not a number");
  const now = options.now ?? Date.now() / 1000;
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? TOLERANCE_SECONDS)) {
    throw new WebhookVerificationError("webhook-timestamp is too far from now (a replay?)");
  }
  const expected = await signWebhook(secret, msgId, timestamp, body);
  if (!signatures.split(" ").some((candidate) => sameText(candidate, expected))) {
    throw new WebhookVerificationError("no signature matches");
  }
  return JSON.parse(new TextDecoder().decode(bytesOf(body))) as T;
}

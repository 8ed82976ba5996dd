/**
 * Following an event stream through disconnects, without losing or repeating an event.
 *
 * Every event's SSE `id` is its position in the server's event store. The follower
 * remembers the last one it handed on and reconnects with it as `Last-Event-ID`; the
 * server then sends exactly the events after it. An event at or before that position is
 * never handed on twice. A job stream ends after `complete` or `error`; reconnecting
 * after the end answers 204, which ends the follower too.
 */

import { APIConnectionError, PhantomFlowError } from "./errors.js";
import { EVENT_TYPES } from "./models.js";
import { backoffDelay, sleep, type Call, type Transport } from "./transport.js";

/** The server sends a keep-alive every 15 s: a minute of silence means a dead connection. */
const IDLE_MS = 60_000;

interface Message {
  event: string;
  data: string;
  id: string | undefined;
}

/** The HTML standard's event-stream parsing: feed it lines, get a message at each blank line. */
export class Decoder {
  private event = "";
  private data: string[] = [];
  private lastId: string | undefined;

  line(line: string): Message | undefined {
    if (line === "") {
      if (this.data.length === 0) {
        this.event = "";
        return undefined;
      }
      const message = { event: this.event || "message", data: this.data.join("\n"), id: this.lastId };
      this.event = "";
      this.data = [];
      return message;
    }
    if (line.startsWith(":")) return undefined; // a comment: the keep-alive
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") this.event = value;
    else if (name === "data") this.data.push(value);
    else if (name === "id" && !value.includes("\0")) this.lastId = value;
    return undefined;
  }
}

/** Lines of a byte stream (split on \r\n, \n or \r). */
async function* lines(body: ReadableStream<Uint8Array>, idleMs: number): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const idle = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new PhantomFlowError("the event stream went silent")), idleMs);
      });
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await Promise.race([reader.read(), idle]);
      } finally {
        clearTimeout(timer);
      }
      if (chunk.done) break;
      let text = pending + decoder.decode(chunk.value, { stream: true });
      // A trailing \r may be the first half of a \r\n: keep it for the next chunk.
      const carry = text.endsWith("\r") ? "\r" : "";
      if (carry) text = text.slice(0, -1);
      const parts = text.split(/\r\n|\n|\r/);
      pending = (parts.pop() ?? "") + carry;
      yield* parts;
    }
    if (pending.replace(/\r$/, "")) yield pending.replace(/\r$/, "");
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

export interface FollowOptions {
  lastEventId?: number;
  signal?: AbortSignal;
  /** The event names to hand on (others are skipped); a job's and the account's by default. */
  events?: ReadonlySet<string>;
}

/** Events of the stream at `path` from after `lastEventId`, across reconnects. */
export async function* follow(
  transport: Transport,
  path: string,
  closes: boolean,
  options: FollowOptions = {},
): AsyncGenerator<{ type: string; id: number }> {
  const names = options.events ?? EVENT_TYPES;
  let last = options.lastEventId;
  let failures = 0;
  for (;;) {
    const headers: Record<string, string> = { accept: "text/event-stream", "cache-control": "no-cache" };
    if (last !== undefined) headers["last-event-id"] = String(last);
    const call: Call = { method: "GET", path, headers, signal: options.signal };
    const { response } = await transport.open(call);
    if (response.status === 204 || !response.body) return; // the end was already seen
    try {
      const decoder = new Decoder();
      for await (const line of lines(response.body, IDLE_MS)) {
        const message = decoder.line(line);
        if (!message || message.id === undefined) continue;
        const id = Number(message.id);
        if (!Number.isInteger(id) || (last !== undefined && id <= last)) continue;
        last = id;
        if (!names.has(message.event)) continue;
        const event = { ...JSON.parse(message.data), type: message.event, id } as { type: string; id: number };
        failures = 0;
        yield event;
        if (closes && (event.type === "complete" || event.type === "error")) return;
      }
    } catch (error) {
      if (options.signal?.aborted) throw error;
      const delay = transport.delay(call, failures, undefined, error);
      if (delay === undefined) {
        throw new APIConnectionError(`event stream ${path}: ${String(error)}`, { cause: error });
      }
      transport.announce(call, failures, delay, undefined, error);
      await sleep(delay, options.signal);
      failures++;
      continue;
    }
    // The server closed the stream before the end (it is stopping, or this client fell
    // too far behind): reconnect from the last event.
    if (failures > transport.retry.maxRetries) {
      throw new APIConnectionError(`event stream ${path} keeps closing`);
    }
    if (failures > 0) await sleep(backoffDelay(transport.retry, Math.min(failures, 3)), options.signal);
    failures++;
  }
}

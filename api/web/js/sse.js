// The account's live events (GET /api/events), one stream for the whole app.
//
// Read with fetch rather than EventSource, so the credential travels in a header and
// never in a URL. After a drop it reconnects (1 s, doubling to 15 s) with
// Last-Event-ID, and the API sends every event missed in between. Before the first
// event there is no id to resume from: listeners are then told `resumed: false` and
// reload what they show.

const MAX_DELAY_MS = 15_000;

function parseBlock(block) {
  const event = { id: null, type: "message", data: [] };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") event.id = value;
    else if (field === "event") event.type = value;
    else if (field === "data") event.data.push(value);
  }
  return event;
}

export class EventFeed {
  constructor(session) {
    this.session = session;
    this.listeners = new Set();
    this.stateListeners = new Set();
    this.lastEventId = null;
    this.state = "closed";
    this.running = false;
    this.controller = null;
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onState(listener) {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  // What a page showing jobs needs: `onEvent` for every event, and `onReconnect(replayed)`
  // after every reconnection (replayed: false when the stream started afresh and the
  // page must reload what it shows). Returns the function that stops both.
  follow(onEvent, onReconnect) {
    const unsubscribe = this.subscribe(onEvent);
    const unwatch = this.onState((state, detail) => {
      if (state === "open" && !detail.first) onReconnect(detail.resumed);
    });
    return () => {
      unsubscribe();
      unwatch();
    };
  }

  setState(state, detail = {}) {
    this.state = state;
    for (const listener of this.stateListeners) listener(state, detail);
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.loop();
  }

  stop() {
    this.running = false;
    this.lastEventId = null;
    if (this.controller) this.controller.abort();
    this.setState("closed");
  }

  async loop() {
    let delay = 1000;
    let first = true;
    while (this.running) {
      this.controller = new AbortController();
      const resuming = this.lastEventId !== null;
      try {
        const headers = { ...this.session.headers(), Accept: "text/event-stream" };
        if (resuming) headers["Last-Event-ID"] = this.lastEventId;
        const response = await fetch("/api/events", {
          headers,
          cache: "no-store",
          credentials: "omit",
          signal: this.controller.signal,
        });
        if (response.status === 401) {
          this.running = false;
          this.setState("closed");
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        this.setState("open", { resumed: resuming, first });
        first = false;
        delay = 1000;
        await this.read(response.body);
      } catch {
        // dropped, refused or aborted: reconnect below unless stopped
      }
      if (!this.running) return;
      this.setState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }

  read(body) {
    return readEvents(body, (event) => {
      if (event.id !== null) this.lastEventId = event.id;
      if (event.data === null) return;
      for (const listener of this.listeners) listener(event);
    });
  }
}

// Reads a text/event-stream body to its end, calling `onEvent({id, type, data})` for
// each event (`data` parsed as JSON, or null for an event without JSON data).
export async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = parseBlock(block);
      let data = null;
      if (event.data.length) {
        try {
          data = JSON.parse(event.data.join("\n"));
        } catch {
          data = null;
        }
      }
      if (event.id !== null || data !== null) onEvent({ id: event.id, type: event.type, data });
    }
  }
}

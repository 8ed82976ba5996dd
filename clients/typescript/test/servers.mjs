// What the tests talk to besides the API: a proxy that breaks connections the way
// networks and load balancers do, and a webhook receiver. Both real servers on loopback.

import http from "node:http";
import net from "node:net";

/**
 * Forwards one request per connection to the API and, when told, answers a request
 * itself with a 5xx, loses the answer after the API has handled the request, cuts an
 * event stream after a number of events, or cuts an answer's body half way.
 */
export class FaultProxy {
  constructor(upstream) {
    this.upstream = new URL(upstream);
    this.faults = [];
    this.seen = [];
    this.server = net.createServer((socket) => this.handle(socket));
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  stop() {
    return new Promise((resolve) => this.server.close(resolve));
  }

  add(fault) {
    this.faults.push(fault);
  }

  requestsTo(method, path) {
    return this.seen.filter((seen) => seen.method === method && seen.path === path);
  }

  handle(socket) {
    let buffered = Buffer.alloc(0);
    const onData = (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      const lines = buffered.subarray(0, end).toString("latin1").split("\r\n");
      const headers = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":");
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers["content-length"] ?? 0);
      if (buffered.length < end + 4 + length) return;
      socket.off("data", onData);
      const body = buffered.subarray(end + 4, end + 4 + length);
      const [method, target] = lines[0].split(" ");
      const seen = { method, path: target.split("?")[0], headers };
      this.seen.push(seen);
      const index = this.faults.findIndex((fault) => fault.matches(seen));
      const fault = index >= 0 ? this.faults.splice(index, 1)[0] : undefined;
      this.forward(socket, lines, body, fault);
    };
    socket.on("data", onData);
    socket.on("error", () => {});
  }

  forward(socket, lines, body, fault) {
    if (fault?.status) {
      const payload = '{"error":{"code":"UPSTREAM_UNAVAILABLE","message":"proxy fault"}}';
      socket.end(
        `HTTP/1.1 ${fault.status} Proxy Fault\r\ncontent-type: application/json\r\n` +
          `content-length: ${payload.length}\r\nconnection: close\r\n\r\n${payload}`,
      );
      return;
    }
    const upstream = net.connect(Number(this.upstream.port), this.upstream.hostname);
    upstream.on("error", () => socket.destroy());
    socket.on("close", () => upstream.destroy());
    const kept = lines.slice(1).filter((line) => line && !/^connection:/i.test(line));
    upstream.write(Buffer.concat([Buffer.from([lines[0], ...kept, "Connection: close", "", ""].join("\r\n"), "latin1"), body]));
    let pending = Buffer.alloc(0);
    let events = 0;
    upstream.on("data", (chunk) => {
      if (fault?.loseAnswer) {
        socket.destroy(); // the API has handled the request; its answer is lost
        upstream.destroy();
        return;
      }
      if (fault?.cutBody) {
        // The head and half the body, then the connection drops.
        pending = Buffer.concat([pending, chunk]);
        const head = pending.indexOf("\r\n\r\n");
        const length = Number(/content-length: *(\d+)/i.exec(pending.toString("latin1"))?.[1]);
        if (head < 0 || !length) return;
        socket.write(pending.subarray(0, head + 4 + Math.floor(length / 2)));
        socket.destroy();
        upstream.destroy();
        return;
      }
      if (!fault?.cutAfterEvents) {
        socket.write(chunk);
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      let end;
      while ((end = pending.indexOf("\n\n")) >= 0) {
        end += 2;
        if (pending.subarray(end, end + 2).toString() === "\r\n") end += 2;
        const event = pending.subarray(0, end);
        pending = pending.subarray(end);
        socket.write(event);
        if (event.includes("id: ") && ++events >= fault.cutAfterEvents) {
          socket.destroy();
          upstream.destroy();
          return;
        }
      }
    });
    upstream.on("end", () => socket.end());
  }
}

/** A webhook endpoint on loopback that keeps what it receives (raw bodies). */
export class Receiver {
  constructor() {
    this.received = [];
    this.server = http.createServer((request, response) => {
      const chunks = [];
      request.on("data", (chunk) => chunks.push(chunk));
      request.on("end", () => {
        this.received.push({ headers: request.headers, body: Buffer.concat(chunks) });
        response.writeHead(204).end();
      });
    });
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}/hook`;
    return this;
  }

  async waitFor(count, timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      if (Date.now() > deadline) throw new Error(`received ${this.received.length} of ${count} webhooks`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  stop() {
    return new Promise((resolve) => this.server.close(resolve));
  }
}

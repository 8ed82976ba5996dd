// The TypeScript SDK against the live embedded server that tests/test_sdk_typescript.py
// starts: PHANTOMFLOW_URL, and PHANTOMFLOW_TEST_ACCOUNTS (accounts for each test file,
// one per test, each {api_key, test_api_key}, 1000 credits on the pro plan: see
// accounts.mjs), and PHANTOMFLOW_TIGHT_API_KEY (an account allowed one request per
// window of 2 s).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  APIConnectionError,
  APIError,
  JobFailedError,
  PhantomFlow,
  WaitTimeoutError,
  WebhookVerificationError,
  signWebhook,
  verifyWebhook,
} from "../dist/index.js";
import { TINY, URL_, accountsOf, taker } from "./accounts.mjs";
import { FaultProxy, Receiver } from "./servers.mjs";

const ACCOUNTS = accountsOf(import.meta.url);

const MANY_SCENES = { ...TINY, scenes: Array(30).fill({ duration: 0.5, background: "#202020", elements: [] }) };
const LONG = { ...TINY, scenes: [{ duration: 300, background: "#000000" }] };
const FAST = { maxRetries: 3, backoff: 0.05, maxBackoff: 0.2 };

const account = taker(ACCOUNTS);

const live = (a, extra = {}) => new PhantomFlow({ apiKey: a.api_key, baseUrl: URL_, retry: FAST, ...extra });
const sandbox = (a, extra = {}) => new PhantomFlow({ apiKey: a.test_api_key, baseUrl: URL_, retry: FAST, ...extra });
const is = (method, path) => (seen) => seen.method === method && seen.path === path;

let proxy;
before(async () => {
  proxy = await new FaultProxy(URL_).start();
});
after(() => proxy.stop());

test("render waits for the finished job, whose video downloads", async () => {
  const client = live(account());
  const events = [];
  const job = await client.render(TINY, { onEvent: (event) => events.push(event), timeout: 120 });

  assert.equal(job.status, "completed");
  assert.equal(job.credits_used, 1);
  assert.equal(events.at(-1).type, "complete");
  assert.equal(events[0].stage, "queued");
  assert.deepEqual(events.map((e) => e.id), [...new Set(events.map((e) => e.id))].sort((a, b) => a - b));
  const video = await client.jobs.download(job);
  assert.equal(video.length, job.file_size_bytes);
  assert.equal(Buffer.from(video.subarray(4, 8)).toString(), "ftyp");
  assert.equal((await client.credits.balance()).credits, 999);
});

test("a render that fails throws with the failed job, refunded", async () => {
  const client = live(account());
  const script = { ...TINY, scenes: [{ duration: 1, background: { type: "image", src: `${URL_}/nope.png` } }] };
  await assert.rejects(client.render(script, { timeout: 120 }), (error) => {
    assert.ok(error instanceof JobFailedError);
    assert.equal(error.job.error.code, "RENDER_FAILED");
    return true;
  });
  assert.equal((await client.credits.balance()).credits, 1000);
});

test("errors carry the contract's code and path", async () => {
  const client = live(account());
  await assert.rejects(client.renders.create({ ...TINY, width: "320" }), (error) => {
    assert.ok(error instanceof APIError);
    assert.equal(error.status, 400);
    assert.equal(error.code, "SCHEMA_VALIDATION_ERROR");
    assert.equal(error.path, "width");
    return true;
  });
  await assert.rejects(client.jobs.get("00000000-0000-0000-0000-000000000000"), { code: "NOT_FOUND" });
  await assert.rejects(new PhantomFlow({ apiKey: "ve_live_nope", baseUrl: URL_ }).jobs.list(), { status: 401 });
});

test("a dry run prices a script and records nothing; the account says whose key it is", async () => {
  const a = account();
  const client = live(a);
  const quote = await client.renders.quote(TINY);
  const template = await client.templates.create("Dry", TINY);
  const templateQuote = await client.templates.quote(template.id, {}, { version: 1 });
  const whose = await client.account.get();

  assert.deepEqual(quote, { valid: true, estimated_credits: 1, credits_remaining: 999, duration_seconds: 1 });
  assert.equal(templateQuote.estimated_credits, 1);
  assert.equal((await client.credits.balance()).credits, 1000);
  assert.equal((await client.jobs.list()).total, 0);
  await assert.rejects(client.renders.quote({ ...TINY, fps: 0 }), { code: "SCHEMA_VALIDATION_ERROR", path: "fps" });
  assert.equal(whose.plan, "pro");
  assert.equal(whose.key.mode, "live");
  assert.equal(whose.limits.concurrent_jobs, 10);
});

test("follow yields each progress event, then the outcome", async () => {
  const client = sandbox(account());
  const { job_id } = await client.renders.create(MANY_SCENES);
  const events = [];
  for await (const event of client.jobs.follow(job_id)) events.push(event);

  assert.deepEqual(events.slice(0, 2).map((e) => e.stage), ["queued", "starting"]);
  assert.equal(events.at(-1).type, "complete");
  const again = [];
  for await (const event of client.jobs.follow(job_id)) again.push(event);
  assert.deepEqual(again, [events.at(-1)]);
});

test("follow resumes after cut connections without losing or repeating an event", async () => {
  const a = account();
  const direct = sandbox(a);
  const { job_id } = await direct.renders.create(MANY_SCENES);
  const path = `/api/jobs/${job_id}/progress`;
  proxy.add({ matches: is("GET", path), cutAfterEvents: 3 });
  proxy.add({ matches: is("GET", path), cutAfterEvents: 5 });

  const followed = [];
  for await (const event of sandbox(a, { baseUrl: proxy.url }).jobs.follow(job_id)) followed.push(event);
  const everything = [];
  for await (const event of direct.jobs.follow(job_id, { lastEventId: 0 })) everything.push(event);

  const story = (events) => events.map((e) => [e.id, e.type, e.stage, e.progress]);
  assert.deepEqual(story(followed), story(everything));
  assert.equal(followed.at(-1).type, "complete");
  const resumedFrom = proxy.requestsTo("GET", path).map((seen) => seen.headers["last-event-id"]);
  assert.deepEqual(resumedFrom, [undefined, String(followed[2].id), String(followed[7].id)]);
});

test("a cancelled job's stream ends with its cancellation; wait gives up at its timeout", async () => {
  const client = live(account());
  const waited = await client.renders.create(LONG);
  await assert.rejects(client.jobs.wait(waited.job_id, { timeout: 0.5 }), WaitTimeoutError);
  const cancelled = await client.jobs.cancel(waited.job_id);
  const events = [];
  for await (const event of client.jobs.follow(waited.job_id)) events.push(event);

  assert.equal(cancelled.status, "cancelled");
  assert.equal(events.at(-1).type, "error");
  assert.equal(events.at(-1).code, "CANCELLED");
  await assert.rejects(client.jobs.cancel(waited.job_id), { status: 409, code: "JOB_ALREADY_FINISHED" });
});

test("a submission whose answer is lost is retried with the same key and charged once", async () => {
  const a = account();
  proxy.add({ matches: is("POST", "/api/render"), loseAnswer: true });
  const retries = [];
  const through = live(a, { baseUrl: proxy.url, retry: { ...FAST, onRetry: (r) => retries.push(r) } });
  const submission = await through.renders.create(TINY);

  const posts = proxy.requestsTo("POST", "/api/render");
  assert.equal(posts.length, 2);
  assert.equal(retries.length, 1);
  assert.equal(posts[0].headers["idempotency-key"], posts[1].headers["idempotency-key"]);
  assert.equal(submission.replayed, true);
  const client = live(a);
  assert.equal((await client.credits.ledger({ type: "charge" })).total, 1);
  await client.jobs.wait(submission.job_id, { timeout: 120 });
});

test("server errors on reads are retried; on a creation without a key they are not", async () => {
  const a = account();
  const retries = [];
  const through = live(a, { baseUrl: proxy.url, retry: { ...FAST, onRetry: (r) => retries.push(r) } });
  proxy.add({ matches: is("GET", "/api/credits"), status: 503 });
  proxy.add({ matches: is("GET", "/api/credits"), status: 502 });
  assert.equal((await through.credits.balance()).credits, 1000);
  assert.deepEqual(retries.map((r) => [r.attempt, r.status]), [[1, 503], [2, 502]]);

  proxy.add({ matches: is("POST", "/api/templates"), status: 503 });
  await assert.rejects(through.templates.create("Once", TINY), { status: 503 });
  assert.equal(proxy.requestsTo("POST", "/api/templates").length, 1);
});

test("a rate-limited call waits for Retry-After, then succeeds", async () => {
  const retries = [];
  const client = new PhantomFlow({
    apiKey: process.env.PHANTOMFLOW_TIGHT_API_KEY,
    baseUrl: URL_,
    retry: { onRetry: (r) => retries.push(r) },
  });
  await client.credits.balance();
  assert.equal((await client.credits.balance()).credits, 10);
  assert.ok(retries.length > 0 && retries.every((r) => r.status === 429));
  assert.ok(retries[0].delaySeconds > 0 && retries[0].delaySeconds <= 3);

  const impatient = new PhantomFlow({ apiKey: process.env.PHANTOMFLOW_TIGHT_API_KEY, baseUrl: URL_, retry: { maxRetryAfter: 0 } });
  await assert.rejects(
    (async () => {
      await impatient.credits.balance();
      await impatient.credits.balance();
    })(),
    (error) => error.code === "RATE_LIMIT_EXCEEDED" && error.retryAfter >= 1,
  );
});

test("a server that is not there is retried, then reported", async () => {
  const retries = [];
  const nowhere = new PhantomFlow({
    apiKey: "ve_live_x",
    baseUrl: "http://127.0.0.1:9",
    retry: { maxRetries: 2, backoff: 0.01, onRetry: (r) => retries.push(r) },
  });
  await assert.rejects(nowhere.renders.create(TINY), APIConnectionError);
  assert.equal(retries.length, 2);
});

test("paging walks every job newest first; history is the stored events", async () => {
  const client = sandbox(account());
  const submitted = [];
  for (let i = 0; i < 5; i++) submitted.push((await client.renders.create(TINY)).job_id);
  const deadline = Date.now() + 10_000;
  while ((await client.jobs.list({ limit: 1 })).total < 5 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const walked = [];
  for await (const job of client.jobs.iter({ pageSize: 2 })) walked.push(job.job_id);
  assert.deepEqual(walked, submitted.reverse());

  await client.jobs.wait(walked[0], { timeout: 30 });
  const history = await client.jobs.history(walked[0]);
  assert.match(history.events[0].type, /Submitted$/);
  assert.match(history.events.at(-1).type, /Completed$/);
});

test("templates are created, changed, versioned, rendered and deleted", async () => {
  const client = sandbox(account());
  const script = { ...TINY, scenes: [{ duration: "{{seconds}}", elements: [{ type: "text", text: "{{title}}" }] }] };
  const created = await client.templates.create("Promo", script);
  const changed = await client.templates.update(created.id, { name: "Promo 2", is_public: true });
  const detail = await client.templates.get(created.id);
  const first = await client.templates.get(created.id, { version: 1 });
  const versions = await client.templates.versions(created.id);
  const submission = await client.templates.render(created.id, { title: "Hi", seconds: 1 }, { version: 1 });
  const job = await client.jobs.wait(submission.job_id, { timeout: 30 });
  const listed = (await client.templates.list()).map((t) => t.id);
  await client.templates.delete(created.id);

  assert.deepEqual([created.version, changed.version], [1, 2]);
  assert.deepEqual(detail.variables, ["seconds", "title"]);
  assert.equal(first.name, "Promo");
  assert.deepEqual(versions.map((v) => v.version), [2, 1]);
  assert.equal(job.status, "completed");
  assert.deepEqual(listed, [created.id]);
  await assert.rejects(client.templates.get(created.id), { status: 404 });
});

test("keys are minted, listed and revoked", async () => {
  const client = live(account());
  const minted = await client.keys.create("test");
  assert.match(minted.api_key, /^ve_test_/);
  assert.ok((await client.keys.list()).some((key) => key.id === minted.id));
  await client.keys.revoke(minted.id);
  await assert.rejects(new PhantomFlow({ apiKey: minted.api_key, baseUrl: URL_ }).credits.balance(), { status: 401 });
});

test("the ledger pages, iterates and downloads as CSV; the balance replays", async () => {
  const client = live(account());
  const job = await client.render(TINY, { timeout: 120 });
  const entries = [];
  for await (const entry of client.credits.iterLedger({ pageSize: 1 })) entries.push(entry);
  const csv = await client.credits.ledgerCsv();
  const forJob = await client.credits.ledger({ jobId: job.job_id });

  assert.equal((await client.credits.balanceAt("2000-01-01T00:00:00Z")).credits, 0);
  assert.deepEqual(entries.slice(0, 2).map((e) => e.type), ["grant", "charge"]);
  assert.equal(csv.split("\n")[0], "seq,at,type,amount,balance_after,job_id,reason");
  assert.equal(csv.trim().split("\n").length, entries.length + 1);
  assert.deepEqual([...new Set(forJob.entries.map((e) => e.job_id))], [job.job_id]);
});

test("a delivered webhook verifies with Web Crypto, and is logged and redelivered", async () => {
  const client = sandbox(account());
  const receiver = await new Receiver().start();
  try {
    const { secret } = await client.webhooks.secret();
    const submission = await client.renders.create(TINY, { webhookUri: receiver.url });
    await receiver.waitFor(1);
    const { headers, body } = receiver.received[0];
    const payload = await verifyWebhook(secret, headers, body);
    assert.equal(payload.job_id, submission.job_id);
    assert.equal(payload.status, "completed");
    await assert.rejects(verifyWebhook(secret, headers, Buffer.from(body.toString().replace("completed", "failed!!!"))), WebhookVerificationError);

    await client.webhooks.redeliver(submission.job_id);
    await receiver.waitFor(2);
    // The attempt is recorded once its answer is in: a moment after the receiver has it.
    let log = await client.webhooks.deliveries(submission.job_id);
    for (let tries = 0; log.attempts.length < 2 && tries < 100; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      log = await client.webhooks.deliveries(submission.job_id);
    }
    assert.deepEqual(await verifyWebhook(secret, receiver.received[1].headers, receiver.received[1].body), payload);
    assert.deepEqual(log.attempts.map((a) => a.trigger), ["automatic", "manual"]);

    const rotated = await client.webhooks.rotateSecret();
    await client.renders.create(TINY, { webhookUri: receiver.url });
    await receiver.waitFor(3);
    const third = receiver.received[2];
    assert.deepEqual(await verifyWebhook(rotated.secret, third.headers, third.body), await verifyWebhook(secret, third.headers, third.body));
  } finally {
    await receiver.stop();
  }
});

test("webhook signatures match the Standard Webhooks construction; stale ones are refused", async () => {
  const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const body = JSON.stringify({ job_id: "j", status: "completed" });
  const now = Math.floor(Date.now() / 1000);
  const { createHmac } = await import("node:crypto");
  const reference = createHmac("sha256", Buffer.from(secret.slice(6), "base64")).update(`msg_1.${now}.${body}`).digest("base64");
  const signature = await signWebhook(secret, "msg_1", now, body);
  assert.equal(signature, `v1,${reference}`);
  const headers = new Headers({ "webhook-id": "msg_1", "webhook-timestamp": String(now), "webhook-signature": `v1,bogus ${signature}` });
  assert.deepEqual(await verifyWebhook(secret, headers, body), JSON.parse(body));
  headers.set("webhook-timestamp", String(now - 600));
  await assert.rejects(verifyWebhook(secret, headers, body), WebhookVerificationError);
});

test("the published documents are fetched", async () => {
  const client = live(account());
  assert.match((await client.schema.script()).$schema, /^https:\/\/json-schema\.org\//);
  assert.ok("/api/render" in (await client.schema.openapi()).paths);
});

test("the account stream carries every job's events", async () => {
  const client = sandbox(account());
  const first = await client.renders.create(TINY);
  await client.jobs.wait(first.job_id, { timeout: 30 });
  let after;
  for await (const event of client.jobs.follow(first.job_id, { lastEventId: 0 })) after = event.id;
  const second = await client.renders.create(TINY);
  const seen = [];
  for await (const event of client.events.follow({ lastEventId: after })) {
    seen.push(event);
    if (event.type === "complete" && event.jobId === second.job_id) break;
  }
  assert.deepEqual([...new Set(seen.map((e) => e.jobId))], [second.job_id]);
});

test("an asset's download cut half way starts again and arrives whole", async () => {
  const a = account();
  const png = new Uint8Array(Buffer.from(process.env.PHANTOMFLOW_TEST_PNG ?? "", "base64"));
  const [asset] = await live(a).assets.upload([{ name: "logo.png", data: png }]);
  const path = `/api/assets/${asset.id}/content`;
  proxy.add({ matches: is("GET", path), cutBody: true });
  const retries = [];
  const through = live(a, { baseUrl: proxy.url, retry: { ...FAST, onRetry: (r) => retries.push(r) } });

  const bytes = await through.assets.download(asset);

  assert.deepEqual(bytes, png);
  assert.equal(proxy.requestsTo("GET", path).length, 2);
  assert.equal(retries.length, 1);
});

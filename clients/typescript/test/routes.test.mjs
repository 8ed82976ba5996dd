// The TypeScript SDK's newer parts against the live embedded server (see accounts.mjs):
// integrations, metadata and exports on renders, dry runs, deleting a job's files,
// previews; and every operation of the API's table has its method
// (PHANTOMFLOW_SDK_METHODS, from tests/sdk_operations.py).

import assert from "node:assert/strict";
import { test } from "node:test";

import { APIError, EVENT_TYPES, PREVIEW_EVENT_TYPES, PhantomFlow } from "../dist/index.js";
import { TINY, URL_, accountsOf, taker } from "./accounts.mjs";

const ACCOUNTS = accountsOf(import.meta.url);
const TWO_SCENES = { ...TINY, scenes: [{ duration: 1, background: "#FF0000" }, { duration: 1, background: "#0000FF" }] };
const EMAIL = { host: "smtp.example.com", from_address: "renders@example.com" };

const account = taker(ACCOUNTS);
const live = (a) => new PhantomFlow({ apiKey: a.api_key, baseUrl: URL_ });
const sandbox = (a) => new PhantomFlow({ apiKey: a.test_api_key, baseUrl: URL_ });

/** The ids `jobs.list` finds by metadata once the read model has caught up (it may lag). */
async function listedByMetadata(client, metadata) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const found = (await client.jobs.list({ metadata })).jobs.map((job) => job.job_id);
    if (found.length || Date.now() > deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test("every operation of the API has its method on the client", () => {
  const methods = JSON.parse(process.env.PHANTOMFLOW_SDK_METHODS ?? "{}");
  const client = new PhantomFlow({ apiKey: "key", baseUrl: URL_ });
  assert.ok(Object.keys(methods).length > 30);
  for (const [operation, path] of Object.entries(methods)) {
    const [part, name] = path.split(".");
    assert.equal(typeof client[part]?.[name], "function", `${operation}: client.${path}`);
  }
});

test("every event of the served streams is one the client hands on", async () => {
  const schemas = (await new PhantomFlow({ apiKey: "key", baseUrl: URL_ }).schema.openapi()).components.schemas;
  const names = (stream) => Object.keys(schemas[stream].discriminator.mapping).sort();

  assert.deepEqual([...new Set([...names("JobStreamEvent"), ...names("AccountStreamEvent")])].sort(), [...EVENT_TYPES].sort());
  assert.deepEqual(names("PreviewStreamEvent"), [...PREVIEW_EVENT_TYPES].sort());
});

test("integrations are stored, shown without their secrets, and deleted", async () => {
  const client = live(account());
  const secret = "a-long-smtp-password-6789";
  const created = await client.integrations.create({
    type: "email",
    name: "Mail",
    settings: { ...EMAIL, username: "me" },
    secrets: { password: secret },
  });
  const got = await client.integrations.get(created.id);
  const listed = (await client.integrations.list()).map((integration) => integration.id);
  const deleted = await client.integrations.delete(created.id);

  assert.match(created.id, /^int_[0-9a-f]{32}$/);
  assert.deepEqual(got.secrets.password, { set: true, last4: "6789" });
  assert.ok(!JSON.stringify(got).includes(secret));
  assert.ok(listed.includes(created.id) && deleted.deleted);
  await assert.rejects(client.integrations.get(created.id), (error) => error instanceof APIError && error.status === 404);
});

test("metadata and exports travel with the job, and find it", async () => {
  const client = sandbox(account());
  const mail = await client.integrations.create({ type: "email", name: "Mail", settings: EMAIL });
  const exports = [{ type: "email", integration_id: mail.id, to: ["a@example.com"] }];
  const events = [];
  const job = await client.render(TINY, {
    metadata: { order: 42 },
    exports,
    onEvent: (event) => events.push(event),
    timeout: 60,
  });
  await client.render(TINY, { metadata: { order: 7 }, timeout: 60 });

  assert.deepEqual(job.metadata, { order: 42 });
  assert.deepEqual(job.exports.map((e) => e.type), ["email"]);
  assert.deepEqual(events.at(-1).metadata, { order: 42 });
  assert.deepEqual(await listedByMetadata(client, { order: 42 }), [job.job_id]);
  assert.throws(() => client.jobs.list({ metadata: { a: 1, b: 2 } }), /one metadata key/);
});

test("following with exports goes on until they settle", async () => {
  const client = sandbox(account());
  const mail = await client.integrations.create({ type: "email", name: "Mail", settings: EMAIL });
  const exports = [{ type: "email", integration_id: mail.id, to: ["a@example.com"] }];
  const submission = await client.renders.create(TINY, { exports });
  const events = [];
  const job = await client.jobs.wait(submission.job_id, { exports: true, onEvent: (e) => events.push(e), timeout: 60 });

  assert.ok(events.some((event) => event.type === "complete"));
  assert.equal(events.at(-1).type, "export");
  assert.equal(events.at(-1).status, "skipped");
  assert.equal(job.exports[0].status, "skipped");
  assert.equal(job.exports[0].error.code, "SANDBOX_SKIPPED");
});

test("a dry run with an unknown integration is refused; one without prices and records nothing", async () => {
  const client = live(account());
  const exports = [{ type: "email", integration_id: `int_${"0".repeat(32)}`, to: ["a@example.com"] }];
  await assert.rejects(
    client.renders.quote(TINY, { exports }),
    (error) => error instanceof APIError && error.path === "exports.0.integration_id",
  );
  const quote = await client.renders.quote(TINY, { metadata: { order: 1 } });

  assert.equal(quote.valid, true);
  assert.equal(quote.estimated_credits, 1);
  assert.equal((await client.credits.balance()).credits, 1000);
});

test("deleting a job's output keeps the job; its link then answers 410", async () => {
  const client = live(account());
  const job = await client.render(TINY, { timeout: 120 });
  const deleted = await client.jobs.deleteOutput(job);
  const after = await client.jobs.get(job);

  assert.equal(deleted.deleted, true);
  assert.equal(after.status, "completed");
  assert.equal(after.output_deleted_at, deleted.output_deleted_at);
  await assert.rejects(
    client.jobs.download(job),
    (error) => error instanceof APIError && error.status === 410 && error.code === "OUTPUT_DELETED",
  );
});

test("a preview is drawn, watched, priced, rendered and deleted", async () => {
  const client = live(account());
  const created = await client.previews.create(TWO_SCENES, { metadata: { draft: true } });
  const events = [];
  const preview = await client.previews.wait(created, { onEvent: (event) => events.push(event), timeout: 120 });
  const proxy = await client.previews.download(preview);
  const page = await client.previews.page(preview);
  const quote = await client.previews.quote(preview);
  const submission = await client.previews.render(preview, { metadata: { draft: false } });
  const job = await client.jobs.wait(submission.job_id, { timeout: 120 });
  await client.previews.delete(preview);

  assert.equal(created.status, "queued");
  assert.equal(preview.status, "completed");
  assert.equal(events.at(-1).type, "complete");
  assert.equal(events.at(-1).proxyUri, preview.proxy_uri);
  assert.ok(events.some((event) => event.type === "storyboard"));
  assert.deepEqual(preview.storyboard.map((frame) => frame.kind), ["scene", "scene"]);
  assert.equal(new TextDecoder().decode(proxy.subarray(4, 8)), "ftyp");
  assert.ok(page.includes("<video"));
  assert.equal(quote.estimated_credits, preview.estimated_credits);
  assert.deepEqual(job.metadata, { draft: false });
  assert.equal((await client.credits.balance()).credits, 1000 - quote.estimated_credits);
  await assert.rejects(client.previews.get(preview), (error) => error instanceof APIError && error.status === 404);
});

test("a template is previewed with its variables, and PUT changes it", async () => {
  const client = sandbox(account());
  const script = { ...TINY, scenes: [{ duration: "{{seconds}}", background: "#00FF00" }] };
  const template = await client.templates.create("Teaser", script);
  const replaced = await client.templates.replace(template.id, { name: "Teaser 2" });
  const preview = await client.previews.createFromTemplate(template.id, { seconds: 2 });

  assert.equal(replaced.version, 2);
  assert.equal(preview.duration_seconds, 2);
  assert.equal(preview.origin.template_id, template.id);
  await client.previews.delete(preview);
});

test("assets upload with progress, list, download and delete", async () => {
  const client = live(account());
  const png = new Uint8Array(Buffer.from(process.env.PHANTOMFLOW_TEST_PNG ?? "", "base64"));
  assert.ok(png.length > 0, "tests/test_sdk_typescript.py passes a PNG");
  const progress = [];
  const [asset] = await client.assets.upload([{ name: "logo.png", data: png }], {
    onProgress: (sent, total) => progress.push([sent, total]),
  });
  const page = await client.assets.list({ type: "image" });
  const bytes = await client.assets.download(asset);
  await assert.rejects(
    client.assets.upload([{ name: "notes.mp4", data: new TextEncoder().encode("just words\n") }]),
    (error) => error instanceof APIError && error.code === "UNSUPPORTED_FILE_TYPE",
  );
  const deleted = await client.assets.delete(asset);

  assert.match(asset.id, /^asset_/);
  assert.equal(asset.type, "image");
  assert.deepEqual(progress.at(-1), [png.length, png.length]);
  assert.deepEqual(page.assets.map((a) => a.id), [asset.id]);
  assert.deepEqual(bytes, png);
  assert.equal(deleted.deleted, true);
  await assert.rejects(client.assets.get(asset), (error) => error instanceof APIError && error.status === 404);
});

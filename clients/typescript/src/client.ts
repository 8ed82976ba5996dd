/** The client: one property per part of the API. */

import { JobFailedError } from "./errors.js";
import type { Job, JobEvent, Script, Submission } from "./models.js";
import type { SubmitOptions } from "./resources/renders.js";
import { Accounts } from "./resources/account.js";
import { Assets } from "./resources/assets.js";
import { Credits } from "./resources/credits.js";
import { Events } from "./resources/events.js";
import { Jobs } from "./resources/jobs.js";
import { Integrations } from "./resources/integrations.js";
import { Keys } from "./resources/keys.js";
import { Previews } from "./resources/previews.js";
import { Renders } from "./resources/renders.js";
import { Schema } from "./resources/schema.js";
import { Templates } from "./resources/templates.js";
import { Webhooks } from "./resources/webhooks.js";
import { DEFAULT_RETRY, DEFAULT_URL, Transport, type RetryPolicy } from "./transport.js";

export interface ClientOptions {
  /** Defaults to PHANTOMFLOW_API_KEY where there is an environment (Node, Deno, Bun). */
  apiKey?: string;
  /** Defaults to PHANTOMFLOW_URL, else http://127.0.0.1:8080. */
  baseUrl?: string;
  retry?: Partial<RetryPolicy>;
  /** Milliseconds before a request (not a stream) is given up; default 30 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface RenderOptions extends SubmitOptions {
  /** Seconds to wait for the end; the job goes on after it. */
  timeout?: number;
  onEvent?: (event: JobEvent) => void | Promise<void>;
  signal?: AbortSignal;
}

function environment(name: string): string | undefined {
  const process = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return process?.env?.[name] || undefined;
}

export class PhantomFlow {
  readonly renders: Renders;
  readonly jobs: Jobs;
  readonly events: Events;
  readonly templates: Templates;
  readonly keys: Keys;
  readonly account: Accounts;
  readonly credits: Credits;
  readonly webhooks: Webhooks;
  readonly schema: Schema;
  readonly integrations: Integrations;
  readonly previews: Previews;
  readonly assets: Assets;
  readonly baseUrl: string;

  constructor(options: ClientOptions = {}) {
    const transport = new Transport({
      baseUrl: options.baseUrl ?? environment("PHANTOMFLOW_URL") ?? DEFAULT_URL,
      apiKey: options.apiKey ?? environment("PHANTOMFLOW_API_KEY"),
      retry: { ...DEFAULT_RETRY, ...options.retry },
      timeoutMs: options.timeoutMs ?? 30_000,
      fetch: options.fetch,
    });
    this.baseUrl = transport.baseUrl;
    this.renders = new Renders(transport);
    this.jobs = new Jobs(transport);
    this.events = new Events(transport);
    this.templates = new Templates(transport);
    this.keys = new Keys(transport);
    this.account = new Accounts(transport);
    this.credits = new Credits(transport);
    this.webhooks = new Webhooks(transport);
    this.schema = new Schema(transport);
    this.integrations = new Integrations(transport);
    this.previews = new Previews(transport);
    this.assets = new Assets(transport);
  }

  /**
   * Submit `script`, follow the job over SSE and return it completed; throws
   * JobFailedError (failed or cancelled) or WaitTimeoutError.
   */
  render(script: Script, options?: RenderOptions & { wait?: true }): Promise<Job>;
  /** Submit `script` and return the submission at once. */
  render(script: Script, options: RenderOptions & { wait: false }): Promise<Submission>;
  async render(script: Script, options: RenderOptions & { wait?: boolean } = {}): Promise<Job | Submission> {
    const submission = await this.renders.create(script, {
      webhookUri: options.webhookUri,
      metadata: options.metadata,
      exports: options.exports,
      idempotencyKey: options.idempotencyKey,
    });
    if (options.wait === false) return submission;
    const job = await this.jobs.wait(submission.job_id, {
      timeout: options.timeout,
      onEvent: options.onEvent,
      signal: options.signal,
    });
    if (job.status !== "completed") throw new JobFailedError(job);
    return job;
  }
}

/** Jobs: list and page through them, read one, its history, cancel it, follow it live,
 * wait for it, and download its video. */

import { PhantomFlowError, WaitTimeoutError } from "../errors.js";
import type { Cancellation, CompleteEvent, Job, JobEvent, JobHistory, JobPage, JobStatus } from "../models.js";
import { follow } from "../sse.js";
import { Resource, encode } from "./base.js";

export type JobRef = string | Pick<Job, "job_id">;

function idOf(job: JobRef): string {
  return typeof job === "string" ? job : job.job_id;
}

export interface ListOptions {
  page?: number;
  limit?: number;
  status?: JobStatus;
}

export interface WaitOptions {
  /** Seconds; the job goes on running after it. */
  timeout?: number;
  onEvent?: (event: JobEvent) => void | Promise<void>;
  signal?: AbortSignal;
}

export class Jobs extends Resource {
  /** One page of the account's jobs, newest first. */
  list(options: ListOptions = {}): Promise<JobPage> {
    return this.transport.json({
      method: "GET",
      path: "/api/jobs",
      query: { page: options.page, limit: options.limit, status: options.status },
    });
  }

  /**
   * Every job, newest first, fetching pages as it goes. Jobs submitted meanwhile shift
   * the pages; a job already handed on is skipped rather than repeated.
   */
  async *iter(options: { status?: JobStatus; pageSize?: number } = {}): AsyncGenerator<Job> {
    const pageSize = options.pageSize ?? 100;
    const seen = new Set<string>();
    for (let page = 1; ; page++) {
      const found = await this.list({ page, limit: pageSize, status: options.status });
      for (const job of found.jobs) {
        if (seen.has(job.job_id)) continue;
        seen.add(job.job_id);
        yield job;
      }
      if (found.jobs.length === 0 || page * pageSize >= found.total) return;
    }
  }

  get(job: JobRef): Promise<Job> {
    return this.transport.json({ method: "GET", path: `/api/jobs/${encode(idOf(job))}` });
  }

  /** Every event of the job as stored (the audit view). */
  history(job: JobRef): Promise<JobHistory> {
    return this.transport.json({ method: "GET", path: `/api/jobs/${encode(idOf(job))}/events` });
  }

  cancel(job: JobRef): Promise<Cancellation> {
    // Cancelling twice is harmless (the second answers 409): a lost answer may be retried.
    return this.transport.json({
      method: "POST",
      path: `/api/jobs/${encode(idOf(job))}/cancel`,
      idempotent: true,
    });
  }

  /**
   * The job's progress events as they happen, over SSE, until `complete` or `error`.
   * Reconnects after a dropped connection from the last event seen.
   */
  follow(job: JobRef, options: { lastEventId?: number; signal?: AbortSignal } = {}): AsyncGenerator<JobEvent> {
    return follow(this.transport, `/api/jobs/${encode(idOf(job))}/progress`, true, options) as AsyncGenerator<JobEvent>;
  }

  /** Follow the job to its end; the job as it ended (completed, failed or cancelled). */
  async wait(job: JobRef, options: WaitOptions = {}): Promise<Job> {
    const timeout = options.timeout;
    const signals = [options.signal, timeout === undefined ? undefined : AbortSignal.timeout(timeout * 1000)];
    const live = signals.filter((signal): signal is AbortSignal => signal !== undefined);
    const signal = live.length ? AbortSignal.any(live) : undefined;
    try {
      for await (const event of this.follow(job, { signal })) {
        await options.onEvent?.(event);
      }
    } catch (error) {
      if (timeout !== undefined && signal?.aborted && !options.signal?.aborted) {
        throw new WaitTimeoutError(idOf(job), timeout);
      }
      throw error;
    }
    return this.get(job);
  }

  /** The job's MP4 as a stream (`job` may be its id, the Job, or its complete event). */
  async downloadStream(job: JobRef | CompleteEvent): Promise<ReadableStream<Uint8Array>> {
    const url = await this.outputOf(job);
    const { response } = await this.transport.open({ method: "GET", path: url, anonymous: true });
    if (!response.body) throw new PhantomFlowError(`no body at ${url}`);
    return response.body;
  }

  /** The job's MP4, whole. */
  async download(job: JobRef | CompleteEvent): Promise<Uint8Array> {
    const url = await this.outputOf(job);
    for (let attempt = 0; ; attempt++) {
      const { response } = await this.transport.open({ method: "GET", path: url, anonymous: true });
      try {
        return new Uint8Array(await response.arrayBuffer());
      } catch (error) {
        // The transfer broke off: start again, within the retries.
        const call = { method: "GET", path: url };
        const delay = this.transport.delay(call, attempt, undefined, error);
        if (delay === undefined) throw error;
        this.transport.announce(call, attempt, delay, undefined, error);
      }
    }
  }

  private async outputOf(job: JobRef | CompleteEvent): Promise<string> {
    if (typeof job !== "string" && "outputUri" in job) return job.outputUri;
    const known = typeof job !== "string" && "output_uri" in job ? (job as Job) : await this.get(job);
    if (known.status !== "completed" || !known.output_uri) {
      throw new PhantomFlowError(`job ${known.job_id} has no video (${known.status})`);
    }
    return known.output_uri;
  }
}

/** Jobs: list and page through them (by status, or by one key of their metadata), read
 * one, its history, cancel it, follow it live, wait for it, download its video, and delete
 * its files. */

import { PhantomFlowError } from "../errors.js";
import type {
  Cancellation,
  CompleteEvent,
  DeletedOutput,
  Job,
  JobEvent,
  JobHistory,
  JobPage,
  JobStatus,
} from "../models.js";
import { follow } from "../sse.js";
import { Resource, downloadWhole, drain, encode } from "./base.js";

export type JobRef = string | Pick<Job, "job_id">;

function idOf(job: JobRef): string {
  return typeof job === "string" ? job : job.job_id;
}

/** One metadata key and the value to find (a number or boolean as JSON writes it). */
export type MetadataFilter = Record<string, string | number | boolean>;

export interface ListOptions {
  page?: number;
  limit?: number;
  status?: JobStatus;
  /** `{order: 42}`: only the jobs whose metadata has that key with that value (one key). */
  metadata?: MetadataFilter;
}

function metadataQuery(metadata?: MetadataFilter): Record<string, string> {
  const entries = Object.entries(metadata ?? {});
  if (entries.length > 1) throw new PhantomFlowError("jobs are listed by one metadata key at a time");
  return Object.fromEntries(entries.map(([key, value]) => [`metadata.${key}`, String(value)]));
}

export interface WaitOptions {
  /** Seconds; the job goes on running after it. */
  timeout?: number;
  /** Go on past the outcome until every export has settled. */
  exports?: boolean;
  onEvent?: (event: JobEvent) => void | Promise<void>;
  signal?: AbortSignal;
}

export class Jobs extends Resource {
  /** One page of the account's jobs, newest first. */
  list(options: ListOptions = {}): Promise<JobPage> {
    return this.transport.json({
      method: "GET",
      path: "/api/jobs",
      query: { page: options.page, limit: options.limit, status: options.status, ...metadataQuery(options.metadata) },
    });
  }

  /**
   * Every job, newest first, fetching pages as it goes. Jobs submitted meanwhile shift
   * the pages; a job already handed on is skipped rather than repeated.
   */
  async *iter(
    options: { status?: JobStatus; metadata?: MetadataFilter; pageSize?: number } = {},
  ): AsyncGenerator<Job> {
    const pageSize = options.pageSize ?? 100;
    const seen = new Set<string>();
    for (let page = 1; ; page++) {
      const found = await this.list({ page, limit: pageSize, status: options.status, metadata: options.metadata });
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
   * Delete a completed job's MP4 and poster; the job and its charge stay, and its
   * output_uri then answers 410 (OUTPUT_DELETED). Asking again answers the same.
   */
  deleteOutput(job: JobRef): Promise<DeletedOutput> {
    return this.transport.json({ method: "DELETE", path: `/api/jobs/${encode(idOf(job))}/output` });
  }

  /**
   * The job's progress events as they happen, over SSE, until `complete` or `error`;
   * with `exports`, on past `complete` with each `export` event until the last export
   * has settled (the server then ends the stream). Reconnects after a dropped
   * connection from the last event seen.
   */
  follow(
    job: JobRef,
    options: { lastEventId?: number; signal?: AbortSignal; exports?: boolean } = {},
  ): AsyncGenerator<JobEvent> {
    const path = `/api/jobs/${encode(idOf(job))}/progress`;
    return follow(this.transport, path, !options.exports, options) as AsyncGenerator<JobEvent>;
  }

  /** Follow the job to its end; the job as it ended (completed, failed or cancelled). */
  async wait(job: JobRef, options: WaitOptions = {}): Promise<Job> {
    await drain((signal) => this.follow(job, { signal, exports: options.exports }), idOf(job), options);
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
    return downloadWhole(this.transport, await this.outputOf(job));
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

/**
 * The shapes the API answers, with the API's own field names (snake_case in JSON
 * bodies, camelCase in the data of the event stream, as the contract has them).
 */

export type JobStatus = "queued" | "processing" | "completed" | "failed" | "cancelled";
export const FINAL_STATUSES: ReadonlySet<string> = new Set(["completed", "failed", "cancelled"]);

/** A movie script, the body of POST /api/render (see `client.schema.script()`). */
export type Script = Record<string, unknown>;

export interface Submission {
  job_id: string;
  status: string;
  estimated_credits: number;
  credits_remaining: number;
  /** The answer to an earlier request with the same Idempotency-Key. */
  replayed: boolean;
}

/** A dry run's answer: valid, and what the render would cost and leave; nothing recorded. */
export interface Quote {
  valid: boolean;
  estimated_credits: number;
  credits_remaining: number;
  duration_seconds: number;
}

export interface JobError {
  code: string;
  message: string;
}

export interface Job {
  job_id: string;
  status: JobStatus;
  progress: number;
  stage: string | null;
  output_uri: string | null;
  poster_uri: string | null;
  duration_seconds: number | null;
  file_size_bytes: number | null;
  estimated_credits: number;
  credits_used: number | null;
  error: JobError | null;
  webhook_uri: string | null;
  sandbox: boolean;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  updated_at: string | null;
  [field: string]: unknown;
}

export interface JobPage {
  jobs: Job[];
  total: number;
  page: number;
  limit: number;
}

export interface StoredEvent {
  type: string;
  at: string;
  version: number;
  data: Record<string, unknown>;
}

export interface JobHistory {
  job_id: string;
  events: StoredEvent[];
}

export interface Cancellation {
  job_id: string;
  status: string;
  credits_used: number | null;
  credits_refunded: number;
}

/** `progress`: how far the render is, and in which stage. */
export interface ProgressEvent {
  type: "progress";
  id: number;
  progress: number;
  stage: string;
  timestamp: string;
  jobId?: string;
}

/** `complete`: the video is ready. */
export interface CompleteEvent {
  type: "complete";
  id: number;
  outputUri: string;
  creditsUsed: number;
  durationSeconds: number;
  fileSizeBytes: number | null;
  jobId?: string;
  timestamp?: string;
}

/** `error`: the job failed, or was cancelled (code `CANCELLED`). */
export interface ErrorEvent {
  type: "error";
  id: number;
  code: string;
  message: string;
  jobId?: string;
  timestamp?: string;
}

/** `webhook` (account stream only): one attempt to deliver a job's webhook. */
export interface WebhookEvent {
  type: "webhook";
  id: number;
  jobId: string;
  attempt: number;
  trigger: string;
  statusCode: number | null;
  error: string | null;
  durationMs: number | null;
  delivered: boolean;
  timestamp: string;
}

export type JobEvent = ProgressEvent | CompleteEvent | ErrorEvent;
export type AccountEvent = JobEvent | WebhookEvent;
export const EVENT_TYPES: ReadonlySet<string> = new Set(["progress", "complete", "error", "webhook"]);

export interface TemplateSummary {
  id: string;
  name: string;
  is_public: boolean;
  version: number;
  created_at?: string;
  updated_at: string;
}

export interface Template extends TemplateSummary {
  script: Script;
  variables: string[];
}

export interface TemplateVersion {
  version: number;
  name: string;
  is_public: boolean;
  changed: string[];
  created_at: string;
}

export type Variables = Record<string, string | number | boolean>;

export interface ApiKey {
  id: string;
  prefix: string;
  mode: "live" | "test";
  revoked: boolean;
}

/** A key just minted: `api_key` is its secret, shown this once. */
export interface NewApiKey {
  id: string;
  api_key: string;
  prefix: string;
  mode: "live" | "test";
}

/** Who the key belongs to: the account, its plan and limits, and the key itself. */
export interface Account {
  account_id: string;
  plan: string;
  limits: { requests_per_minute: number; concurrent_jobs: number };
  active_jobs: number;
  credits: number;
  key: { prefix: string; mode: "live" | "test" };
}

export interface Balance {
  credits: number;
  currency: string;
}

export interface BalanceAt extends Balance {
  at: string;
  account_version: number | null;
}

export interface LedgerEntry {
  seq: number;
  at: string;
  type: string;
  amount: number;
  balance_after: number;
  job_id: string | null;
  reason: string | null;
}

export interface LedgerPage {
  entries: LedgerEntry[];
  totals: Record<string, number>;
  total: number;
  page: number;
  limit: number;
}

export interface WebhookAttempt {
  attempt: number;
  trigger: string;
  url: string;
  status_code: number | null;
  error: string | null;
  duration_ms: number | null;
  delivered: boolean;
  response_excerpt: string | null;
  attempted_at: string;
  next_attempt_at: string | null;
}

export interface WebhookLog {
  job_id: string;
  webhook_uri: string | null;
  webhook_id: string;
  status: string;
  attempts: WebhookAttempt[];
}

export interface Redelivery {
  job_id: string;
  redelivery: number;
  status: string;
}

export interface WebhookSecret {
  secret: string;
  previous_secret_expires_at?: string;
}

/**
 * The shapes the API answers, with the API's own field names (snake_case in JSON
 * bodies, camelCase in the data of the event stream, as the contract has them).
 */

export type JobStatus = "queued" | "processing" | "completed" | "failed" | "cancelled";
export const FINAL_STATUSES: ReadonlySet<string> = new Set(["completed", "failed", "cancelled"]);

/** A movie script, the body of POST /api/render (see `client.schema.script()`). */
export type Script = Record<string, unknown>;

/** Your own JSON object, kept with the job and sent back with it (docs/api.md, "Metadata"). */
export type Metadata = Record<string, unknown>;

/**
 * An export target: where the video goes once rendered, naming one of your
 * integrations of the same type, with that type's fields (docs/api.md, "Exports").
 */
export interface ExportTarget {
  type: "s3" | "ftp" | "sftp" | "email" | "youtube";
  integration_id: string;
  filename?: string;
  [field: string]: unknown;
}

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

/** One export of a job and where it stands. */
export interface JobExport {
  type: string;
  integration_id: string;
  status: "pending" | "running" | "succeeded" | "failed" | "skipped";
  location: string | null;
  attempts: number;
  error: JobError | null;
  next_attempt_at: string | null;
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
  metadata: Metadata;
  exports: JobExport[];
  output_deleted_at: string | null;
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

/** `DELETE /api/jobs/{id}/output`: the job's files are gone; the job stays. */
export interface DeletedOutput {
  job_id: string;
  deleted: true;
  output_deleted_at: string;
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
  metadata?: Metadata;
  jobId?: string;
  timestamp?: string;
}

/** `error`: the job failed, or was cancelled (code `CANCELLED`). */
export interface ErrorEvent {
  type: "error";
  id: number;
  code: string;
  message: string;
  metadata?: Metadata;
  jobId?: string;
  timestamp?: string;
}

/** `export` (a job with exports): one export changed; `index` is its place in `exports`. */
export interface ExportEvent {
  type: "export";
  id: number;
  index: number;
  status: string;
  attempt?: number;
  location?: string | null;
  bytes?: number | null;
  durationMs?: number | null;
  error?: JobError | null;
  final?: boolean;
  nextAttemptAt?: string | null;
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

export type JobEvent = ProgressEvent | CompleteEvent | ErrorEvent | ExportEvent;
export type AccountEvent = ProgressEvent | CompleteEvent | ErrorEvent | WebhookEvent;
/** The events a job's or the account's stream hands on, by name. */
export const EVENT_TYPES: ReadonlySet<string> = new Set(["progress", "complete", "error", "export", "webhook"]);

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

/** Stored credentials of an export destination; secrets are never shown, only whether set. */
export interface Integration {
  id: string;
  type: "s3" | "ftp" | "sftp" | "email" | "youtube";
  name: string;
  settings: Record<string, unknown>;
  secrets: Record<string, { set: true; last4: string | null }>;
  created_at: string;
}

export interface NewIntegration {
  type: Integration["type"];
  name: string;
  settings: Record<string, unknown>;
  secrets?: Record<string, string>;
}

export interface DeletedIntegration {
  id: string;
  deleted: true;
}

/** One picture of a preview's storyboard: a scene at its middle, or a transition. */
export interface StoryboardFrame {
  scene: number;
  kind: "scene" | "transition";
  time: number;
  image_uri: string;
}

/** A free look at a script: storyboard, proxy video and viewer page (docs/api.md, "Previews"). */
export interface Preview {
  preview_id: string;
  status: "queued" | "processing" | "completed" | "failed" | "expired";
  progress: number;
  stage: string | null;
  storyboard: StoryboardFrame[];
  proxy_uri: string | null;
  proxy: { duration_seconds: number; width: number; height: number; fps: number; file_size_bytes: number } | null;
  viewer_url: string;
  duration_seconds: number;
  estimated_credits: number;
  error: JobError | null;
  metadata: Metadata;
  sandbox: boolean;
  origin: Record<string, unknown>;
  created_at: string;
  expires_at: string;
}

export interface DeletedPreview {
  preview_id: string;
  deleted: true;
}

/** `storyboard` (a preview's stream): its frames are drawn, before the proxy. */
export interface StoryboardEvent {
  type: "storyboard";
  id: number;
  storyboard: { scene: number; kind: "scene" | "transition"; time: number; imageUri: string }[];
  timestamp: string;
}

/** `complete` (a preview's stream): the proxy is drawn. */
export interface PreviewCompleteEvent {
  type: "complete";
  id: number;
  proxyUri: string;
  viewerUrl: string;
  durationSeconds: number;
  width: number;
  height: number;
  fps: number;
  fileSizeBytes: number;
}

export type PreviewEvent = ProgressEvent | StoryboardEvent | PreviewCompleteEvent | ErrorEvent;
/** The events a preview's stream hands on, by name. */
export const PREVIEW_EVENT_TYPES: ReadonlySet<string> = new Set(["progress", "storyboard", "complete", "error"]);

/** An uploaded file of your media library, named in scripts by its id. */
export interface Asset {
  id: string;
  name: string;
  type: "image" | "video" | "audio" | "font";
  mime_type: string;
  size: number;
  sha256: string;
  width: number | null;
  height: number | null;
  duration_seconds: number | null;
  created_at: string;
  /** Its file, read with your key (`assets.download`). */
  url: string;
}

export interface AssetPage {
  assets: Asset[];
  total: number;
  page: number;
  limit: number;
  storage: { used_bytes: number; limit_bytes: number };
}

export interface DeletedAsset {
  id: string;
  deleted: true;
}

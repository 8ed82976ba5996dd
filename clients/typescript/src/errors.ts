/**
 * What can go wrong, as exceptions. Every API error keeps the contract's fields:
 * `{"error": {"code", "message", "path"?, ...}}`.
 */

/** Base of every error this client throws. */
export class PhantomFlowError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** No answer from the server (refused, reset, timed out) after every retry. */
export class APIConnectionError extends PhantomFlowError {}

/** An error answer from the API. */
export class APIError extends PhantomFlowError {
  readonly status: number;
  readonly code: string;
  readonly path: string | undefined;
  /** Every other field of the error object (`required`, `balance`, `limit`, ...). */
  readonly details: Record<string, unknown>;
  readonly requestId: string | undefined;
  readonly headers: Headers;

  constructor(
    status: number,
    code: string,
    message: string,
    path: string | undefined,
    details: Record<string, unknown>,
    headers: Headers,
  ) {
    super(`${status} ${code}${path ? ` at '${path}'` : ""}: ${message}`);
    this.status = status;
    this.code = code;
    this.path = path;
    this.details = details;
    this.headers = headers;
    this.requestId = headers.get("x-request-id") ?? undefined;
    this.apiMessage = message;
  }

  /** The server's own message, without the status and code. */
  readonly apiMessage: string;

  /** `Retry-After` in seconds, when the answer has one. */
  get retryAfter(): number | undefined {
    return retryAfterSeconds(this.headers);
  }
}

/** A waited-for job ended without a video: failed or cancelled. */
export class JobFailedError extends PhantomFlowError {
  constructor(readonly job: { job_id: string; status: string; error?: { code: string; message: string } | null }) {
    const reason = job.error ? `${job.error.code}: ${job.error.message}` : job.status;
    super(`job ${job.job_id} ${job.status}: ${reason}`);
  }
}

/** A job did not end within the time it was waited for (it goes on running). */
export class WaitTimeoutError extends PhantomFlowError {
  constructor(readonly jobId: string, readonly timeoutSeconds: number) {
    super(`job ${jobId} did not finish within ${timeoutSeconds} s`);
  }
}

export function retryAfterSeconds(headers: Headers): number | undefined {
  const raw = headers.get("retry-after");
  if (raw === null) return undefined;
  const seconds = Number(raw);
  return Number.isFinite(seconds) ? Math.max(0, seconds) : undefined;
}

/** The error of an error answer whose body has been read as text. */
export function errorFromResponse(response: Response, text: string): APIError {
  let code = `HTTP_${response.status}`;
  let message = response.statusText || text.slice(0, 500);
  let path: string | undefined;
  let details: Record<string, unknown> = {};
  try {
    const body = JSON.parse(text) as { error?: Record<string, unknown> };
    if (body && typeof body.error === "object" && body.error !== null) {
      const { code: c, message: m, path: p, ...rest } = body.error;
      if (typeof c === "string") code = c;
      if (typeof m === "string") message = m;
      if (typeof p === "string") path = p;
      details = rest;
    }
  } catch {
    // not JSON: the status and the text say it all
  }
  return new APIError(response.status, code, message, path, details, response.headers);
}

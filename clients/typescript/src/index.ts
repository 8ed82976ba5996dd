/**
 * The PhantomFlow client for TypeScript and JavaScript, on `fetch`, without runtime
 * dependencies.
 *
 *     import { PhantomFlow } from "phantomflow-client";
 *     const client = new PhantomFlow(); // PHANTOMFLOW_API_KEY, PHANTOMFLOW_URL
 *     const job = await client.render(script); // submit, follow over SSE, the finished job
 */

export { PhantomFlow, type ClientOptions, type RenderOptions } from "./client.js";
export {
  APIConnectionError,
  APIError,
  JobFailedError,
  PhantomFlowError,
  WaitTimeoutError,
} from "./errors.js";
export * from "./models.js";
export type { AssetRef, UploadFile, UploadOptions } from "./resources/assets.js";
export type { LedgerQuery } from "./resources/credits.js";
export type { JobRef, ListOptions, MetadataFilter, WaitOptions } from "./resources/jobs.js";
export type { PreviewRef, PreviewWaitOptions } from "./resources/previews.js";
export type { RenderExtras, SubmitOptions } from "./resources/renders.js";
export type { TemplateChanges, TemplateRenderOptions } from "./resources/templates.js";
export { DEFAULT_RETRY, VERSION, type RetryEvent, type RetryPolicy } from "./transport.js";
export {
  TOLERANCE_SECONDS,
  WebhookVerificationError,
  signWebhook,
  verifyWebhook,
  type WebhookHeaders,
} from "./webhook.js";

/**
 * Previews: a free look at a script before paying for it. A storyboard within a
 * second or so, then a small watermarked proxy of the whole movie, and a page anyone
 * with its `viewer_url` can watch; then one call renders it for real.
 */

import { PhantomFlowError } from "../errors.js";
import {
  PREVIEW_EVENT_TYPES,
  type DeletedPreview,
  type Preview,
  type PreviewEvent,
  type Quote,
  type Script,
  type Submission,
  type Variables,
} from "../models.js";
import { follow } from "../sse.js";
import { Resource, downloadWhole, drain, encode, withExtras } from "./base.js";
import { type RenderExtras, type SubmitOptions, dryRunCall, extras, submit, submitCall } from "./renders.js";
import { renderBody } from "./templates.js";

export type PreviewRef = string | Pick<Preview, "preview_id">;

function idOf(preview: PreviewRef): string {
  return typeof preview === "string" ? preview : preview.preview_id;
}

export interface PreviewWaitOptions {
  /** Seconds; the preview goes on being drawn after it. */
  timeout?: number;
  onEvent?: (event: PreviewEvent) => void | Promise<void>;
  signal?: AbortSignal;
}

export class Previews extends Resource {
  /**
   * Preview `script` (validated exactly as for a render; nothing is charged). The
   * preview is queued: follow it with `follow` or `wait`. The extras are what its render
   * will carry.
   */
  create(script: Script, options: RenderExtras = {}): Promise<Preview> {
    return this.created(withExtras(script, extras(options)));
  }

  /** Preview a template rendered with `variables` (checked as a template render). */
  createFromTemplate(
    templateId: string,
    variables: Variables = {},
    options: { version?: number; metadata?: Record<string, unknown> } = {},
  ): Promise<Preview> {
    return this.created(renderBody(templateId, variables, options));
  }

  /** The preview now: its status, storyboard, proxy and viewer link. */
  get(preview: PreviewRef): Promise<Preview> {
    return this.transport.json({ method: "GET", path: `/api/previews/${encode(idOf(preview))}` });
  }

  /** Delete the preview and its files; its page and files answer 404 at once. */
  delete(preview: PreviewRef): Promise<DeletedPreview> {
    return this.transport.json({ method: "DELETE", path: `/api/previews/${encode(idOf(preview))}` });
  }

  /**
   * Render the preview's script for real: charged and answered as `renders.create`.
   * The extras, when given, replace the preview's.
   */
  render(preview: PreviewRef, options: SubmitOptions = {}): Promise<Submission> {
    const path = `/api/previews/${encode(idOf(preview))}/render`;
    return submit(this.transport, submitCall(path, withExtras({}, extras(options)), options.idempotencyKey));
  }

  /** A dry run of `render`: what it would cost now, recording nothing. */
  quote(preview: PreviewRef, options: RenderExtras = {}): Promise<Quote> {
    const path = `/api/previews/${encode(idOf(preview))}/render`;
    return this.transport.json(dryRunCall(path, withExtras({}, extras(options))));
  }

  /** The preview's events (`progress`, `storyboard`, then `complete` or `error`), resuming after a drop. */
  follow(preview: PreviewRef, options: { lastEventId?: number; signal?: AbortSignal } = {}): AsyncGenerator<PreviewEvent> {
    const path = `/api/previews/${encode(idOf(preview))}/progress`;
    return follow(this.transport, path, true, { ...options, events: PREVIEW_EVENT_TYPES }) as AsyncGenerator<PreviewEvent>;
  }

  /** Follow the preview until its proxy is drawn (or it failed), and return it. */
  async wait(preview: PreviewRef, options: PreviewWaitOptions = {}): Promise<Preview> {
    await drain((signal) => this.follow(preview, { signal }), idOf(preview), options);
    return this.get(preview);
  }

  /** The viewer page's HTML (served without a key: its URL holds the permission). */
  page(preview: Pick<Preview, "viewer_url">): Promise<string> {
    return this.transport.text({ method: "GET", path: preview.viewer_url, anonymous: true });
  }

  /** The preview's proxy MP4, whole. */
  async download(preview: PreviewRef): Promise<Uint8Array> {
    const found = typeof preview !== "string" && "proxy_uri" in preview ? (preview as Preview) : await this.get(preview);
    if (!found.proxy_uri) throw new PhantomFlowError(`preview ${found.preview_id} has no proxy (${found.status})`);
    return downloadWhole(this.transport, found.proxy_uri);
  }

  // Not retried after a 5xx: a second request would be a second preview.
  private created(body: object): Promise<Preview> {
    return this.transport.json({ method: "POST", path: "/api/previews", body });
  }
}

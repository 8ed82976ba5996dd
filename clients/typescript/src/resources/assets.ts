/**
 * Assets: your own media (images, videos, audio, fonts), uploaded once and named in
 * scripts by id. Uploads are streamed with progress, and safe to retry: the same content
 * uploaded again is the same asset, stored and counted once.
 */

import { PhantomFlowError } from "../errors.js";
import type { Asset, AssetPage, DeletedAsset } from "../models.js";
import { Resource, downloadWhole, encode } from "./base.js";

/** A file to upload: its name and its bytes (a Blob, e.g. from `fs.openAsBlob`, reads from disk as sent). */
export interface UploadFile {
  name: string;
  data: Blob | Uint8Array;
}

export interface UploadOptions {
  /** Called as the bytes go out: (bytes sent, bytes in all). */
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
}

export type AssetRef = string | Pick<Asset, "id">;

function idOf(asset: AssetRef): string {
  return typeof asset === "string" ? asset : asset.id;
}

const encoder = new TextEncoder();

function quoted(name: string): string {
  return name.replace(/[\r\n"\\]/g, (c) => encodeURIComponent(c));
}

/** The multipart body of `files`, as a stream that counts what is read of it. */
function multipart(files: UploadFile[], onProgress?: (sent: number, total: number) => void) {
  const boundary = `pf-${crypto.randomUUID()}`;
  const blobs = files.map((file) => (file.data instanceof Blob ? file.data : new Blob([file.data as BlobPart])));
  const total = blobs.reduce((sum, blob) => sum + blob.size, 0);
  let sent = 0;
  async function* parts(): AsyncGenerator<Uint8Array> {
    for (const [index, blob] of blobs.entries()) {
      yield encoder.encode(
        `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="${quoted(files[index].name)}"\r\n` +
          "Content-Type: application/octet-stream\r\n\r\n",
      );
      for await (const chunk of blob.stream() as unknown as AsyncIterable<Uint8Array>) {
        sent += chunk.byteLength;
        onProgress?.(sent, total);
        yield chunk;
      }
      yield encoder.encode("\r\n");
    }
    yield encoder.encode(`--${boundary}--\r\n`);
  }
  const iterator = parts();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
  });
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

export class Assets extends Resource {
  /** Upload files (at most 20), one asset per file, in order. */
  async upload(files: UploadFile[], options: UploadOptions = {}): Promise<Asset[]> {
    if (files.length === 0) throw new PhantomFlowError("nothing to upload");
    const found = await this.transport.json<{ assets: Asset[] }>({
      method: "POST",
      path: "/api/assets",
      stream: () => multipart(files, options.onProgress),
      // The same content is the same asset: sending it twice stores and counts it once.
      idempotent: true,
      signal: options.signal,
      timeoutMs: 0,
    });
    return found.assets;
  }

  /** One page of your assets, newest first, with your storage use. */
  list(options: { page?: number; limit?: number; type?: Asset["type"] } = {}): Promise<AssetPage> {
    return this.transport.json({ method: "GET", path: "/api/assets", query: { ...options } });
  }

  /** Every asset, newest first, fetching pages as it goes. */
  async *iter(options: { type?: Asset["type"]; pageSize?: number } = {}): AsyncGenerator<Asset> {
    const pageSize = options.pageSize ?? 100;
    for (let page = 1; ; page++) {
      const found = await this.list({ page, limit: pageSize, type: options.type });
      yield* found.assets;
      if (found.assets.length === 0 || page * pageSize >= found.total) return;
    }
  }

  get(asset: AssetRef): Promise<Asset> {
    return this.transport.json({ method: "GET", path: `/api/assets/${encode(idOf(asset))}` });
  }

  /** Delete the asset and its file (ASSET_IN_USE while a queued or processing job uses it). */
  delete(asset: AssetRef): Promise<DeletedAsset> {
    return this.transport.json({ method: "DELETE", path: `/api/assets/${encode(idOf(asset))}` });
  }

  /** The asset's file, whole (read with your key); a transfer cut short starts again. */
  download(asset: AssetRef): Promise<Uint8Array> {
    return downloadWhole(this.transport, `/api/assets/${encode(idOf(asset))}/content`, false);
  }
}

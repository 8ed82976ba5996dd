/** API keys of the calling account: list, mint (the secret is shown once), revoke. */

import type { ApiKey, NewApiKey } from "../models.js";
import { Resource, encode } from "./base.js";

export class Keys extends Resource {
  async list(): Promise<ApiKey[]> {
    return (await this.transport.json<{ keys: ApiKey[] }>({ method: "GET", path: "/api/keys" })).keys;
  }

  create(mode: "live" | "test" = "live"): Promise<NewApiKey> {
    return this.transport.json({ method: "POST", path: "/api/keys", body: { mode } });
  }

  revoke(keyId: string): Promise<{ id: string; revoked: boolean }> {
    return this.transport.json({ method: "DELETE", path: `/api/keys/${encode(keyId)}` });
  }
}

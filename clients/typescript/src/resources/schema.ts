/** The published documents: the script's JSON Schema and the OpenAPI description. */

import { Resource } from "./base.js";

export class Schema extends Resource {
  /** The JSON Schema (draft 2020-12) of a render request's body. */
  script(): Promise<Record<string, unknown>> {
    return this.transport.json({ method: "GET", path: "/api/render/schema", anonymous: true });
  }

  openapi(): Promise<Record<string, unknown>> {
    return this.transport.json({ method: "GET", path: "/api/openapi.json", anonymous: true });
  }
}

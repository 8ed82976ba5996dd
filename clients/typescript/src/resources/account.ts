/** The account the key belongs to: its plan, limits, active jobs and credits. */

import type { Account } from "../models.js";
import { Resource } from "./base.js";

export class Accounts extends Resource {
  get(): Promise<Account> {
    return this.transport.json({ method: "GET", path: "/api/account" });
  }
}

/** The account's event stream (`GET /api/events`): every job's progress, outcomes and
 * webhook attempts on one connection that stays open. */

import type { AccountEvent } from "../models.js";
import { follow } from "../sse.js";
import { Resource } from "./base.js";

export class Events extends Resource {
  /** Events from now on (or after `lastEventId`); reconnects without loss. It never
   * ends by itself: break out of the loop, or abort `signal`. */
  follow(options: { lastEventId?: number; signal?: AbortSignal } = {}): AsyncGenerator<AccountEvent> {
    return follow(this.transport, "/api/events", false, options) as AsyncGenerator<AccountEvent>;
  }
}

/**
 * The presence webhooks (docs/protocol.md, "Presence"): what each POST carries and how it is
 * signed, shared by the workers that send them and the tests that receive them.
 */

export const WEBHOOK_EVENTS = ["channel_occupied", "channel_vacated", "member_added", "member_removed"] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** The body of one POST: one occupancy change of one channel, counts after it. */
export interface WebhookBody {
  event: WebhookEvent;
  channel: string;
  /** member_added and member_removed: who. */
  user?: string;
  users: number;
  connections: number;
  /** When the change happened (ms since epoch). */
  ts: number;
}

/** `sha256=<hex HMAC-SHA256 of the raw body, keyed with ROOMCAST_WEBHOOK_SECRET>`. */
export const WEBHOOK_SIGNATURE_HEADER = "x-roomcast-signature";
/** The change's id (`<channel>/<stream entry id>`), the same on every retry: a receiver may drop a repeat it already handled. */
export const WEBHOOK_ID_HEADER = "x-roomcast-webhook-id";
export const WEBHOOK_EVENT_HEADER = "x-roomcast-event";

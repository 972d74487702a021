/**
 * Request payload schemas, declared once: the gateway validates with them and the client
 * types below are inferred from them, so both sides cannot drift apart.
 */
import { z } from "zod";
import { CHANNEL_NAME } from "./channel-name.js";
import { RoomcastError } from "./error-codes.js";
import { LOG_LEVELS, LOG_STREAMS } from "./jobs.js";

export const PRIORITIES = ["critical", "high", "normal", "low"] as const;
export type Priority = (typeof PRIORITIES)[number];

const channel = z
  .string()
  .regex(CHANNEL_NAME, "must be <namespace>:<name>, like user:alice (docs/protocol.md, Channels and authorization)");
const eventType = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.:-]+$/, "letters, digits and _.:- only");
const offset = z.number().int().min(0);

/**
 * Narrows the lines of `log` events (job and `env:<id>:logs` channels): one stream, a lowest
 * level (lines without a level count as info), a substring (case-insensitive). Other event
 * types pass unchanged.
 */
export const logFilterSchema = z
  .object({
    stream: z.enum(LOG_STREAMS).optional(),
    level: z.enum(LOG_LEVELS).optional(),
    contains: z.string().min(1).max(200).optional(),
  })
  .strict();

export const subscribeSchema = z
  .object({
    channel,
    since: z
      .object({ offset, epoch: z.string().min(1).max(64) })
      .strict()
      .optional(),
    history: z.number().int().min(0).max(100_000).optional(),
    filter: logFilterSchema.optional(),
  })
  .strict();

export const unsubscribeSchema = z.object({ channel }).strict();

/** `presence` and `presence_stats`. */
export const presenceSchema = z.object({ channel }).strict();

export const publishSchema = z
  .object({ channel, type: eventType, data: z.unknown().refine((v) => v !== undefined, "is required") })
  .strict();

export const controlSchema = z
  .object({ channel, action: z.enum(["pause", "resume", "filter"]), filter: logFilterSchema.optional() })
  .strict();

export const refreshSchema = z.object({ token: z.string().min(1).max(16_384) }).strict();

/** HTTP: POST /v1/channels/:channel/events */
export const httpPublishSchema = z
  .object({
    type: eventType,
    data: z.unknown().refine((v) => v !== undefined, "is required"),
    priority: z.enum(PRIORITIES).optional(),
    idempotencyKey: z.string().min(1).max(200).optional(),
  })
  .strict();

/** HTTP: one event of POST /v1/publish */
export const httpBatchEventSchema = httpPublishSchema.extend({ channel: z.string().max(240) });

/** HTTP: GET /v1/channels/:channel/history */
export const httpHistoryQuerySchema = z
  .object({
    since: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(100_000).optional(),
  })
  .strict();

export type SubscribeRequest = z.infer<typeof subscribeSchema>;
export type UnsubscribeRequest = z.infer<typeof unsubscribeSchema>;
export type PublishRequest = z.infer<typeof publishSchema>;
export type ControlRequest = z.infer<typeof controlSchema>;
export type RefreshRequest = z.infer<typeof refreshSchema>;
export type PresenceRequest = z.infer<typeof presenceSchema>;
export type HttpPublishRequest = z.infer<typeof httpPublishSchema>;
export type LogFilter = z.infer<typeof logFilterSchema>;

/**
 * Validates or throws 4400 with a message that names the first bad field (`what` when it is
 * the value itself; under `at`, as in `events.3.type`).
 */
export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, what = "payload", at?: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue && issue.path.length > 0 ? issue.path.join(".") : undefined;
  const field = at === undefined ? (path ?? what) : path === undefined ? at : `${at}.${path}`;
  throw new RoomcastError("bad_request", `${field}: ${issue?.message ?? "invalid"}`, { field });
}

/**
 * JSON.stringify, but data nested deeper than its stack allows (a few thousand levels, well
 * under the message size limit) is the client's 4400, not a 4500 internal error.
 */
export function serialise(value: unknown, field: string): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    if (err instanceof RangeError) throw new RoomcastError("bad_request", `${field}: nested too deeply`, { field });
    throw err;
  }
}

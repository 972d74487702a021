/**
 * Namespaces (docs/protocol.md, "Channels and authorization") are configuration: who may subscribe and publish,
 * history, delivery policy. The three built-in ones can be changed and others added
 * through ROOMCAST_CONFIG.
 */
import { z } from "zod";
import { SCOPES } from "../contracts/scopes.js";

/** How a channel's id is checked against the token. */
export const accessRuleSchema = z
  .object({
    /** any: any valid token; user: the id is the token's sub; env: the id is in the token's envs; job: the job's owner or environment. */
    match: z.enum(["any", "user", "env", "job"]),
    /** A scope the token must also hold. */
    scope: z.string().min(1).optional(),
  })
  .strict();

export const policySchema = z.enum(["reliable", "conflate"]);
/** none: no snapshot; latest: the newest event's data is the channel's snapshot. */
export const snapshotModeSchema = z.enum(["none", "latest"]);

export const streamSchema = z
  .object({ policy: policySchema.optional(), snapshot: snapshotModeSchema.optional() })
  .strict();

export const namespaceSchema = z
  .object({
    subscribe: accessRuleSchema,
    /** false: only the HTTP API and workers publish. */
    publish: z.union([z.literal(false), accessRuleSchema]).default(false),
    historySize: z.number().int().min(0).optional(),
    historyTtlS: z.number().int().min(1).optional(),
    policy: policySchema.default("reliable"),
    snapshot: snapshotModeSchema.default("none"),
    /** Who is on a channel: `presence` and `presence_stats` requests and routes. */
    presence: z.boolean().default(false),
    /** Subscribers get `presence` join and leave events (needs presence). */
    joinLeave: z.boolean().default(false),
    /** When set, channels are `<ns>:<id>:<stream>` and only these streams exist. */
    streams: z.record(z.string().regex(/^[a-z][a-z0-9_-]*$/), streamSchema).optional(),
  })
  .strict()
  .refine((ns) => ns.presence || !ns.joinLeave, { message: "joinLeave needs presence: true", path: ["joinLeave"] });

export type AccessRule = z.infer<typeof accessRuleSchema>;
export type NamespaceConfig = z.infer<typeof namespaceSchema>;
export type Policy = z.infer<typeof policySchema>;
export type SnapshotMode = z.infer<typeof snapshotModeSchema>;

export const BUILT_IN_NAMESPACES: Record<string, NamespaceConfig> = {
  env: {
    subscribe: { match: "env", scope: SCOPES.envRead },
    publish: false,
    policy: "reliable",
    snapshot: "none",
    presence: true,
    joinLeave: true,
    streams: {
      logs: { policy: "reliable" },
      status: { policy: "conflate", snapshot: "latest" },
      events: { policy: "reliable" },
    },
  },
  job: {
    subscribe: { match: "job", scope: SCOPES.jobsRead },
    publish: false,
    policy: "reliable",
    snapshot: "none",
    presence: true,
    joinLeave: true,
  },
  user: {
    subscribe: { match: "user" },
    publish: false,
    policy: "reliable",
    snapshot: "none",
    presence: false,
    joinLeave: false,
  },
};

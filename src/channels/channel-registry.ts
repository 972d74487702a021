/**
 * Resolves a channel name to its namespace settings, and decides who may subscribe to
 * or publish on it (docs/protocol.md, "Channels and authorization").
 */
import type { Config } from "../config/load-config.js";
import type { AccessRule, NamespaceConfig, Policy, SnapshotMode } from "../config/namespaces.js";
import { parseChannelName } from "../contracts/channel-name.js";
import { RoomcastError } from "../contracts/error-codes.js";
import { matchesRule, mayPublishToEnvironment, type JobAccess } from "../auth/access.js";
import type { Principal } from "../auth/token-verifier.js";

export interface ResolvedChannel {
  channel: string;
  namespace: string;
  /** The id the access rule checks: user id, environment id, job id. */
  id: string;
  stream: string | undefined;
  settings: NamespaceConfig;
  policy: Policy;
  snapshot: SnapshotMode;
  historySize: number;
  historyTtlS: number;
}

/** Where job channels find their owner and environment (written by the job API). */
export interface JobDirectory {
  lookup(jobId: string): Promise<{ owner: string; envId?: string | undefined } | undefined>;
}

export type Action = "subscribe" | "publish";

/** Resolved channels kept for reuse: subscribers of one channel share one frozen object. */
const RESOLVED_MAX = 50_000;

/** A record's own entry for a key from outside, never one of Object.prototype's (`constructor`, `__proto__`...). */
function ownEntry<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

export class ChannelRegistry {
  private readonly resolved = new Map<string, ResolvedChannel>();

  constructor(
    private readonly config: Config,
    private readonly jobs: JobDirectory,
  ) {}

  /** Throws 4400 for a malformed name, 4404 for an unknown namespace or stream. */
  resolve(channel: unknown): ResolvedChannel {
    if (typeof channel !== "string")
      throw new RoomcastError("bad_request", "channel: must be a string", { field: "channel" });
    const known = this.resolved.get(channel);
    if (known) return known;
    const resolved = Object.freeze(this.resolveName(channel));
    if (this.resolved.size >= RESOLVED_MAX) this.resolved.clear();
    this.resolved.set(channel, resolved);
    return resolved;
  }

  private resolveName(channel: string): ResolvedChannel {
    const name = parseChannelName(channel);
    if (!name)
      throw new RoomcastError(
        "bad_request",
        "channel: must be <namespace>:<name>, like user:alice (docs/protocol.md, Channels and authorization)",
        {
          field: "channel",
        },
      );
    // Names come from clients: only own entries count (`constructor:x` is no namespace).
    const settings = ownEntry(this.config.namespaces, name.namespace);
    if (!settings) throw new RoomcastError("not_found", `unknown namespace ${name.namespace}`);
    let id = name.rest;
    let stream: string | undefined;
    let policy = settings.policy;
    let snapshot = settings.snapshot;
    if (settings.streams) {
      const cut = name.rest.lastIndexOf(":");
      if (cut <= 0)
        throw new RoomcastError(
          "bad_request",
          `channel: must be ${name.namespace}:<id>:<${Object.keys(settings.streams).join("|")}>`,
          { field: "channel" },
        );
      id = name.rest.slice(0, cut);
      stream = name.rest.slice(cut + 1);
      const streamSettings = ownEntry(settings.streams, stream);
      if (!streamSettings)
        throw new RoomcastError("not_found", `unknown stream ${stream} in namespace ${name.namespace}`);
      policy = streamSettings.policy ?? policy;
      snapshot = streamSettings.snapshot ?? snapshot;
    }
    return {
      channel,
      namespace: name.namespace,
      id,
      stream,
      settings,
      policy,
      snapshot,
      historySize: settings.historySize ?? this.config.historySize,
      historyTtlS: settings.historyTtlS ?? this.config.historyTtlS,
    };
  }

  /** Throws 4403 unless the principal may do `action` on the channel (4404 for a missing job). */
  async authorize(principal: Principal, resolved: ResolvedChannel, action: Action): Promise<void> {
    const rule = action === "subscribe" ? resolved.settings.subscribe : resolved.settings.publish;
    if (rule === false)
      throw new RoomcastError("forbidden", `clients may not publish in namespace ${resolved.namespace}`);
    if (!(await this.allows(principal, resolved, rule))) {
      throw new RoomcastError("forbidden", `not allowed to ${action} to ${resolved.channel}`);
    }
  }

  /**
   * A backend (scope `publish`) publishing over HTTP: channels of an environment (`env`
   * rule) need it in the token's `envs`; job channels need the job's environment there (`*`
   * for a job without one); other namespaces need only the scope. Throws 4403, or 4404 for a
   * job that does not exist.
   */
  async authorizeBackendPublish(principal: Principal, resolved: ResolvedChannel): Promise<void> {
    const match = resolved.settings.subscribe.match;
    if (match !== "env" && match !== "job") return;
    const envId = match === "env" ? resolved.id : (await this.job(resolved.id)).envId;
    if (!mayPublishToEnvironment(principal, envId))
      throw new RoomcastError("forbidden", `the token's envs do not grant publishing to ${resolved.channel}`);
  }

  /** Like authorize, but answers instead of throwing (4404 still throws). */
  async allows(principal: Principal, resolved: ResolvedChannel, rule: AccessRule): Promise<boolean> {
    const job = rule.match === "job" ? await this.job(resolved.id) : undefined;
    return matchesRule(principal, rule, resolved.id, job);
  }

  /** A job's owner and environment, or 4404. */
  private async job(jobId: string): Promise<JobAccess> {
    const job = await this.jobs.lookup(jobId);
    if (!job) throw new RoomcastError("not_found", `job ${jobId} does not exist`);
    return job;
  }
}

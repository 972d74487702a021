/**
 * The cluster's node registry in Redis, for `GET /v1/stats` from any replica: every replica
 * writes its heartbeat and counts to one hash (one key: one Cluster slot) every few seconds;
 * readers skip (and remove) entries whose heartbeat is too old, so a dead replica drops out,
 * and entries that are not a node's stats at all.
 */
import type { Logger } from "pino";
import type { RedisClient } from "./redis-clients.js";

export interface NodeStats {
  node: string;
  startedAt: number;
  heartbeat: number;
  ready: boolean;
  connections: number;
  subscriptions: Record<string, number>;
}

export interface ClusterStats {
  nodes: NodeStats[];
  connections: number;
  subscriptions: Record<string, number>;
}

const HEARTBEAT_MS = 5000;
/** Missing this many heartbeats drops a node from the stats. */
const DEAD_AFTER_BEATS = 3;

const isCount = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value) && value >= 0;

/**
 * An entry of the registry as a node wrote it, or undefined when it is not (not JSON, a field
 * missing or of another type): one bad entry, whoever wrote it, must not fail the stats of all.
 */
export function parseNodeStats(json: string): NodeStats | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const stats = value as Record<string, unknown>;
  const subscriptions = stats.subscriptions;
  if (
    typeof stats.node !== "string" ||
    !isCount(stats.startedAt) ||
    !isCount(stats.heartbeat) ||
    typeof stats.ready !== "boolean" ||
    !isCount(stats.connections)
  )
    return undefined;
  if (
    typeof subscriptions !== "object" ||
    subscriptions === null ||
    Array.isArray(subscriptions) ||
    !Object.values(subscriptions).every(isCount)
  )
    return undefined;
  return stats as unknown as NodeStats;
}

export class NodeRegistry {
  private readonly key: string;
  private readonly timer: NodeJS.Timeout;
  private readonly startedAt = Date.now();

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly nodeId: string,
    private readonly snapshot: () => Omit<NodeStats, "node" | "startedAt" | "heartbeat">,
    private readonly log: Logger,
  ) {
    this.key = `${prefix}:{nodes}`;
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.timer.unref();
    void this.beat();
  }

  async beat(): Promise<void> {
    const stats: NodeStats = {
      node: this.nodeId,
      startedAt: this.startedAt,
      heartbeat: Date.now(),
      ...this.snapshot(),
    };
    try {
      await this.redis.hset(this.key, this.nodeId, JSON.stringify(stats));
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, "node heartbeat failed");
    }
  }

  async cluster(): Promise<ClusterStats> {
    await this.beat(); // our own entry is always current
    const entries = await this.redis.hgetall(this.key);
    const now = Date.now();
    const nodes: NodeStats[] = [];
    for (const [node, json] of Object.entries(entries)) {
      const stats = parseNodeStats(json);
      if (!stats) this.log.warn({ node }, "removed a node registry entry that is not a node's stats");
      if (!stats || now - stats.heartbeat > HEARTBEAT_MS * DEAD_AFTER_BEATS)
        void this.redis.hdel(this.key, node).catch(() => undefined);
      else nodes.push(stats);
    }
    nodes.sort((a, b) => a.node.localeCompare(b.node));
    const totals = new Map<string, number>();
    for (const stats of nodes)
      for (const [ns, n] of Object.entries(stats.subscriptions)) totals.set(ns, (totals.get(ns) ?? 0) + n);
    const subscriptions = Object.fromEntries(totals);
    return { nodes, connections: nodes.reduce((sum, s) => sum + s.connections, 0), subscriptions };
  }

  /** Leaves the registry (on shutdown). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.hdel(this.key, this.nodeId).catch(() => undefined);
  }
}

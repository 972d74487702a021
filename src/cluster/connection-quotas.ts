/**
 * Cluster-wide connection quotas (docs/protocol.md, "Limits") held in Redis with leases. Each
 * scope id (a user, an IP, an environment) has a sorted set of connection entries scored by
 * lease expiry; acquiring drops expired entries, counts and adds in one script (one key, so
 * one Cluster slot). Each replica renews the leases of its connections; a replica that dies
 * stops renewing, and its connections stop counting within one lease.
 */
import type { Logger } from "pino";
import type { GatewayMetrics } from "../metrics/metrics.js";
import type { RedisClient } from "./redis-clients.js";

export type QuotaScope = "user" | "ip" | "environment" | "user-environment";

/** KEYS: quota set. ARGV: lease ms, limit, member. Returns 1 (admitted) or 0 (full). */
const ACQUIRE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[2])
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 1
`;

/**
 * Several quotas at once, all or nothing (a handshake's user and IP quotas, on a single Redis:
 * one round trip). KEYS: quota sets. ARGV: lease ms, member, then each key's limit.
 * Returns 0 (admitted to all) or the 1-based index of the first full one (admitted to none).
 */
const ACQUIRE_ALL_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, ARGV[2]) and redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then return i end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[1]), ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[1]) * 2)
end
return 0
`;

/** KEYS: quota set. ARGV: lease ms, members... Extends (or restores) the leases. */
const RENEW_SCRIPT = `
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], expiry, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return #ARGV - 1
`;

type QuotaRedis = RedisClient & {
  roomcastQuotaAcquire(key: string, leaseMs: number, limit: number, member: string): Promise<number>;
  roomcastQuotaAcquireAll(...args: (string | number)[]): Promise<number>;
  roomcastQuotaRenew(key: string, leaseMs: number, ...members: string[]): Promise<number>;
};

export class ConnectionQuotas {
  private readonly redis: QuotaRedis;
  /** The entries this replica holds, by quota key: the key (one string shared by its holders) and its members. */
  private readonly held = new Map<string, { key: string; members: string | Set<string> }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly leaseMs: number,
    private readonly log: Logger,
    private readonly metrics?: Pick<GatewayMetrics, "timeRedis">,
    /** On a Redis Cluster quota keys live in different slots: each is acquired on its own. */
    private readonly cluster = false,
  ) {
    redis.defineCommand("roomcastQuotaAcquire", { numberOfKeys: 1, lua: ACQUIRE_SCRIPT });
    redis.defineCommand("roomcastQuotaAcquireAll", { lua: ACQUIRE_ALL_SCRIPT });
    redis.defineCommand("roomcastQuotaRenew", { numberOfKeys: 1, lua: RENEW_SCRIPT });
    this.redis = redis as QuotaRedis;
    // Renew three times per lease, so one missed renewal never expires a live connection.
    this.timer = setInterval(() => void this.renew(), Math.max(leaseMs / 3, 500));
    this.timer.unref();
  }

  key(scope: QuotaScope, id: string): string {
    return `${this.prefix}:quota:{${scope}:${id}}`;
  }

  /** Adds the member to the scope's quota unless `limit` entries are live; the quota's key if admitted. */
  async acquire(scope: QuotaScope, id: string, member: string, limit: number): Promise<string | undefined> {
    const key = this.key(scope, id);
    const acquire = () => this.redis.roomcastQuotaAcquire(key, this.leaseMs, limit, member);
    if ((await this.timed(acquire)) !== 1) return undefined;
    return this.hold(key, member);
  }

  /**
   * Several quotas for one member, all or nothing: their keys, or the index of the first one
   * that is full. One script on a single Redis; one per key on a Redis Cluster.
   */
  async acquireAll(
    quotas: readonly { scope: QuotaScope; id: string; limit: number }[],
    member: string,
  ): Promise<{ keys: string[] } | { full: number }> {
    if (this.cluster || quotas.length < 2) {
      // Every acquire settles before any release: one that fails must not leave the others held (and renewed).
      const settled = await Promise.allSettled(quotas.map((q) => this.acquire(q.scope, q.id, member, q.limit)));
      const keys = settled.map((s) => (s.status === "fulfilled" ? s.value : undefined));
      const failed = settled.find((s) => s.status === "rejected");
      const full = keys.findIndex((k) => k === undefined);
      if (!failed && full < 0) return { keys: keys as string[] };
      for (const key of keys) if (key !== undefined) this.release(key, member);
      if (failed) throw failed.reason;
      return { full };
    }
    const keys = quotas.map((q) => this.key(q.scope, q.id));
    const answer = await this.timed(() =>
      this.redis.roomcastQuotaAcquireAll(keys.length, ...keys, this.leaseMs, member, ...quotas.map((q) => q.limit)),
    );
    if (answer !== 0) return { full: answer - 1 };
    return { keys: keys.map((key) => this.hold(key, member)) };
  }

  private timed<T>(call: () => Promise<T>): Promise<T> {
    return this.metrics ? this.metrics.timeRedis("quota", call) : call();
  }

  /** Notes an entry taken in Redis (renewed from now on); returns the held key string. */
  private hold(key: string, member: string): string {
    const held = this.held.get(key);
    if (!held) {
      this.held.set(key, { key, members: member });
      return key;
    }
    // Usually one member per key (a user's one connection); a set only when there are more.
    if (typeof held.members === "string") {
      if (held.members !== member) held.members = new Set([held.members, member]);
    } else held.members.add(member);
    return held.key;
  }

  release(key: string, member: string): void {
    const held = this.held.get(key);
    if (!held) return;
    if (typeof held.members === "string") {
      if (held.members !== member) return;
      this.held.delete(key);
    } else {
      if (!held.members.delete(member)) return;
      if (held.members.size === 1) held.members = held.members.values().next().value!;
    }
    // If Redis is away the lease expires on its own.
    this.redis.zrem(key, member).catch(() => undefined);
  }

  async renew(): Promise<void> {
    const renewals = [...this.held.values()].map(({ key, members }) =>
      this.redis.roomcastQuotaRenew(key, this.leaseMs, ...(typeof members === "string" ? [members] : members)),
    );
    const failed = (await Promise.allSettled(renewals)).filter((r) => r.status === "rejected").length;
    if (failed > 0) this.log.warn({ failed }, "quota lease renewal failed (Redis unavailable?)");
  }

  close(): void {
    clearInterval(this.timer);
  }
}

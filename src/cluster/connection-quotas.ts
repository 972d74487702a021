/**
 * Cluster-wide connection quotas (docs/protocol.md, "Limits") held in Redis with leases. Each
 * scope id (a user, an IP, an environment) has a sorted set of connection entries scored by
 * lease expiry; acquiring drops expired entries, counts and adds in one script (one key, so
 * one Cluster slot). Each replica renews the leases of its connections; a replica that dies
 * stops renewing, and its connections stop counting within one lease.
 */
import type { Logger } from "pino";
import type { GatewayMetrics } from "../metrics/metrics.js";
import { chunks, inWaves, type WeightedCall } from "./in-waves.js";
import { LuaScript, type ScriptArg } from "./lua-script.js";
import type { RedisClient } from "./redis-clients.js";

export type QuotaScope = "user" | "ip" | "environment" | "user-environment";

/**
 * Quota requests at once: the handshakes of one turn of the event loop on a single Redis, or
 * one key on a Redis Cluster. Each request all or nothing on its own, in order. KEYS: every request's quota sets, one request after another.
 * ARGV: lease ms, then per request: member, its key count, each key's limit. Returns per
 * request 0 (admitted to all) or the 1-based index of its first full set (admitted to none).
 */
const ACQUIRE_BATCH_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local out = {}
local k = 0
local a = 2
while a <= #ARGV do
  local member = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  local full = 0
  for i = 1, n do
    local key = KEYS[k + i]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if full == 0 and not redis.call('ZSCORE', key, member) and redis.call('ZCARD', key) >= tonumber(ARGV[a + 1 + i]) then full = i end
  end
  if full == 0 then
    for i = 1, n do
      redis.call('ZADD', KEYS[k + i], now + lease, member)
      redis.call('PEXPIRE', KEYS[k + i], lease * 2)
    end
  end
  out[#out + 1] = full
  k = k + n
  a = a + 2 + n
end
return out
`;

/** Handshakes whose quotas go in one call, at most. */
const ACQUIRE_BATCH = 200;

interface PendingAcquire {
  keys: string[];
  limits: number[];
  member: string;
  resolve(full: number): void;
  reject(err: unknown): void;
}

/**
 * Renews quota sets (on a single Redis up to RENEW_BATCH in one call, instead of one call per
 * user and IP every third of a lease; on a Redis Cluster one per call). KEYS: quota sets. ARGV: lease ms, then for
 * each key its member count and members.
 */
const RENEW_MANY_SCRIPT = `
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local a = 2
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[a])
  for i = 1, n do redis.call('ZADD', key, expiry, ARGV[a + i]) end
  redis.call('PEXPIRE', key, tonumber(ARGV[1]) * 2)
  a = a + n + 1
end
return #KEYS
`;

/** Quota sets renewed per call on a single Redis. */
const RENEW_BATCH = 500;
/** Quota sets renewed in flight at most (src/cluster/in-waves.ts). */
const RENEW_WAVE = 1000;

// Both take a number of keys that varies from call to call.
const ACQUIRE = new LuaScript(ACQUIRE_BATCH_SCRIPT);
const RENEW = new LuaScript(RENEW_MANY_SCRIPT);

export class ConnectionQuotas {
  /** Handshakes waiting for this turn's batch call. */
  private batch: PendingAcquire[] = [];
  private readonly redis: RedisClient;
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
    this.redis = redis;
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
    const [full] = (await this.timed(() =>
      ACQUIRE.run(this.redis, 1, [key, this.leaseMs, member, 1, limit]),
    )) as number[];
    if (Number(full) !== 0) return undefined;
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
    const answer = await new Promise<number>((resolve, reject) => {
      this.batch.push({ keys, limits: quotas.map((q) => q.limit), member, resolve, reject });
      if (this.batch.length === 1) setImmediate(() => this.flushBatch());
    });
    if (answer !== 0) return { full: answer - 1 };
    return { keys: keys.map((key) => this.hold(key, member)) };
  }

  /** The handshakes of this turn: their quotas in one script call per ACQUIRE_BATCH. */
  private flushBatch(): void {
    for (const batch of chunks(this.batch.splice(0), ACQUIRE_BATCH)) {
      const keys = batch.flatMap((p) => p.keys);
      const args: ScriptArg[] = [...keys, this.leaseMs];
      for (const p of batch) args.push(p.member, p.keys.length, ...p.limits);
      this.timed(() => ACQUIRE.run(this.redis, keys.length, args) as Promise<number[]>).then(
        (answers) => batch.forEach((p, i) => p.resolve(Number(answers[i]))),
        (err: unknown) => batch.forEach((p) => p.reject(err)),
      );
    }
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
    const held = [...this.held.values()].map(({ key, members }) => ({
      key,
      members: typeof members === "string" ? [members] : [...members],
    }));
    const renewals: WeightedCall[] = [];
    if (this.cluster) {
      // Quota sets live in different slots: one call each.
      for (const { key, members } of held)
        renewals.push({
          weight: 1,
          run: () => RENEW.run(this.redis, 1, [key, this.leaseMs, members.length, ...members]),
        });
    } else {
      for (const batch of chunks(held, RENEW_BATCH)) {
        const args: ScriptArg[] = [...batch.map((h) => h.key), this.leaseMs];
        for (const { members } of batch) args.push(members.length, ...members);
        renewals.push({ weight: batch.length, run: () => RENEW.run(this.redis, batch.length, args) });
      }
    }
    const failed = (await inWaves(renewals, RENEW_WAVE)).filter((r) => r.status === "rejected").length;
    if (failed > 0) this.log.warn({ failed }, "quota lease renewal failed (Redis unavailable?)");
  }

  close(): void {
    clearInterval(this.timer);
  }
}

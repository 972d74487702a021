/**
 * Admin UI login attempts per client IP and minute, cluster-wide: one Redis counter per IP
 * and fixed window (INCR, expiring a minute after the window's first attempt), so that
 * spreading guesses over the replicas gains nothing. Every attempt is also counted in a
 * window kept in memory, which answers while Redis fails: the limit never goes away, it only
 * becomes per replica for a while.
 */
import type { Logger } from "pino";
import type { RedisClient } from "../cluster/redis-clients.js";

export const LOGIN_WINDOW_MS = 60_000;
/** IPs whose local window is kept at most (the oldest window goes first). */
const LOCAL_MAX = 100_000;
/** One warning this often at most while Redis fails (each attempt would log one). */
const WARN_EVERY_MS = 10_000;

/** KEYS: counter. ARGV: window ms. Returns the count in this window (a counter left without expiry gets one). */
const HIT_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;

type LimitRedis = RedisClient & { roomcastAdminLoginHit(key: string, windowMs: number): Promise<number> };

/** The Redis key of an IP's counter (its own hash slot on a Redis Cluster). */
export function adminLoginKey(prefix: string, ip: string): string {
  return `${prefix}:admin-login:{${ip}}`;
}

export class AdminLoginLimit {
  private readonly redis: LimitRedis;
  private readonly local = new Map<string, { count: number; since: number }>();
  private warnedAt = 0;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {
    redis.defineCommand("roomcastAdminLoginHit", { numberOfKeys: 1, lua: HIT_SCRIPT });
    this.redis = redis as LimitRedis;
    const sweep = setInterval(() => {
      const now = Date.now();
      for (const [ip, entry] of this.local) if (now - entry.since >= LOGIN_WINDOW_MS) this.local.delete(ip);
    }, LOGIN_WINDOW_MS);
    sweep.unref();
  }

  /** Counts an attempt from `ip`; returns the attempts from it in the current window, this one included. */
  async hit(ip: string): Promise<number> {
    const local = this.hitLocal(ip);
    try {
      return await this.redis.roomcastAdminLoginHit(adminLoginKey(this.prefix, ip), LOGIN_WINDOW_MS);
    } catch (err) {
      if (Date.now() - this.warnedAt >= WARN_EVERY_MS) {
        this.warnedAt = Date.now();
        this.log.warn(
          { err: (err as Error).message },
          "admin UI login counter unavailable in Redis; counting on this replica",
        );
      }
      return local;
    }
  }

  private hitLocal(ip: string): number {
    const now = Date.now();
    let entry = this.local.get(ip);
    if (!entry || now - entry.since >= LOGIN_WINDOW_MS) {
      this.local.delete(ip);
      if (this.local.size >= LOCAL_MAX) this.local.delete(this.local.keys().next().value!);
      this.local.set(ip, (entry = { count: 0, since: now }));
    }
    return ++entry.count;
  }
}

/**
 * The HTTP API's rate limit (ROOMCAST_HTTP_RATE_LIMIT requests per second), cluster-wide: one
 * counter per key and second in Redis. Keys are a verified token (by its hash), or, for a
 * caller without a valid token, its IP, so that junk tokens share their sender's budget.
 * A `publish`-scoped token is a backend publishing at its own rate: its successful answers
 * do not count (unless ROOMCAST_HTTP_RATE_LIMIT_PUBLISHERS), its failures do, so that a
 * broken one cannot hammer the API with refusals.
 */
import { createHash } from "node:crypto";
import { hasScope } from "../auth/access.js";
import type { Principal } from "../auth/token-verifier.js";
import { SCOPES } from "../contracts/scopes.js";
import type { RedisClient } from "../cluster/redis-clients.js";
import { RoomcastError } from "../contracts/error-codes.js";

/** KEYS: counter. ARGV: window ms. Returns { count in this window, ms left in it }. */
const HIT_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); left = tonumber(ARGV[1]) end
return { n, left }
`;

const WINDOW_MS = 1000;
/** Local blocks (keys found over the limit) kept at most. */
const BLOCKED_MAX = 10_000;

type RateRedis = RedisClient & { roomcastHttpRateHit(key: string, windowMs: number): Promise<[number, number]> };

export class HttpRateLimit {
  private readonly redis: RateRedis;
  /** Keys whose counted failures went over the limit: until when they are refused (ms). */
  private readonly blocked = new Map<string, number>();

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    /** Requests per second and key (0: off). */
    readonly limit: number,
    /** Count a publish-scoped token's successful requests too. */
    private readonly countPublishers: boolean,
    private readonly onLimited: () => void,
  ) {
    redis.defineCommand("roomcastHttpRateHit", { numberOfKeys: 1, lua: HIT_SCRIPT });
    this.redis = redis as RateRedis;
  }

  get enabled(): boolean {
    return this.limit > 0;
  }

  static tokenKey(token: string): string {
    return `t:${createHash("sha256").update(token).digest("base64url").slice(0, 22)}`;
  }

  static ipKey(ip: string): string {
    return `ip:${ip}`;
  }

  /** Whether only this principal's failures count (a publishing backend). */
  countsFailuresOnly(principal: Principal): boolean {
    return !this.countPublishers && hasScope(principal, SCOPES.publish);
  }

  /**
   * Counts a request; throws 4429 when the key is over the limit. Returns the requests left in
   * this window (undefined when off, or when Redis is away: then nothing is limited).
   */
  async hit(key: string): Promise<number | undefined> {
    if (!this.enabled) return undefined;
    this.refuseIfBlocked(key);
    let reply: [number, number];
    try {
      reply = await this.redis.roomcastHttpRateHit(`${this.prefix}:http-rate:{${key}}`, WINDOW_MS);
    } catch {
      return undefined;
    }
    const [count, leftMs] = reply;
    if (count <= this.limit) return this.limit - count;
    this.block(key, leftMs);
    this.refuseIfBlocked(key);
    return 0;
  }

  /** Counts a failed answer of a key whose successes do not count (fire and forget). */
  countFailure(key: string): void {
    if (this.enabled) void this.hit(key).catch(() => undefined);
  }

  /** Throws 4429 while the key is blocked on this replica. */
  refuseIfBlocked(key: string): void {
    const until = this.blocked.get(key);
    if (until === undefined) return;
    const leftMs = until - Date.now();
    if (leftMs <= 0) {
      this.blocked.delete(key);
      return;
    }
    this.onLimited();
    throw new RoomcastError("rate_limited", `more than ${this.limit} requests per second`, { retryAfterMs: leftMs });
  }

  private block(key: string, leftMs: number): void {
    if (this.blocked.size >= BLOCKED_MAX) {
      const now = Date.now();
      for (const [k, until] of this.blocked) if (until <= now) this.blocked.delete(k);
      if (this.blocked.size >= BLOCKED_MAX) this.blocked.clear();
    }
    this.blocked.set(key, Date.now() + Math.max(leftMs, 1));
  }
}

/**
 * Delivers the presence webhooks (docs/protocol.md, "Presence") from the workers. The presence
 * scripts add each occupancy change of a channel to its webhook stream, atomically with the
 * change itself; a gateway then queues a job for the channel, and a worker POSTs the stream's
 * new entries to each configured URL, in stream order:
 *
 * - once each: a position per channel and URL records the last entry the URL accepted (a 2xx);
 *   an entry goes again only to a URL that did not accept it;
 * - in order per channel: one worker at a time holds the channel (a lock with a token, kept
 *   alive while it sends); a job that finds the channel held waits a moment and tries again;
 * - bounded: a channel has at most one job waiting, however many changes come while no worker
 *   runs (BullMQ deduplication by channel); the job that holds the channel lifts it before
 *   reading, so the changes after its read queue the next job and none is left behind;
 * - a URL that fails stops at that entry, the job fails and BullMQ retries it with backoff
 *   (1 s, 2 s, 4 s ... then every 10 minutes, for about a day, as long as the changes are
 *   kept); one job per channel retries, the jobs of later changes leave it to that one; the
 *   other URLs are not held back;
 * - signed: `X-Roomcast-Signature: sha256=<hex HMAC-SHA256 of the body>` with the webhook secret.
 */
import { createHmac, randomUUID } from "node:crypto";
import { DelayedError, type Job } from "bullmq";
import type { Logger } from "pino";
import { presenceKeys } from "../channels/presence.js";
import type { RedisClient } from "../cluster/redis-clients.js";
import type { Config } from "../config/load-config.js";
import {
  WEBHOOK_EVENT_HEADER,
  WEBHOOK_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  type WebhookEvent,
} from "../contracts/webhooks.js";
import type { WorkerMetrics } from "../metrics/metrics.js";
import type { WebhookJobData } from "./job-queue.js";

/** A receiver that has not answered by then failed (the entry is retried). */
const POST_TIMEOUT_MS = 5000;
/** The channel's lock outlives one POST: renewed after each. */
const LOCK_MS = POST_TIMEOUT_MS * 3;
/** A job that finds the channel held by another worker tries again this much later. */
const HELD_RETRY_MS = 200;
/** Entries read from the stream per call. */
const READ_BATCH = 100;
/** Retries wait 1 s, 2 s, 4 s ... and then every 10 minutes, until the changes expire (a day). */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 600_000;
/** The channel's retrying job is known this long after its last attempt (longer than the longest wait). */
const RETRIER_MS = RETRY_MAX_MS + 5 * 60_000;

/** BullMQ backoff strategy of the webhook jobs: exponential, capped. */
export function webhookBackoff(attemptsMade: number): number {
  return Math.min(RETRY_FIRST_MS * 2 ** Math.max(attemptsMade - 1, 0), RETRY_MAX_MS);
}

/** Positions live as long as the stream (a day after the channel's last change). */
const POSITIONS_TTL_MS = 86_400_000;

/** KEYS: lock. ARGV: token, ms. Renews the lock if this worker still holds it; 1 if so. */
const RENEW_LOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
/** KEYS: lock. ARGV: token. Releases the lock if this worker still holds it. */
const RELEASE_LOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type SenderRedis = RedisClient & {
  roomcastHookLockRenew(lock: string, token: string, ms: number): Promise<number>;
  roomcastHookLockRelease(lock: string, token: string): Promise<number>;
};

/** `sha256=<hex>`: what X-Roomcast-Signature carries for this body. */
export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** A URL as logged: without credentials or query (they may hold secrets). */
function shown(url: string): string {
  try {
    const { origin, pathname } = new URL(url);
    return origin + pathname;
  } catch {
    return "(invalid URL)";
  }
}

class ReceiverFailed extends Error {
  override name = "ReceiverFailed";
}

export class WebhookSender {
  private readonly redis: SenderRedis;
  private readonly events: ReadonlySet<string>;

  constructor(
    redis: RedisClient,
    private readonly config: Config,
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
  ) {
    redis.defineCommand("roomcastHookLockRenew", { numberOfKeys: 1, lua: RENEW_LOCK_SCRIPT });
    redis.defineCommand("roomcastHookLockRelease", { numberOfKeys: 1, lua: RELEASE_LOCK_SCRIPT });
    this.redis = redis as SenderRedis;
    this.events = new Set(config.webhookEvents);
  }

  /** The BullMQ processor: sends what the channel's stream holds beyond each URL's position. */
  async deliver(job: Job<WebhookJobData>, jobToken: string | undefined): Promise<void> {
    const { channel } = job.data;
    const keys = presenceKeys(this.config.redisPrefix, channel);
    const lock = `${keys.hooks}:lock`;
    const token = randomUUID();
    if ((await this.redis.set(lock, token, "PX", LOCK_MS, "NX")) !== "OK") {
      // Another worker sends this channel's changes now: this job's turn comes after it.
      await job.moveToDelayed(Date.now() + HELD_RETRY_MS, jobToken);
      throw new DelayedError();
    }
    const retrier = `${keys.hooks}:retrier`;
    const id = job.id ?? token;
    try {
      // From here on, a new change queues a new job: this one may have read past it already.
      await job.removeDeduplicationKey();
      const results = await Promise.allSettled(
        this.config.webhookUrls.map((url) =>
          this.sendTo(url, channel, keys.hooks, `${keys.hooks}:positions`, lock, token),
        ),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (!failed) {
        if ((await this.redis.get(retrier)) === id) await this.redis.del(retrier);
        return;
      }
      // One job per channel retries (it sends everything pending when it does): the jobs of
      // later changes, failing meanwhile, leave it to that one instead of each retrying too.
      const claimed = await this.redis.set(retrier, id, "PX", RETRIER_MS, "NX");
      const mine = claimed === "OK" || (await this.redis.get(retrier)) === id;
      if (!mine) return;
      await this.redis.pexpire(retrier, RETRIER_MS);
      throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
    } finally {
      await this.redis.roomcastHookLockRelease(lock, token).catch(() => undefined);
    }
  }

  /** Sends one URL its entries after its position, in order; throws at the first it does not accept. */
  private async sendTo(
    url: string,
    channel: string,
    stream: string,
    positions: string,
    lock: string,
    token: string,
  ): Promise<void> {
    let position = (await this.redis.hget(positions, url)) ?? "-";
    for (;;) {
      const start = position === "-" ? "-" : `(${position}`;
      const entries = await this.redis.xrange(stream, start, "+", "COUNT", READ_BATCH);
      if (entries.length === 0) return;
      for (const [id, fields] of entries) {
        const body = fields[1] ?? "{}";
        const event = (JSON.parse(body) as { event?: string }).event ?? "";
        if (this.events.has(event)) {
          if ((await this.redis.roomcastHookLockRenew(lock, token, LOCK_MS)) !== 1)
            throw new Error("lost the channel's webhook lock (another worker took over); retried");
          await this.post(url, `${channel}/${id}`, event as WebhookEvent, body);
        }
        position = id;
        await this.redis.hset(positions, url, id);
        await this.redis.pexpire(positions, POSITIONS_TTL_MS);
      }
    }
  }

  private async post(url: string, id: string, event: WebhookEvent, body: string): Promise<void> {
    const end = this.metrics.webhookDuration.startTimer();
    let status = 0;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "roomcast-webhooks",
          [WEBHOOK_SIGNATURE_HEADER]: webhookSignature(this.config.webhookSecret!, body),
          [WEBHOOK_ID_HEADER]: id,
          [WEBHOOK_EVENT_HEADER]: event,
        },
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(POST_TIMEOUT_MS),
      });
      status = response.status;
      // The body is not used; reading it frees the connection for the next POST.
      await response.arrayBuffer().catch(() => undefined);
    } catch (err) {
      this.metrics.webhooks.inc({ event, outcome: "failed" });
      this.log.warn({ url: shown(url), id, event, err: (err as Error).message }, "webhook not delivered; retried");
      throw new ReceiverFailed(`${shown(url)}: ${(err as Error).message}`);
    } finally {
      end();
    }
    if (status < 200 || status >= 300) {
      this.metrics.webhooks.inc({ event, outcome: "failed" });
      this.log.warn({ url: shown(url), id, event, status }, "webhook refused by its receiver; retried");
      throw new ReceiverFailed(`${shown(url)} answered ${status}`);
    }
    this.metrics.webhooks.inc({ event, outcome: "delivered" });
  }
}

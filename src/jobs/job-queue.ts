/**
 * The BullMQ queues of roomcast: the jobs queue (ROOMCAST_QUEUE; gateways add, workers run)
 * and its `-expiry` companion, whose delayed entries close finished jobs' channels when
 * their retention ends. Every BullMQ key carries one hash tag (`{<prefix>:bull}`), as BullMQ
 * requires on a Redis Cluster.
 */
import { Queue, type JobsOptions } from "bullmq";
import type { Logger } from "pino";
import type { Config } from "../config/load-config.js";
import {
  createRedis,
  DEFAULT_TIMEOUTS,
  failFastOptions,
  WAIT_FOR_REDIS,
  type RedisClient,
  type RedisTarget,
  type RedisTimeouts,
} from "../cluster/redis-clients.js";

/** What a BullMQ job of the jobs queue carries besides its name (the processor). */
export interface QueuedJobData {
  owner: string;
  envId?: string;
  data: unknown;
}

export interface ExpiryJobData {
  jobId: string;
}

/** A channel whose webhook stream has occupancy changes to deliver (docs/protocol.md, "Presence"). */
export interface WebhookJobData {
  channel: string;
}

export function bullPrefix(config: Config): string {
  return `{${config.redisPrefix}:bull}`;
}

export function expiryQueueName(config: Config): string {
  return `${config.queueName}-expiry`;
}

export function webhookQueueName(config: Config): string {
  return `${config.queueName}-webhooks`;
}

/** The backoff strategy of webhook jobs (the workers' webhookBackoff: exponential, capped at 10 minutes). */
export const WEBHOOK_BACKOFF = "capped";
/** Retried for about a day, as long as a channel's changes are kept. */
const WEBHOOK_ATTEMPTS = 150;
const WEBHOOK_FAILED_KEPT_S = 86_400;

/**
 * A Redis connection for BullMQ. `producer` (gateways adding jobs) fails fast like our own
 * clients, so that POST /v1/jobs answers 503 while Redis is away or silent; `worker` waits
 * for Redis (its blocking commands must not time out).
 */
export function bullConnection(
  target: RedisTarget,
  log: Logger,
  role: "producer" | "worker",
  timeouts: RedisTimeouts = DEFAULT_TIMEOUTS,
): RedisClient {
  return createRedis(target, log, `bull-${role}`, role === "worker" ? WAIT_FOR_REDIS : failFastOptions(timeouts));
}

/** Options of every job added: kept for the retention once finished, for GET /v1/jobs/:id. */
export function jobOptions(
  config: Config,
  overrides: {
    attempts?: number | undefined;
    backoffMs?: number | undefined;
    delayMs?: number | undefined;
    priority?: number | undefined;
  },
): JobsOptions {
  const keep = { age: config.jobRetentionS, count: 100_000 };
  return {
    attempts: overrides.attempts ?? config.jobAttempts,
    backoff: { type: "exponential", delay: overrides.backoffMs ?? config.jobBackoffMs },
    ...(overrides.delayMs ? { delay: overrides.delayMs } : {}),
    ...(overrides.priority ? { priority: overrides.priority } : {}),
    removeOnComplete: keep,
    removeOnFail: keep,
  };
}

export interface JobQueues {
  jobs: Queue<QueuedJobData>;
  expiry: Queue<ExpiryJobData>;
  webhooks: Queue<WebhookJobData>;
  /** When a job's channel closes: `retentionS` after it finished. */
  scheduleExpiry(jobId: string): Promise<void>;
  /** These channels' webhook streams have changes: a worker delivers each channel's, in order. */
  deliverWebhooks(channels: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export function openJobQueues(config: Config, connection: RedisClient): JobQueues {
  const prefix = bullPrefix(config);
  const jobs = new Queue<QueuedJobData>(config.queueName, { connection, prefix });
  const expiry = new Queue<ExpiryJobData>(expiryQueueName(config), { connection, prefix });
  const webhooks = new Queue<WebhookJobData>(webhookQueueName(config), { connection, prefix });
  // BullMQ re-emits connection errors on the queue; our client already logs them once.
  jobs.on("error", () => undefined);
  expiry.on("error", () => undefined);
  webhooks.on("error", () => undefined);
  const webhookJob: JobsOptions = {
    attempts: WEBHOOK_ATTEMPTS,
    backoff: { type: WEBHOOK_BACKOFF },
    removeOnComplete: true,
    removeOnFail: { age: WEBHOOK_FAILED_KEPT_S },
  };
  return {
    jobs,
    expiry,
    webhooks,
    async scheduleExpiry(jobId) {
      // The job id makes it idempotent: a second finish of the same job schedules nothing.
      await expiry.add(
        "close",
        { jobId },
        { jobId: `close-${jobId}`, delay: config.jobRetentionS * 1000, removeOnComplete: true, removeOnFail: true },
      );
    },
    async deliverWebhooks(channels) {
      // One queued job per channel at most: while it waits, later changes are its to send too
      // (it reads the stream when it runs). The worker lifts the deduplication once it holds the
      // channel and before it reads, so a change after that read queues the next job.
      await webhooks.addBulk(
        channels.map((channel) => ({
          name: "deliver",
          data: { channel },
          opts: { ...webhookJob, deduplication: { id: channel } },
        })),
      );
    },
    async close() {
      await Promise.allSettled([jobs.close(), expiry.close(), webhooks.close()]);
    },
  };
}

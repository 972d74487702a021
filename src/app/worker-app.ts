/**
 * One worker, wired: the core (Redis, registry, publish path), a BullMQ Worker on the jobs
 * queue running the processors through JobAttempts, the expiry queue that closes finished
 * jobs' channels when their retention ends, cancels over pub/sub, and the processors'
 * announcement (which job names the job API accepts). Its shutdown follows the one close
 * order: no new jobs, running ones finish within the grace period or go back to the queue.
 */
import { Worker } from "bullmq";
import type { Logger } from "pino";
import { requireRedisSetting, type Config } from "../config/load-config.js";
import { listenForCancels } from "../jobs/cancel-bus.js";
import { JobAttempts, loadProcessors } from "../jobs/job-attempts.js";
import {
  bullPrefix,
  expiryQueueName,
  webhookQueueName,
  type ExpiryJobData,
  type QueuedJobData,
  type WebhookJobData,
} from "../jobs/job-queue.js";
import { webhookBackoff, WebhookSender } from "../jobs/webhook-sender.js";
import { createWorkerMetrics, type WorkerMetrics } from "../metrics/metrics.js";
import { CloseOrder } from "./close-order.js";
import { channelStore, jobChannels, jobQueues, openCore } from "./core.js";

const ANNOUNCE_MS = 15_000;
/** A job found stalled this many times fails (a job that kills its workers). */
const MAX_STALLED = 2;
/** Channels whose webhooks one worker delivers at once (each channel's in order, one at a time). */
const WEBHOOK_CONCURRENCY = 8;

export interface JobWorker {
  metrics: WorkerMetrics;
  processors: readonly string[];
  isReady(): boolean;
  /** The shutdown order; a step may be added before close (the worker's HTTP server). */
  closing: CloseOrder;
  /** Stops taking jobs, lets running ones finish within ROOMCAST_DRAIN_S, requeues the rest, closes. */
  close(): Promise<void>;
}

export async function createJobWorker(config: Config, log: Logger): Promise<JobWorker> {
  requireRedisSetting(config, "worker");
  const processors = await loadProcessors(config);
  const closing = new CloseOrder(log.child({ module: "shutdown" }));
  const core = await openCore(config, log, closing);
  const { redis, records, registry, sharded } = core;
  const { queues, connect } = jobQueues(core, "worker", closing);
  let attempts: JobAttempts | undefined;
  const metrics = createWorkerMetrics(
    config.nodeId,
    {
      redisUp: redis.isUp,
      running: () => attempts?.running ?? new Map(),
      queueCounts: () => queues.jobs.getJobCounts(),
    },
    {
      processors: [...processors.keys()],
      namespaces: Object.keys(config.namespaces),
    },
  );
  const store = channelStore(core, metrics);
  const channels = jobChannels(core, store, queues);
  const running = (attempts = new JobAttempts({
    config,
    log,
    processors,
    records,
    store,
    registry,
    channels,
    metrics,
  }));

  const prefix = bullPrefix(config);
  const lockMs = config.jobLockS * 1000;
  const worker = new Worker<QueuedJobData>(config.queueName, (job, token, signal) => running.run(job, token, signal), {
    connection: connect(),
    prefix,
    concurrency: config.workerConcurrency,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    maxStalledCount: MAX_STALLED,
  });
  worker.on("error", (err) => log.warn({ err: err.message }, "worker error"));
  worker.on("stalled", (jobId: string) => running.stalled(jobId));
  worker.on("failed", (job, err) => running.failed(job, err));
  worker.on("completed", (job) => running.completed(job));

  const expiryWorker = new Worker<ExpiryJobData>(
    expiryQueueName(config),
    async (job) => channels.close(job.data.jobId),
    {
      connection: connect(),
      prefix,
      concurrency: 1,
    },
  );
  expiryWorker.on("error", (err) => log.warn({ err: err.message }, "expiry worker error"));

  // Presence webhooks, when URLs are set: every worker delivers them.
  let webhookWorker: Worker<WebhookJobData> | undefined;
  if (config.webhookUrls.length > 0) {
    const sender = new WebhookSender(redis.commands, config, metrics, log.child({ module: "webhooks" }));
    webhookWorker = new Worker<WebhookJobData>(webhookQueueName(config), (job, token) => sender.deliver(job, token), {
      connection: connect(),
      prefix,
      concurrency: WEBHOOK_CONCURRENCY,
      settings: { backoffStrategy: webhookBackoff },
    });
    webhookWorker.on("error", (err) => log.warn({ err: err.message }, "webhook worker error"));
  }

  await listenForCancels(redis.subscriber, config.redisPrefix, sharded, (jobId) => {
    if (worker.cancelJob(jobId, "cancelled")) log.info({ jobId }, "job cancelled");
  });
  const announce = () =>
    records
      .announceProcessors([...processors.keys()])
      .catch((err: unknown) => log.debug({ err }, "could not announce processors"));
  await announce();
  const announcer = setInterval(() => void announce(), ANNOUNCE_MS);
  announcer.unref();
  await Promise.all([worker.waitUntilReady(), expiryWorker.waitUntilReady(), webhookWorker?.waitUntilReady()]);

  let stopping = false;
  closing.add("stop accepting", "new jobs", async () => {
    stopping = true;
    clearInterval(announcer);
    await worker.pause(true);
  });
  // Running jobs get the grace period; what is left goes back to the queue for another worker.
  closing.add("drain", "running jobs", async () => {
    const deadline = Date.now() + config.drainS * 1000;
    while (running.busy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    worker.cancelAllJobs("shutdown");
    await worker.close();
    await expiryWorker.close();
    await webhookWorker?.close();
  });

  return {
    metrics,
    processors: [...processors.keys()],
    isReady: () => !stopping && redis.isUp() && worker.isRunning(),
    closing,
    close: () => closing.close(),
  };
}

/**
 * A roomcast worker: a BullMQ Worker on the jobs queue that runs the registered processors,
 * streaming each attempt's state, progress and log lines to the job's channel through the
 * publish path (no HTTP hop). Retries with backoff; a job whose worker died (SIGKILL, lost
 * host) is found stalled once its lock runs out and runs again on another worker, and its
 * subscribers see both. Cancels arrive over pub/sub and abort the processor's signal. The
 * worker also closes finished jobs' channels when their retention ends.
 */
import { UnrecoverableError, WaitingError, Worker, type Job } from "bullmq";
import type { Logger } from "pino";
import { ChannelRegistry } from "../channels/channel-registry.js";
import { ChannelStore } from "../channels/channel-store.js";
import { connectRedis, type RedisClient, type RedisClients } from "../cluster/redis-clients.js";
import { redisTimeoutsOf, requireRedisSetting, type Config } from "../config/load-config.js";
import type { JobSnapshot } from "../contracts/jobs.js";
import { createWorkerMetrics, type AttemptOutcome, type WorkerMetrics } from "../metrics/metrics.js";
import { listenForCancels } from "./cancel-bus.js";
import { initialSnapshot, JobChannels } from "./job-channel.js";
import { bullConnection, bullPrefix, expiryQueueName, openJobQueues, type ExpiryJobData, type JobQueues, type QueuedJobData } from "./job-queue.js";
import { JobRecords } from "./job-records.js";
import { JobAbortedError, JobRun } from "./job-run.js";
import { loadProcessorModules, type Processor } from "./processor.js";
import { SAMPLE_PROCESSORS } from "./sample-processors.js";

const ANNOUNCE_MS = 15_000;
/** A job found stalled this many times fails (a job that kills its workers). */
const MAX_STALLED = 2;
const FAILED_REASON_CHARS = 2000;

export interface JobWorker {
  metrics: WorkerMetrics;
  processors: readonly string[];
  isReady(): boolean;
  /** Stops taking jobs, lets running ones finish for up to `graceMs`, requeues the rest, closes. */
  close(graceMs: number): Promise<void>;
}

export async function loadProcessors(config: Config): Promise<Map<string, Processor>> {
  const table = new Map<string, { processor: Processor; from: string }>();
  if (config.sampleProcessors) for (const [name, processor] of Object.entries(SAMPLE_PROCESSORS)) table.set(name, { processor, from: "the sample processors" });
  await loadProcessorModules(config.processors, table);
  return new Map([...table].map(([name, { processor }]) => [name, processor]));
}

function reasonOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.slice(0, FAILED_REASON_CHARS) || "failed";
}

export async function createJobWorker(config: Config, log: Logger): Promise<JobWorker> {
  requireRedisSetting(config, "worker");
  const processors = await loadProcessors(config);
  const redis: RedisClients = await connectRedis(config.redisUrl!, log, redisTimeoutsOf(config));
  const sharded = config.adapter === "sharded" || (config.adapter === "auto" && redis.cluster);
  const records = new JobRecords(redis.commands, config.redisPrefix, config.queueName);
  const registry = new ChannelRegistry(config, records);
  const running = new Map<string, number>();
  const bullConnections: RedisClient[] = [];
  const connect = () => {
    const connection = bullConnection(redis.target, log, "worker");
    bullConnections.push(connection);
    return connection;
  };
  const queues: JobQueues = openJobQueues(config, connect());
  const metrics = createWorkerMetrics(config.nodeId, { redisUp: redis.isUp, running: () => running, queueCounts: () => queues.jobs.getJobCounts() }, {
    processors: [...processors.keys()],
    namespaces: Object.keys(config.namespaces),
  });
  const store = new ChannelStore(redis.commands, { prefix: config.redisPrefix, idempotencyTtlS: config.idempotencyTtlS, sharded, maxReadBytes: config.maxReadBytes }, metrics);
  const channels = new JobChannels(store, registry, records, queues, config.jobRetentionS);
  /** Failed attempts whose channel events this worker already published. */
  const published = new Set<string>();
  const prefix = bullPrefix(config);

  const count = (name: string, delta: number) => running.set(name, (running.get(name) ?? 0) + delta);
  const ended = (name: string, outcome: AttemptOutcome, startedAt: number) => {
    metrics.attempts.inc({ processor: name, outcome });
    metrics.attemptDuration.observe({ processor: name, outcome }, (Date.now() - startedAt) / 1000);
  };

  async function run(job: Job<QueuedJobData>, token: string | undefined, bullSignal: AbortSignal | undefined): Promise<unknown> {
    const jobId = job.id!;
    const startedAt = Date.now();
    const attempts = job.opts.attempts ?? 1;
    const attempt = job.attemptsMade + 1;
    const record = await records.get(jobId);
    const previous: JobSnapshot = (await channels.snapshot(jobId)) ?? initialSnapshot();
    // Our own controller: processors see why they were aborted (signal.reason).
    const controller = new AbortController();
    bullSignal?.addEventListener("abort", () => controller.abort(new JobAbortedError(bullSignal.reason === "shutdown" ? "shutdown" : "cancelled")), { once: true });
    const info = { id: jobId, name: job.name, data: job.data.data, owner: job.data.owner, attempt, attempts, ...(job.data.envId ? { envId: job.data.envId } : {}) };
    const jobRun = new JobRun(channels, store, registry, info, { ...previous, attemptsMade: job.attemptsMade }, controller.signal, {
      linesPublished: (n) => metrics.logLines.inc({ processor: job.name }, n),
      publishRetry: () => metrics.publishRetries.inc(),
    });
    const failFinally = async (state: "failed" | "cancelled", failedReason: string | undefined, outcome: AttemptOutcome, err: Error) => {
      await jobRun.finish({ state, attemptsMade: attempt, ...(failedReason ? { failedReason } : {}), durationMs: Date.now() - startedAt });
      ended(job.name, outcome, startedAt);
      published.add(jobId);
      throw err;
    };
    if (!record || record.cancelled) {
      // Cancelled while queued (or its record is gone: not added through the job API): it never runs.
      if (!record) log.warn({ jobId, name: job.name }, "job without a record (add jobs with POST /v1/jobs): not run");
      return failFinally("cancelled", undefined, "cancelled", new UnrecoverableError("cancelled"));
    }
    const processor = processors.get(job.name);
    // More attempts started than were counted: the last one was interrupted (its worker died or shut down).
    const restarted = job.attemptsStarted - 1 > job.attemptsMade ? "interrupted" : job.attemptsMade > 0 ? "retry" : undefined;
    await jobRun.start(config.nodeId, restarted);
    count(job.name, 1);
    try {
      if (!processor) throw new Error(`no processor for jobs named ${job.name} on worker ${config.nodeId} (every worker of a queue must run the same processors)`);
      const result = await processor(jobRun.context);
      const jsonResult: unknown = result === undefined ? undefined : JSON.parse(JSON.stringify(result));
      await jobRun.finish({ state: "completed", attemptsMade: attempt, ...(jsonResult !== undefined ? { result: jsonResult } : {}), durationMs: Date.now() - startedAt });
      ended(job.name, "completed", startedAt);
      return jsonResult;
    } catch (err) {
      const aborted = controller.signal.aborted ? (controller.signal.reason as JobAbortedError).reason : undefined;
      if (aborted === "shutdown" && token) {
        // Back to the queue without spending an attempt; another worker runs it.
        await jobRun.end({ state: "queued", attemptsMade: job.attemptsMade, reason: "worker_shutdown" });
        ended(job.name, "requeued", startedAt);
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (aborted === "cancelled") return failFinally("cancelled", undefined, "cancelled", new UnrecoverableError("cancelled"));
      const failedReason = reasonOf(err);
      const willRetry = attempt < attempts && !(err instanceof UnrecoverableError);
      if (!willRetry) return failFinally("failed", failedReason, "failed", err as Error);
      const retryInMs = Math.round((typeof job.opts.backoff === "object" ? (job.opts.backoff.delay ?? 0) : 0) * 2 ** (attempt - 1));
      await jobRun.end({ state: "retrying", attemptsMade: attempt, failedReason, retryInMs });
      ended(job.name, "retried", startedAt);
      published.add(jobId);
      throw err;
    } finally {
      count(job.name, -1);
    }
  }

  const lockMs = config.jobLockS * 1000;
  const worker = new Worker<QueuedJobData>(config.queueName, run, {
    connection: connect(),
    prefix,
    concurrency: config.workerConcurrency,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    maxStalledCount: MAX_STALLED,
  });
  worker.on("error", (err) => log.warn({ err: err.message }, "worker error"));
  // Another worker's job, found stalled here and put back in the queue: tell its subscribers.
  worker.on("stalled", (jobId: string) => {
    metrics.stalled.inc();
    log.warn({ jobId }, "job stalled (its worker stopped); it runs again");
    void (async () => {
      const snapshot = (await channels.snapshot(jobId)) ?? initialSnapshot();
      await channels.publish(jobId, "state", { state: "stalled", attemptsMade: snapshot.attemptsMade, reason: "worker_lost" }, { ...snapshot, state: "stalled" });
    })().catch((err: unknown) => log.warn({ err, jobId }, "could not publish the stalled state"));
  });
  // A failure that did not go through run(): a job stalled too often. Its channel still gets `done`.
  worker.on("failed", (job, err) => {
    if (!job?.id || published.delete(job.id)) return;
    const jobId = job.id;
    void (async () => {
      const snapshot = (await channels.snapshot(jobId)) ?? initialSnapshot();
      await channels.finish(jobId, { state: "failed", attemptsMade: job.attemptsMade, failedReason: reasonOf(err) }, snapshot);
    })().catch((e: unknown) => log.warn({ err: e, jobId }, "could not publish the failure"));
  });
  worker.on("completed", (job) => job.id && published.delete(job.id));

  const expiryWorker = new Worker<ExpiryJobData>(expiryQueueName(config), async (job) => channels.close(job.data.jobId), {
    connection: connect(),
    prefix,
    concurrency: 1,
  });
  expiryWorker.on("error", (err) => log.warn({ err: err.message }, "expiry worker error"));

  await listenForCancels(redis.subscriber, config.redisPrefix, sharded, (jobId) => {
    if (worker.cancelJob(jobId, "cancelled")) log.info({ jobId }, "job cancelled");
  });
  const announce = () => records.announceProcessors([...processors.keys()]).catch((err: unknown) => log.debug({ err }, "could not announce processors"));
  await announce();
  const announcer = setInterval(() => void announce(), ANNOUNCE_MS);
  announcer.unref();
  await Promise.all([worker.waitUntilReady(), expiryWorker.waitUntilReady()]);

  let closing = false;
  return {
    metrics,
    processors: [...processors.keys()],
    isReady: () => !closing && redis.isUp() && worker.isRunning(),
    async close(graceMs) {
      if (closing) return;
      closing = true;
      clearInterval(announcer);
      // Take no new jobs; give running ones the grace period, then requeue what is left.
      await worker.pause(true);
      const deadline = Date.now() + graceMs;
      while ([...running.values()].some((n) => n > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      worker.cancelAllJobs("shutdown");
      await worker.close();
      await expiryWorker.close();
      await queues.close();
      await Promise.allSettled(bullConnections.map((c) => c.quit()));
      await redis.close();
    },
  };
}

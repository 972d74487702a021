/**
 * Running job attempts for a worker (src/app/worker-app.ts wires it to BullMQ): each attempt
 * runs its processor and streams its state, progress and log lines to the job's channel
 * through the publish path (no HTTP hop). Retries with backoff; a job whose worker died
 * (SIGKILL, lost host) is found stalled once its lock runs out and runs again on another
 * worker, and its subscribers see both. Cancels abort the processor's signal.
 */
import { UnrecoverableError, WaitingError, type Job } from "bullmq";
import type { Logger } from "pino";
import type { ChannelRegistry } from "../channels/channel-registry.js";
import type { ChannelStore } from "../channels/channel-store.js";
import type { Config } from "../config/load-config.js";
import type { JobSnapshot } from "../contracts/jobs.js";
import type { AttemptOutcome, WorkerMetrics } from "../metrics/metrics.js";
import { initialSnapshot, type JobChannels } from "./job-channel.js";
import type { QueuedJobData } from "./job-queue.js";
import type { JobRecords } from "./job-records.js";
import { JobAbortedError, JobRun } from "./job-run.js";
import { loadProcessorModules, type Processor } from "./processor.js";
import { SAMPLE_PROCESSORS } from "./sample-processors.js";

const FAILED_REASON_CHARS = 2000;

export async function loadProcessors(config: Config): Promise<Map<string, Processor>> {
  const table = new Map<string, { processor: Processor; from: string }>();
  if (config.sampleProcessors)
    for (const [name, processor] of Object.entries(SAMPLE_PROCESSORS))
      table.set(name, { processor, from: "the sample processors" });
  await loadProcessorModules(config.processors, table);
  return new Map([...table].map(([name, { processor }]) => [name, processor]));
}

function reasonOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.slice(0, FAILED_REASON_CHARS) || "failed";
}

export interface JobAttemptsDeps {
  config: Config;
  log: Logger;
  processors: ReadonlyMap<string, Processor>;
  records: JobRecords;
  store: ChannelStore;
  registry: ChannelRegistry;
  channels: JobChannels;
  metrics: Pick<WorkerMetrics, "attempts" | "attemptDuration" | "logLines" | "publishRetries" | "stalled">;
}

export class JobAttempts {
  /** Attempts running now, by processor. */
  readonly running = new Map<string, number>();
  /** Failed attempts whose channel events this worker already published. */
  private readonly published = new Set<string>();

  constructor(private readonly deps: JobAttemptsDeps) {}

  /** Whether any attempt runs. */
  busy(): boolean {
    return [...this.running.values()].some((n) => n > 0);
  }

  private count(name: string, delta: number): void {
    this.running.set(name, (this.running.get(name) ?? 0) + delta);
  }

  private ended(name: string, outcome: AttemptOutcome, startedAt: number): void {
    this.deps.metrics.attempts.inc({ processor: name, outcome });
    this.deps.metrics.attemptDuration.observe({ processor: name, outcome }, (Date.now() - startedAt) / 1000);
  }

  /** BullMQ's processor: one attempt of a job. */
  async run(job: Job<QueuedJobData>, token: string | undefined, bullSignal: AbortSignal | undefined): Promise<unknown> {
    const { config, log, processors, records, store, registry, channels, metrics } = this.deps;
    const published = this.published;
    const ended = (name: string, outcome: AttemptOutcome, startedAt: number) => this.ended(name, outcome, startedAt);
    const count = (name: string, delta: number) => this.count(name, delta);
    const jobId = job.id!;
    const startedAt = Date.now();
    const attempts = job.opts.attempts ?? 1;
    const attempt = job.attemptsMade + 1;
    const record = await records.get(jobId);
    const previous: JobSnapshot = (await channels.snapshot(jobId)) ?? initialSnapshot();
    // Our own controller: processors see why they were aborted (signal.reason).
    const controller = new AbortController();
    bullSignal?.addEventListener(
      "abort",
      () => controller.abort(new JobAbortedError(bullSignal.reason === "shutdown" ? "shutdown" : "cancelled")),
      { once: true },
    );
    const info = {
      id: jobId,
      name: job.name,
      data: job.data.data,
      owner: job.data.owner,
      attempt,
      attempts,
      ...(job.data.envId ? { envId: job.data.envId } : {}),
    };
    const jobRun = new JobRun(
      channels,
      store,
      registry,
      info,
      { ...previous, attemptsMade: job.attemptsMade },
      controller.signal,
      {
        linesPublished: (n) => metrics.logLines.inc({ processor: job.name }, n),
        publishRetry: () => metrics.publishRetries.inc(),
      },
    );
    const failFinally = async (
      state: "failed" | "cancelled",
      failedReason: string | undefined,
      outcome: AttemptOutcome,
      err: Error,
    ) => {
      await jobRun.finish({
        state,
        attemptsMade: attempt,
        ...(failedReason ? { failedReason } : {}),
        durationMs: Date.now() - startedAt,
      });
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
    const restarted =
      job.attemptsStarted - 1 > job.attemptsMade ? "interrupted" : job.attemptsMade > 0 ? "retry" : undefined;
    await jobRun.start(config.nodeId, restarted);
    count(job.name, 1);
    try {
      if (!processor)
        throw new Error(
          `no processor for jobs named ${job.name} on worker ${config.nodeId} (every worker of a queue must run the same processors)`,
        );
      const result = await processor(jobRun.context);
      const jsonResult: unknown = result === undefined ? undefined : JSON.parse(JSON.stringify(result));
      await jobRun.finish({
        state: "completed",
        attemptsMade: attempt,
        ...(jsonResult !== undefined ? { result: jsonResult } : {}),
        durationMs: Date.now() - startedAt,
      });
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
      if (aborted === "cancelled")
        return failFinally("cancelled", undefined, "cancelled", new UnrecoverableError("cancelled"));
      const failedReason = reasonOf(err);
      const willRetry = attempt < attempts && !(err instanceof UnrecoverableError);
      if (!willRetry) return failFinally("failed", failedReason, "failed", err as Error);
      const retryInMs = Math.round(
        (typeof job.opts.backoff === "object" ? (job.opts.backoff.delay ?? 0) : 0) * 2 ** (attempt - 1),
      );
      await jobRun.end({ state: "retrying", attemptsMade: attempt, failedReason, retryInMs });
      ended(job.name, "retried", startedAt);
      published.add(jobId);
      throw err;
    } finally {
      count(job.name, -1);
    }
  }

  /** Another worker's job, found stalled here and put back in the queue: tell its subscribers. */
  stalled(jobId: string): void {
    const { log, channels, metrics } = this.deps;
    metrics.stalled.inc();
    log.warn({ jobId }, "job stalled (its worker stopped); it runs again");
    void (async () => {
      const snapshot = (await channels.snapshot(jobId)) ?? initialSnapshot();
      await channels.publish(
        jobId,
        "state",
        { state: "stalled", attemptsMade: snapshot.attemptsMade, reason: "worker_lost" },
        { ...snapshot, state: "stalled" },
      );
    })().catch((err: unknown) => log.warn({ err, jobId }, "could not publish the stalled state"));
  }

  /** A failure that did not go through run() (a job stalled too often): its channel still gets `done`. */
  failed(job: Job<QueuedJobData> | undefined, err: Error): void {
    const { log, channels } = this.deps;
    if (!job?.id || this.published.delete(job.id)) return;
    const jobId = job.id;
    void (async () => {
      const snapshot = (await channels.snapshot(jobId)) ?? initialSnapshot();
      await channels.finish(
        jobId,
        { state: "failed", attemptsMade: job.attemptsMade, failedReason: reasonOf(err) },
        snapshot,
      );
    })().catch((e: unknown) => log.warn({ err: e, jobId }, "could not publish the failure"));
  }

  completed(job: Job<QueuedJobData>): void {
    if (job.id) this.published.delete(job.id);
  }
}

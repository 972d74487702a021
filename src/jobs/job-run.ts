/**
 * One attempt of a job on a worker: the processor's context, and every event the attempt
 * puts on the job channel (and its environment's log channel), in order, each with the
 * snapshot after it. Built by the worker for each attempt and thrown away after it.
 */
import type { EnvLogData, JobEventData, JobSnapshot, LogLine } from "../contracts/jobs.js";
import type { ChannelStore } from "../channels/channel-store.js";
import type { ChannelRegistry } from "../channels/channel-registry.js";
import type { JobChannels } from "./job-channel.js";
import { JobOutput } from "./job-output.js";
import { logOptions, type JobInfo, type ProcessorContext } from "./processor.js";

/** Why a job's signal was aborted. */
export type AbortReason = "cancelled" | "shutdown";

export class JobAbortedError extends Error {
  override name = "AbortError";
  constructor(readonly reason: AbortReason) {
    super(
      reason === "cancelled" ? "the job was cancelled" : "the worker is shutting down; the job runs again elsewhere",
    );
  }
}

export interface RunHooks {
  /** Lines published (for metrics). */
  linesPublished(count: number): void;
  /** A publish failed and is retried. */
  publishRetry(err: unknown): void;
}

export class JobRun {
  private readonly output: JobOutput;
  private snapshot: JobSnapshot;
  readonly context: ProcessorContext;

  constructor(
    private readonly channels: JobChannels,
    private readonly store: ChannelStore,
    private readonly registry: ChannelRegistry,
    readonly info: JobInfo<unknown>,
    previous: JobSnapshot,
    readonly signal: AbortSignal,
    hooks: RunHooks,
  ) {
    // A new attempt starts over (progress 0) and numbers its lines after the last one published.
    this.snapshot = { ...previous, progress: 0 };
    delete this.snapshot.status;
    const jobId = info.id;
    this.output = new JobOutput(
      {
        lines: async (lines) => {
          const last = lines[lines.length - 1]!;
          const snapshot: JobSnapshot = { ...this.snapshot, lastLogLine: last };
          await channels.publish(jobId, "log", { lines }, snapshot);
          this.snapshot = snapshot;
          if (info.envId)
            await channels.publishEnvLogs(info.envId, { jobId, name: info.name, lines } satisfies EnvLogData);
          hooks.linesPublished(lines.length);
        },
        progress: async (progress) => {
          const snapshot: JobSnapshot = { ...this.snapshot, progress };
          await channels.publish(jobId, "progress", { progress }, snapshot);
          this.snapshot = snapshot;
        },
        retrying: (err) => hooks.publishRetry(err),
      },
      previous.lastLogLine?.n ?? 0,
    );
    this.context = this.makeContext();
  }

  private makeContext(): ProcessorContext {
    const signal = this.signal;
    return {
      job: this.info,
      signal,
      // Lines logged after an abort (cleaning up) still go out.
      log: (text, options) => this.output.log(text, logOptions(options)),
      progress: (value) => this.output.progress(value),
      status: (status) =>
        this.state(
          { state: "active", attemptsMade: this.snapshot.attemptsMade, attempt: this.info.attempt, status },
          { status },
        ),
      envStatus: (data, envId = this.info.envId) => {
        if (!envId) return Promise.reject(new Error("envStatus: this job has no environment; pass an envId"));
        const target = this.registry.resolve(`env:${envId}:status`);
        return this.output.send(async () => {
          await this.store.publish(target, { type: "status", data, priority: "high" });
        });
      },
      sleep: (ms) =>
        new Promise<void>((resolve, reject) => {
          if (signal.aborted) return reject(signal.reason as Error);
          const timer = setTimeout(() => {
            signal.removeEventListener("abort", onAbort);
            resolve();
          }, ms);
          const onAbort = () => {
            clearTimeout(timer);
            reject(signal.reason as Error);
          };
          signal.addEventListener("abort", onAbort, { once: true });
        }),
      flush: () => this.output.flush(),
    };
  }

  /** A `state` event after everything logged before it; `patch` goes into the snapshot. */
  state(data: JobEventData["state"], patch: Partial<JobSnapshot> = {}): Promise<void> {
    return this.output.send(async () => {
      const snapshot: JobSnapshot = { ...this.snapshot, ...patch, state: data.state, attemptsMade: data.attemptsMade };
      await this.channels.publish(this.info.id, "state", data, snapshot);
      this.snapshot = snapshot;
    });
  }

  /** The attempt starts on `worker`. */
  start(worker: string, restarted: "retry" | "interrupted" | undefined): Promise<void> {
    const data: JobEventData["state"] = {
      state: "active",
      attemptsMade: this.snapshot.attemptsMade,
      attempt: this.info.attempt,
      worker,
    };
    if (restarted) data.restarted = restarted;
    return this.state(data);
  }

  /** The last event of the job: what was logged goes out first. */
  async finish(done: Omit<JobEventData["done"], "expiresAt">): Promise<void> {
    await this.output.flush().catch(() => undefined);
    this.output.stop();
    this.snapshot = await this.channels.finish(this.info.id, done, this.snapshot);
  }

  /** Ends the attempt without ending the job (a retry or a requeue follows). */
  async end(state: JobEventData["state"]): Promise<void> {
    try {
      await this.state(state);
    } finally {
      this.output.stop();
    }
  }

  get lastLine(): LogLine | null {
    return this.snapshot.lastLogLine;
  }
}

/**
 * Publishing on job channels (`job:<id>`, docs/protocol.md, "Channels and authorization"), for the job API and the
 * workers alike, through the one publish path: every event carries the job's snapshot after
 * it, so a late subscriber gets the state so far in its subscribe answer. State changes and
 * the final `done` are `critical`; `done` also starts the retention, after which the channel
 * closes (`unsubscribed 4404 expired`).
 */
import type { ChannelRegistry, ResolvedChannel } from "../channels/channel-registry.js";
import type { ChannelStore } from "../channels/channel-store.js";
import {
  jobChannel,
  type EnvLogData,
  type JobEventData,
  type JobEventType,
  type JobSnapshot,
} from "../contracts/jobs.js";
import type { Priority } from "../contracts/schemas.js";
import type { JobQueues } from "./job-queue.js";
import type { JobRecords } from "./job-records.js";

const PRIORITY: Record<JobEventType, Priority> = {
  state: "critical",
  done: "critical",
  log: "normal",
  progress: "low",
};
/** The keys outlive the retention a little, so that the close finds them. */
const EXPIRY_MARGIN_S = 60;

export function initialSnapshot(): JobSnapshot {
  return { state: "queued", progress: 0, attemptsMade: 0, lastLogLine: null };
}

export class JobChannels {
  constructor(
    private readonly store: ChannelStore,
    private readonly registry: ChannelRegistry,
    private readonly records: JobRecords,
    private readonly queues: Pick<JobQueues, "scheduleExpiry">,
    private readonly retentionS: number,
  ) {}

  target(jobId: string): ResolvedChannel {
    return this.registry.resolve(jobChannel(jobId));
  }

  /** The channel's snapshot now (undefined before the first event, or once it closed). */
  async snapshot(jobId: string): Promise<JobSnapshot | undefined> {
    const read = await this.store.read(this.target(jobId), { last: 0 });
    return read.snapshot as JobSnapshot | undefined;
  }

  async publish<T extends Exclude<JobEventType, "done">>(
    jobId: string,
    type: T,
    data: JobEventData[T],
    snapshot: JobSnapshot,
  ): Promise<void> {
    await this.store.publish(this.target(jobId), { type, data, priority: PRIORITY[type], snapshot });
  }

  /** A job's log lines on its environment's `env:<id>:logs`. */
  async publishEnvLogs(envId: string, data: EnvLogData): Promise<void> {
    await this.store.publish(this.registry.resolve(`env:${envId}:logs`), { type: "log", data, priority: PRIORITY.log });
  }

  /** The last event of a job: `done`, then the retention runs. Returns the final snapshot. */
  async finish(
    jobId: string,
    done: Omit<JobEventData["done"], "expiresAt">,
    snapshot: JobSnapshot,
  ): Promise<JobSnapshot> {
    const expiresAt = Date.now() + this.retentionS * 1000;
    const final: JobSnapshot = { ...snapshot, state: done.state, attemptsMade: done.attemptsMade, expiresAt };
    if (done.result !== undefined) final.result = done.result;
    if (done.failedReason !== undefined) final.failedReason = done.failedReason;
    const ttlS = this.retentionS + EXPIRY_MARGIN_S;
    await this.store.publish(this.target(jobId), {
      type: "done",
      data: { ...done, expiresAt },
      priority: PRIORITY.done,
      snapshot: final,
      ttlS,
    });
    await this.records.expireIn(jobId, ttlS);
    await this.queues.scheduleExpiry(jobId);
    return final;
  }

  /** A job that could not be created: its channel and record go, silently (its id was never given out). */
  async discard(jobId: string): Promise<void> {
    await this.store.discard(this.target(jobId), [this.records.key(jobId)]);
  }

  /** The retention ended: the channel, its history and the job's record go, subscribers are told. */
  async close(jobId: string): Promise<void> {
    await this.store.close(this.target(jobId), "expired", [this.records.key(jobId)]);
  }
}

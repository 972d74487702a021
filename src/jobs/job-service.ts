/**
 * The job API's operations (docs/protocol.md, "HTTP API"), for the HTTP routes of every gateway:
 * create (record the owner and environment, announce `queued` on the job channel, add to the
 * queue), read, cancel and the queue's stats. Authorization follows the job channel's rule:
 * the owner, or a token whose `envs` holds the job's environment (or scope admin).
 */
import { randomBytes } from "node:crypto";
import type { Job } from "bullmq";
import type { Principal } from "../auth/token-verifier.js";
import { hasEnv, maySeeJob } from "../auth/access.js";
import type { RedisClient } from "../cluster/redis-clients.js";
import type { Config } from "../config/load-config.js";
import { RoomcastError } from "../contracts/error-codes.js";
import { serialise } from "../contracts/schemas.js";
import {
  isFinalState,
  jobChannel,
  type CancelledJob,
  type CreateJobRequest,
  type CreatedJob,
  type JobSnapshot,
  type JobState,
  type JobStats,
  type JobView,
} from "../contracts/jobs.js";
import { publishCancel } from "./cancel-bus.js";
import { initialSnapshot, type JobChannels } from "./job-channel.js";
import { jobOptions, type JobQueues, type QueuedJobData } from "./job-queue.js";
import type { JobRecord, JobRecords } from "./job-records.js";

const ACTIVE_LISTED = 100;
const WAITING_STATES = new Set(["waiting", "delayed", "prioritized", "waiting-children"]);

/** Job ids: 16 url-safe characters, never all digits (BullMQ reserves those). */
export function newJobId(): string {
  return `j${randomBytes(12).toString("base64url").slice(0, 15)}`;
}

export interface JobServiceDeps {
  config: Config;
  queues: JobQueues;
  records: JobRecords;
  channels: JobChannels;
  /** For the cancel message. */
  redis: RedisClient;
  sharded: boolean;
}

/** The state the channel shows, or what BullMQ knows once the channel has none yet. */
function stateOf(bullState: string, snapshot: JobSnapshot | undefined, record: JobRecord): JobState {
  if (snapshot) return snapshot.state;
  if (bullState === "completed") return "completed";
  if (bullState === "failed") return record.cancelled ? "cancelled" : "failed";
  if (bullState === "active") return "active";
  return "queued";
}

export class JobService {
  constructor(private readonly deps: JobServiceDeps) {}

  /**
   * Adds a job for `owner`: record, `queued` on its channel, then the queue. All or nothing:
   * if a step fails, the record and the channel go again and the error goes up.
   */
  async enqueue(owner: string, request: CreateJobRequest, jobId = newJobId()): Promise<CreatedJob> {
    const { queues, records, channels, config } = this.deps;
    await records.create(jobId, { owner, envId: request.envId, name: request.name });
    try {
      await channels.publish(jobId, "state", { state: "queued", attemptsMade: 0 }, initialSnapshot());
      const data: QueuedJobData = {
        owner,
        data: request.data ?? null,
        ...(request.envId ? { envId: request.envId } : {}),
      };
      await queues.jobs.add(request.name, data, { ...jobOptions(config, request.opts ?? {}), jobId });
    } catch (err) {
      // The add may have been applied with its reply lost (a timeout): then the job exists and
      // a worker will run it, so its record and channel must stay.
      if (await queues.jobs.getJob(jobId).catch(() => undefined)) return { jobId, channel: jobChannel(jobId) };
      // The caller never learns the id, so no one can be subscribed: no close notice needed.
      // If Redis is away this fails too; the keys then expire (record in 7 days, channel with its history TTL).
      await channels.discard(jobId).catch(() => undefined);
      throw err;
    }
    return { jobId, channel: jobChannel(jobId) };
  }

  async create(principal: Principal, request: CreateJobRequest): Promise<CreatedJob> {
    // BullMQ stores the data as JSON: data it cannot serialise is the caller's 4400.
    serialise(request.data, "data");
    if (request.envId && !hasEnv(principal, request.envId))
      throw new RoomcastError("forbidden", `the token does not grant environment ${request.envId}`);
    if (!(await this.deps.records.isKnownProcessor(request.name))) {
      throw new RoomcastError(
        "not_found",
        `no worker runs jobs named ${request.name} (workers announce their processors when they start)`,
      );
    }
    return this.enqueue(principal.sub, request);
  }

  /** The job's record: 4404 for none, 4403 unless the principal may see it (as for its channel). */
  private async access(principal: Principal, jobId: string): Promise<JobRecord> {
    const record = /^[A-Za-z0-9_-]{1,100}$/.test(jobId) ? await this.deps.records.get(jobId) : undefined;
    if (!record) throw new RoomcastError("not_found", `job ${jobId} does not exist`);
    if (!this.allowed(principal, record)) throw new RoomcastError("forbidden", `not allowed to see job ${jobId}`);
    return record;
  }

  private allowed(principal: Principal, record: { owner: string; envId?: string | undefined }): boolean {
    return maySeeJob(principal, record);
  }

  async get(principal: Principal, jobId: string): Promise<JobView> {
    const record = await this.access(principal, jobId);
    const [job, snapshot] = await Promise.all([
      this.deps.queues.jobs.getJob(jobId),
      this.deps.channels.snapshot(jobId),
    ]);
    if (!job) throw new RoomcastError("not_found", `job ${jobId} does not exist`);
    const state = stateOf(await job.getState(), snapshot, record);
    const current = snapshot ?? initialSnapshot();
    const view: JobView = {
      jobId,
      name: job.name,
      channel: jobChannel(jobId),
      owner: record.owner,
      state,
      progress: current.progress,
      attemptsMade: job.attemptsMade,
      attempts: job.opts.attempts ?? 1,
      lastLogLine: current.lastLogLine,
      data: job.data.data,
      createdAt: job.timestamp,
    };
    if (record.envId) view.envId = record.envId;
    if (current.status !== undefined) view.status = current.status;
    if (job.processedOn) view.startedAt = job.processedOn;
    if (job.finishedOn) view.finishedAt = job.finishedOn;
    if (current.result !== undefined) view.result = current.result;
    else if (job.returnvalue !== undefined && job.returnvalue !== null) view.result = job.returnvalue;
    const failedReason = current.failedReason ?? (job.failedReason || undefined);
    if (failedReason !== undefined && state !== "completed") view.failedReason = failedReason;
    if (current.expiresAt !== undefined) view.expiresAt = current.expiresAt;
    return view;
  }

  /**
   * A queued (or waiting to retry) job is removed and ends `cancelled` at once; a running one
   * is aborted by its worker (`cancelling`, then `done` on its channel). A finished job stays
   * as it is.
   */
  async cancel(principal: Principal, jobId: string): Promise<CancelledJob> {
    const record = await this.access(principal, jobId);
    const { queues, records, channels, config } = this.deps;
    const job = await queues.jobs.getJob(jobId);
    const snapshot = await channels.snapshot(jobId);
    if (!job) throw new RoomcastError("not_found", `job ${jobId} does not exist`);
    const before = stateOf(await job.getState(), snapshot, record);
    if (isFinalState(before)) return { jobId, state: before };
    await records.markCancelled(jobId);
    if (WAITING_STATES.has(await job.getState()) && (await removed(job))) {
      await channels.finish(
        jobId,
        { state: "cancelled", attemptsMade: job.attemptsMade },
        snapshot ?? initialSnapshot(),
      );
      return { jobId, state: "cancelled" };
    }
    await publishCancel(this.deps.redis, config.redisPrefix, this.deps.sharded, jobId);
    return { jobId, state: "cancelling" };
  }

  async stats(principal: Principal): Promise<JobStats> {
    const { queues, channels, records } = this.deps;
    const [counts, active, processors] = await Promise.all([
      queues.jobs.getJobCounts("waiting", "active", "delayed", "prioritized", "completed", "failed"),
      queues.jobs.getActive(0, 999),
      records.knownProcessors(),
    ]);
    const visible = active
      .filter((job) => this.allowed(principal, { owner: job.data.owner, envId: job.data.envId }))
      .slice(0, ACTIVE_LISTED);
    const snapshots = await Promise.all(visible.map((job) => channels.snapshot(job.id!).catch(() => undefined)));
    return {
      counts: {
        waiting: counts.waiting ?? 0,
        active: counts.active ?? 0,
        delayed: counts.delayed ?? 0,
        prioritized: counts.prioritized ?? 0,
        completed: counts.completed ?? 0,
        failed: counts.failed ?? 0,
      },
      active: visible.map((job, i) => {
        const snapshot = snapshots[i];
        const entry: JobStats["active"][number] = {
          jobId: job.id!,
          name: job.name,
          progress: snapshot?.progress ?? 0,
          attempt: job.attemptsMade + 1,
        };
        if (job.data.envId) entry.envId = job.data.envId;
        if (snapshot?.status !== undefined) entry.status = snapshot.status;
        if (job.processedOn) entry.startedAt = job.processedOn;
        return entry;
      }),
      processors,
    };
  }
}

/** Removes a job that is not running; false when a worker took it meanwhile (it is locked). */
async function removed(job: Job): Promise<boolean> {
  try {
    await job.remove();
    return true;
  } catch {
    return false;
  }
}

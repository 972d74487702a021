/**
 * What roomcast keeps about a job besides BullMQ's own record: its owner and environment
 * (for channel and API authorization) and whether a cancel was asked for, in a hash
 * `<prefix>:{job:<id>}:owner` (the job channel's hash tag, so that closing the channel deletes
 * it in the same step); and which job names the workers of a queue run, in
 * `<prefix>:{processors}:<queue>`.
 */
import type { JobDirectory } from "../channels/channel-registry.js";
import type { RedisClient } from "../cluster/redis-clients.js";

export interface JobRecord {
  owner: string;
  envId?: string | undefined;
  name: string;
  cancelled: boolean;
}

/** A queued job's record outlives any sane wait for a worker, then goes. */
const UNFINISHED_TTL_S = 7 * 24 * 3600;
/** A job name stays accepted this long after the last worker that runs it was seen. */
const PROCESSOR_SEEN_MS = 24 * 3600 * 1000;

export function jobRecordKey(prefix: string, jobId: string): string {
  return `${prefix}:{job:${jobId}}:owner`;
}

export class JobRecords implements JobDirectory {
  private readonly processorsKey: string;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    queueName: string,
  ) {
    this.processorsKey = `${prefix}:{processors}:${queueName}`;
  }

  key(jobId: string): string {
    return jobRecordKey(this.prefix, jobId);
  }

  async create(jobId: string, record: Omit<JobRecord, "cancelled">): Promise<void> {
    const fields: Record<string, string> = { owner: record.owner, name: record.name };
    if (record.envId) fields.envId = record.envId;
    await this.redis.multi().hset(this.key(jobId), fields).expire(this.key(jobId), UNFINISHED_TTL_S).exec();
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const [owner, envId, name, cancelled] = await this.redis.hmget(
      this.key(jobId),
      "owner",
      "envId",
      "name",
      "cancelled",
    );
    return owner ? { owner, envId: envId ?? undefined, name: name ?? "", cancelled: cancelled === "1" } : undefined;
  }

  /** For job channel authorization. */
  async lookup(jobId: string): Promise<{ owner: string; envId?: string | undefined } | undefined> {
    return this.get(jobId);
  }

  async markCancelled(jobId: string): Promise<void> {
    await this.redis.hset(this.key(jobId), "cancelled", "1");
  }

  /** A finished job's record lasts as long as its channel. */
  async expireIn(jobId: string, seconds: number): Promise<void> {
    await this.redis.expire(this.key(jobId), seconds);
  }

  /** Workers: these job names run here (now). */
  async announceProcessors(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const now = String(Date.now());
    await this.redis.hset(this.processorsKey, Object.fromEntries(names.map((name) => [name, now])));
  }

  /** Job names some worker ran within the last day. */
  async knownProcessors(): Promise<string[]> {
    const all = await this.redis.hgetall(this.processorsKey);
    const since = Date.now() - PROCESSOR_SEEN_MS;
    return Object.entries(all)
      .filter(([, seen]) => Number(seen) >= since)
      .map(([name]) => name)
      .sort();
  }

  async isKnownProcessor(name: string): Promise<boolean> {
    const seen = await this.redis.hget(this.processorsKey, name);
    return seen !== null && Number(seen) >= Date.now() - PROCESSOR_SEEN_MS;
  }
}

/**
 * Job owners and environments for job channel authorization. The job API records them
 * in a hash `<prefix>:{job:<id>}:owner` with fields `owner` and `envId`.
 */
import type { RedisClient } from "../cluster/redis-clients.js";
import type { JobDirectory } from "./channel-registry.js";

export function jobOwnerKey(prefix: string, jobId: string): string {
  return `${prefix}:{job:${jobId}}:owner`;
}

export function redisJobDirectory(redis: RedisClient, prefix: string): JobDirectory {
  return {
    async lookup(jobId) {
      const [owner, envId] = await redis.hmget(jobOwnerKey(prefix, jobId), "owner", "envId");
      return owner ? { owner, envId: envId ?? undefined } : undefined;
    },
  };
}

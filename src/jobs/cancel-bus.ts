/**
 * Cancels reach the worker running a job over Redis pub/sub: the job API publishes the job
 * id on `<prefix>:{jobs}:cancel` (sharded pub/sub on a Redis Cluster, like channel feeds),
 * and every worker aborts the job if it runs it. A worker that starts the job later reads the
 * cancel from the job's record instead.
 */
import type { RedisClient } from "../cluster/redis-clients.js";

type PubSub = RedisClient & {
  spublish(channel: string, message: string): Promise<number>;
  ssubscribe(...channels: string[]): Promise<unknown>;
};

export function cancelChannel(prefix: string): string {
  return `${prefix}:{jobs}:cancel`;
}

export async function publishCancel(
  redis: RedisClient,
  prefix: string,
  sharded: boolean,
  jobId: string,
): Promise<void> {
  const channel = cancelChannel(prefix);
  await (sharded ? (redis as PubSub).spublish(channel, jobId) : redis.publish(channel, jobId));
}

/** Calls `onCancel` with each cancelled job id; resolves once subscribed. */
export async function listenForCancels(
  subscriber: RedisClient,
  prefix: string,
  sharded: boolean,
  onCancel: (jobId: string) => void,
): Promise<void> {
  const channel = cancelChannel(prefix);
  subscriber.on(sharded ? "smessage" : "message", (from: string, jobId: string) => {
    if (from === channel) onCancel(jobId);
  });
  await (sharded ? (subscriber as PubSub).ssubscribe(channel) : subscriber.subscribe(channel));
}

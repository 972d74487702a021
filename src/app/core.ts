/**
 * What a gateway and a worker both stand on, built in one place: the Redis connections (and
 * whether channel events travel on sharded pub/sub), the job records, the channel registry,
 * the publish path, and the job queues and channels.
 */
import type { Logger } from "pino";
import { ChannelRegistry } from "../channels/channel-registry.js";
import { ChannelStore } from "../channels/channel-store.js";
import { connectRedis, redisTimeoutsOf, type RedisClient, type RedisClients } from "../cluster/redis-clients.js";
import type { Config } from "../config/load-config.js";
import { JobChannels } from "../jobs/job-channel.js";
import { bullConnection, openJobQueues, type JobQueues } from "../jobs/job-queue.js";
import { JobRecords } from "../jobs/job-records.js";
import type { PublishPathMetrics } from "../metrics/metrics.js";
import type { CloseOrder } from "./close-order.js";

export interface Core {
  config: Config;
  log: Logger;
  redis: RedisClients;
  /** Channel events on sharded pub/sub (SPUBLISH): ROOMCAST_ADAPTER, or auto on a Redis Cluster. */
  sharded: boolean;
  records: JobRecords;
  registry: ChannelRegistry;
}

/** Connects to Redis (or fails with one line); Redis is closed last, in "close redis". */
export async function openCore(config: Config, log: Logger, closing: CloseOrder): Promise<Core> {
  const redis = await connectRedis(config.redisUrl!, log, redisTimeoutsOf(config));
  closing.add("close redis", "redis", () => redis.close());
  const sharded = config.adapter === "sharded" || (config.adapter === "auto" && redis.cluster);
  const records = new JobRecords(redis.commands, config.redisPrefix, config.queueName);
  return { config, log, redis, sharded, records, registry: new ChannelRegistry(config, records) };
}

/** The one publish path, measured with the process's metrics. */
export function channelStore(core: Core, metrics: PublishPathMetrics): ChannelStore {
  const { config } = core;
  return new ChannelStore(
    core.redis.commands,
    {
      prefix: config.redisPrefix,
      idempotencyTtlS: config.idempotencyTtlS,
      sharded: core.sharded,
      maxReadBytes: config.maxReadBytes,
    },
    metrics,
  );
}

/**
 * The job queues on a BullMQ connection of their own: `producer` (gateways adding jobs) fails
 * fast like our own clients; `worker` waits for Redis. Closed in "close queues".
 */
export function jobQueues(
  core: Core,
  role: "producer" | "worker",
  closing: CloseOrder,
): { queues: JobQueues; connect: () => RedisClient } {
  const connections: RedisClient[] = [];
  const connect = () => {
    const connection = bullConnection(core.redis.target, core.log, role, core.redis.timeouts);
    connections.push(connection);
    return connection;
  };
  const queues = openJobQueues(core.config, connect());
  closing.add("close queues", "job queues", async () => {
    await queues.close();
    await Promise.allSettled(connections.map((c) => c.quit().catch(() => c.disconnect())));
  });
  return { queues, connect };
}

export function jobChannels(core: Core, store: ChannelStore, queues: JobQueues): JobChannels {
  return new JobChannels(store, core.registry, core.records, queues, core.config.jobRetentionS);
}

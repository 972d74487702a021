/**
 * A test cluster: its own Redis and N real gateway processes. The Redis topology comes from
 * ROOMCAST_TEST_REDIS: `single` (default, one redis-server) or `cluster` (a Redis Cluster of
 * three masters with a replica each), so that one suite runs against both.
 */
import { startEmbeddedRedis } from "../../src/cluster/embedded-redis.js";
import { startGateway, type GatewayProcess } from "./gateway-process.js";
import { startRedisCluster } from "./redis-cluster.js";

export type RedisTopology = "single" | "cluster";

export const TOPOLOGY: RedisTopology = process.env.ROOMCAST_TEST_REDIS === "cluster" ? "cluster" : "single";

export interface TestRedis {
  url: string;
  /** Stops every Redis process of the topology. */
  stop(): Promise<void>;
}

export async function startTestRedis(topology: RedisTopology = TOPOLOGY): Promise<TestRedis> {
  return topology === "cluster" ? startRedisCluster() : startEmbeddedRedis();
}

export interface TestCluster {
  redis: TestRedis;
  gateways: GatewayProcess[];
  /** Starts one more replica on the same Redis. */
  addGateway(env?: Record<string, string>): Promise<GatewayProcess>;
  close(): Promise<void>;
}

export async function startCluster(options: { replicas?: number; env?: Record<string, string> } = {}): Promise<TestCluster> {
  const redis = await startTestRedis();
  const gateways: GatewayProcess[] = [];
  const addGateway = async (env: Record<string, string> = {}) => {
    const gateway = await startGateway({ redisUrl: redis.url, env: { ...options.env, ...env } });
    gateways.push(gateway);
    return gateway;
  };
  try {
    for (let i = 0; i < (options.replicas ?? 2); i++) await addGateway();
  } catch (err) {
    await Promise.all(gateways.map((g) => g.kill()));
    await redis.stop();
    throw err;
  }
  return {
    redis,
    gateways,
    addGateway,
    async close() {
      await Promise.all(gateways.map((g) => g.kill()));
      await redis.stop();
    },
  };
}

/**
 * A test cluster: its own Redis, N real gateway processes and M workers. The Redis topology comes from
 * ROOMCAST_TEST_REDIS: `single` (default, one redis-server) or `cluster` (a Redis Cluster of
 * three masters with a replica each), so that one suite runs against both.
 */
import { spawnSync } from "node:child_process";
import { startEmbeddedRedis } from "../../src/cluster/embedded-redis.js";
import { startGateway, startWorker, type GatewayProcess } from "./gateway-process.js";
import { startRedisCluster } from "./redis-cluster.js";

export type RedisTopology = "single" | "cluster";

export const TOPOLOGY: RedisTopology = process.env.ROOMCAST_TEST_REDIS === "cluster" ? "cluster" : "single";

/** Per-connection, per-user, per-IP (handshakes too) and HTTP limits off: for tests about something else. */
export const LIMITS_OFF = Object.freeze({
  ROOMCAST_RATE_LIMIT: "0",
  ROOMCAST_HTTP_RATE_LIMIT: "0",
  ROOMCAST_MAX_CONNECTIONS_PER_IP: "0",
  ROOMCAST_MAX_CONNECTIONS_PER_USER: "0",
  ROOMCAST_MAX_CONNECTIONS_PER_ENV: "0",
  ROOMCAST_MAX_UNAUTHENTICATED_PER_IP: "0",
});

export interface TestRedis {
  url: string;
  /** The loopback ports of its redis-server processes. */
  ports: number[];
  /** Stops every Redis process of the topology. */
  stop(): Promise<void>;
}

export async function startTestRedis(topology: RedisTopology = TOPOLOGY): Promise<TestRedis> {
  if (topology === "cluster") {
    const cluster = await startRedisCluster();
    return { url: cluster.url, ports: cluster.nodes.map((n) => n.port), stop: () => cluster.stop() };
  }
  const redis = await startEmbeddedRedis();
  return { url: redis.url, ports: [redis.port], stop: () => redis.stop() };
}

/** One command through redis-cli (`-c`: on a Redis Cluster it follows the key's slot); its output. */
export function redisCommand(redis: TestRedis, ...args: string[]): string {
  const out = spawnSync("redis-cli", ["-c", "-p", String(redis.ports[0]), ...args], { encoding: "utf8" });
  if (out.status !== 0) throw new Error(`redis-cli ${args.join(" ")}: ${out.stderr}`);
  return out.stdout.trim();
}

export interface TestCluster {
  redis: TestRedis;
  gateways: GatewayProcess[];
  workers: GatewayProcess[];
  /** Starts one more replica on the same Redis. */
  addGateway(env?: Record<string, string>): Promise<GatewayProcess>;
  /** Starts one more worker (sample processors on) on the same Redis. */
  addWorker(env?: Record<string, string>): Promise<GatewayProcess>;
  close(): Promise<void>;
}

export async function startCluster(
  options: { replicas?: number; workers?: number; env?: Record<string, string> } = {},
): Promise<TestCluster> {
  const redis = await startTestRedis();
  const gateways: GatewayProcess[] = [];
  const workers: GatewayProcess[] = [];
  const addGateway = async (env: Record<string, string> = {}) => {
    const gateway = await startGateway({ redisUrl: redis.url, env: { ...options.env, ...env } });
    gateways.push(gateway);
    return gateway;
  };
  const addWorker = async (env: Record<string, string> = {}) => {
    const worker = await startWorker({ redisUrl: redis.url, env: { ...options.env, ...env } });
    workers.push(worker);
    return worker;
  };
  const killAll = () => Promise.all([...gateways, ...workers].map((p) => p.kill()));
  try {
    for (let i = 0; i < (options.replicas ?? 2); i++) await addGateway();
    for (let i = 0; i < (options.workers ?? 0); i++) await addWorker();
  } catch (err) {
    await killAll();
    await redis.stop();
    throw err;
  }
  return {
    redis,
    gateways,
    workers,
    addGateway,
    addWorker,
    async close() {
      await killAll();
      await redis.stop();
    },
  };
}

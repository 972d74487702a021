/** A test cluster: its own redis-server and N real gateway processes. */
import { startEmbeddedRedis, type EmbeddedRedis } from "../../src/cluster/embedded-redis.js";
import { startGateway, type GatewayProcess } from "./gateway-process.js";

export interface TestCluster {
  redis: EmbeddedRedis;
  gateways: GatewayProcess[];
  /** Starts one more replica on the same Redis. */
  addGateway(env?: Record<string, string>): Promise<GatewayProcess>;
  close(): Promise<void>;
}

export async function startCluster(options: { replicas?: number; env?: Record<string, string> } = {}): Promise<TestCluster> {
  const redis = await startEmbeddedRedis();
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

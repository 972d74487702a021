/**
 * Fan-out with channels spread over Redis Cluster shards vs one Redis, on the same machine
 * in one run. Each topology gets two gateway replicas and the same load: subscribers (raw
 * WebSocket clients speaking Engine.IO/Socket.IO framing, in this process) on many channels,
 * and events published through the publish path itself (the way workers publish, no HTTP
 * hop). Reports publishes and deliveries per second, the CPU seconds of every Redis process
 * and gateway, and each shard's share of the Redis work: with one Redis all of it lands on
 * one core; with three shards it splits, and that is the headroom that grows with shards.
 * Also measures a gateway's memory per idle connection.
 *   npx tsx bench/shards.ts [--channels 200] [--subscribers 4] [--events 20000] [--idle 2000]
 */
import { readFileSync, mkdirSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WebSocket } from "ws";
import { mintToken } from "../src/auth/mint-token.js";
import { ChannelRegistry } from "../src/channels/channel-registry.js";
import { ChannelStore } from "../src/channels/channel-store.js";
import { startEmbeddedRedis } from "../src/cluster/embedded-redis.js";
import { connectRedis } from "../src/cluster/redis-clients.js";
import { loadConfig } from "../src/config/load-config.js";
import { createLogger } from "../src/logging/logger.js";
import { startGateway, TEST_SECRET, type GatewayProcess } from "../test/support/gateway-process.js";
import { startRedisCluster } from "../test/support/redis-cluster.js";
import { rawClient } from "./raw-client.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const CHANNELS = arg("channels", 200);
const SUBSCRIBERS_PER_CHANNEL = arg("subscribers", 4);
const EVENTS = arg("events", 20_000);
const IDLE = arg("idle", 2000);
const CONCURRENCY = 64;

const TICKS = 100; // USER_HZ
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}
function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("VmRSS:"))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

interface TopologyResult {
  topology: string;
  shards: number;
  publishesPerSecond: number;
  deliveriesPerSecond: number;
  delivered: number;
  expected: number;
  redisCpuSeconds: number[];
  gatewayCpuSeconds: number[];
  clientCpuSeconds: number;
  busiestShardShare: number;
  redisCpuMicrosPerPublish: number;
  gatewayCpuMicrosPerDelivery: number;
}

async function runTopology(topology: "single" | "cluster", configPath: string): Promise<TopologyResult> {
  const redis =
    topology === "single" ? await startEmbeddedRedis() : await startRedisCluster({ masters: 3, replicas: 0 });
  const redisPids =
    topology === "single"
      ? [(redis as Awaited<ReturnType<typeof startEmbeddedRedis>>).process.pid!]
      : (redis as Awaited<ReturnType<typeof startRedisCluster>>).nodes.map((n) => n.process.pid!);
  const env = {
    ROOMCAST_CONFIG: configPath,
    ROOMCAST_MAX_CONNECTIONS_PER_NODE: "0",
    ROOMCAST_MAX_SUBSCRIPTIONS: "0",
    ROOMCAST_MAX_CONNECTIONS_PER_USER: "0",
    ROOMCAST_MAX_CONNECTIONS_PER_IP: "0",
  };
  const gateways: GatewayProcess[] = [];
  const sockets: WebSocket[] = [];
  try {
    gateways.push(await startGateway({ redisUrl: redis.url, env }), await startGateway({ redisUrl: redis.url, env }));
    const token = await mintToken({ secret: TEST_SECRET, sub: "bench" });
    let delivered = 0;
    const channels = Array.from({ length: CHANNELS }, (_, i) => `bench:c${i}`);
    let k = 0;
    for (const channel of channels) {
      for (let s = 0; s < SUBSCRIBERS_PER_CHANNEL; s++)
        sockets.push(await rawClient(gateways[k++ % 2]!.url, token, channel, () => delivered++));
    }
    // Publish through the publish path itself, as a worker does.
    const config = loadConfig({
      env: { REDIS_URL: redis.url, ROOMCAST_CONFIG: configPath, ROOMCAST_JWT_SECRET: TEST_SECRET },
    });
    const clients = await connectRedis(redis.url, createLogger({ level: "warn", pretty: false }));
    const store = new ChannelStore(clients.commands, {
      prefix: config.redisPrefix,
      idempotencyTtlS: config.idempotencyTtlS,
      sharded: clients.cluster,
      maxReadBytes: config.maxReadBytes,
    });
    const registry = new ChannelRegistry(config, { lookup: async () => undefined });
    const targets = channels.map((c) => registry.resolve(c));
    const expected = EVENTS * SUBSCRIBERS_PER_CHANNEL;
    const redisBefore = redisPids.map(cpuSeconds);
    const gatewaysBefore = gateways.map((g) => cpuSeconds(g.process.pid!));
    const clientBefore = process.cpuUsage();
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < EVENTS) {
          const n = next++;
          await store.publish(targets[n % targets.length]!, { type: "tick", data: { n, pad: "x".repeat(100) } });
        }
      }),
    );
    const publishedAt = performance.now();
    while (delivered < expected && performance.now() - publishedAt < 60_000)
      await new Promise((r) => setTimeout(r, 10));
    const seconds = (performance.now() - started) / 1000;
    const redisCpu = redisPids.map((pid, i) => cpuSeconds(pid) - redisBefore[i]!);
    const gatewayCpu = gateways.map((g, i) => cpuSeconds(g.process.pid!) - gatewaysBefore[i]!);
    const client = process.cpuUsage(clientBefore);
    await clients.close();
    const totalRedis = redisCpu.reduce((a, b) => a + b, 0);
    const totalGateway = gatewayCpu.reduce((a, b) => a + b, 0);
    return {
      topology,
      shards: redisPids.length,
      publishesPerSecond: EVENTS / ((publishedAt - started) / 1000),
      deliveriesPerSecond: delivered / seconds,
      delivered,
      expected,
      redisCpuSeconds: redisCpu,
      gatewayCpuSeconds: gatewayCpu,
      clientCpuSeconds: (client.user + client.system) / 1e6,
      busiestShardShare: Math.max(...redisCpu) / Math.max(totalRedis, 1e-9),
      redisCpuMicrosPerPublish: (totalRedis / EVENTS) * 1e6,
      gatewayCpuMicrosPerDelivery: (totalGateway / Math.max(delivered, 1)) * 1e6,
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    await Promise.all(gateways.map((g) => g.kill()));
    await redis.stop();
  }
}

async function idleMemory(): Promise<{ connections: number; bytesPerConnection: number }> {
  const redis = await startEmbeddedRedis();
  const gateway = await startGateway({
    redisUrl: redis.url,
    env: {
      ROOMCAST_MAX_CONNECTIONS_PER_NODE: "0",
      ROOMCAST_MAX_CONNECTIONS_PER_USER: "0",
      ROOMCAST_MAX_CONNECTIONS_PER_IP: "0",
    },
  });
  const sockets: WebSocket[] = [];
  try {
    const token = await mintToken({ secret: TEST_SECRET, sub: "idle" });
    // Warm up (first connections load code paths), then measure the slope.
    for (let i = 0; i < 100; i++) sockets.push(await rawClient(gateway.url, token, undefined, () => undefined));
    await new Promise((r) => setTimeout(r, 1000));
    const before = rssBytes(gateway.process.pid!);
    for (let i = 0; i < IDLE; i++) sockets.push(await rawClient(gateway.url, token, undefined, () => undefined));
    await new Promise((r) => setTimeout(r, 1000));
    const after = rssBytes(gateway.process.pid!);
    return { connections: IDLE, bytesPerConnection: (after - before) / IDLE };
  } finally {
    for (const ws of sockets) ws.terminate();
    await gateway.kill();
    await redis.stop();
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "roomcast-bench-"));
  const configPath = join(dir, "bench.yaml");
  writeFileSync(configPath, "namespaces:\n  bench:\n    subscribe: { match: any }\n    historySize: 100\n");
  const results = [await runTopology("single", configPath), await runTopology("cluster", configPath)];
  const memory = await idleMemory();
  const base = results[0]!;
  const f = (n: number, d = 0) => n.toFixed(d);
  console.log(
    `\n${CHANNELS} channels x ${SUBSCRIBERS_PER_CHANNEL} subscribers on 2 gateways, ${EVENTS} events published through the publish path (${CONCURRENCY} in flight)\n`,
  );
  console.log(
    "| topology | publishes/s | deliveries/s (ratio) | Redis CPU s per process | busiest shard's share | Redis CPU us/publish | gateway CPU us/delivery | client CPU s |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.topology} (${r.shards} ${r.shards === 1 ? "process" : "shards"}) | ${f(r.publishesPerSecond)} | ${f(r.deliveriesPerSecond)} (${f(r.deliveriesPerSecond / base.deliveriesPerSecond, 2)}x) | ${r.redisCpuSeconds.map((c) => f(c, 2)).join(" / ")} | ${f(r.busiestShardShare * 100)}% | ${f(r.redisCpuMicrosPerPublish, 1)} | ${f(r.gatewayCpuMicrosPerDelivery, 1)} | ${f(r.clientCpuSeconds, 2)} |`,
    );
  }
  console.log(
    `\nidle memory: ${f(memory.bytesPerConnection / 1024, 1)} KiB RSS per WebSocket connection (${memory.connections} connections on one gateway)`,
  );
  for (const r of results)
    if (r.delivered !== r.expected) console.log(`WARNING: ${r.topology} delivered ${r.delivered} of ${r.expected}`);
  mkdirSync("bench/results", { recursive: true });
  const file = `bench/results/shards-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
  writeFileSync(
    file,
    JSON.stringify(
      { channels: CHANNELS, subscribersPerChannel: SUBSCRIBERS_PER_CHANNEL, events: EVENTS, results, memory },
      null,
      2,
    ),
  );
  console.log(`\nwrote ${file}`);
  process.exit(results.every((r) => r.delivered === r.expected) ? 0 : 1);
}

void main();

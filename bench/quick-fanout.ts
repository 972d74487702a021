/**
 * A first, rough fan-out figure (the real benchmark suite comes later): its own Redis, two
 * gateway replicas, S subscribers split over both on one channel (raw WebSocket clients
 * speaking Engine.IO/Socket.IO framing, so the client side stays cheap), E events published
 * over HTTP by a few concurrent publishers. Prints deliveries per second and CPU seconds.
 *   npx tsx bench/quick-fanout.ts [subscribers=500] [events=2000]
 */
import { rawClient } from "./raw-client.js";
import { startEmbeddedRedis } from "../src/cluster/embedded-redis.js";
import { mintToken } from "../src/auth/mint-token.js";
import { startGateway, TEST_SECRET } from "../test/support/gateway-process.js";

const subscribers = Number(process.argv[2] ?? 500);
const events = Number(process.argv[3] ?? 2000);
const channel = "user:bench";

async function main() {
  const redis = await startEmbeddedRedis();
  const gateways = await Promise.all([0, 1].map(() => startGateway({ redisUrl: redis.url, env: { ROOMCAST_MAX_CONNECTIONS_PER_NODE: "0", ROOMCAST_HTTP_RATE_LIMIT: "0", ROOMCAST_MAX_CONNECTIONS_PER_USER: "0", ROOMCAST_MAX_CONNECTIONS_PER_IP: "0" } })));
  const userToken = await mintToken({ secret: TEST_SECRET, sub: "bench" });
  const publisherToken = await mintToken({ secret: TEST_SECRET, sub: "publisher", scope: "publish" });
  let delivered = 0;
  for (let i = 0; i < subscribers; i++) await rawClient(gateways[i % 2]!.url, userToken, channel, () => delivered++);
  const expected = subscribers * events;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  const publish = async (base: string) => {
    while (next < events) {
      next++;
      const res = await fetch(`${base}/v1/channels/${channel}/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${publisherToken}`, "content-type": "application/json" },
        body: JSON.stringify({ type: "tick", data: { n: next, pad: "x".repeat(64) } }),
      });
      if (res.status !== 202) throw new Error(`publish answered ${res.status}`);
    }
  };
  await Promise.all([0, 1, 2, 3].map((i) => publish(gateways[i % 2]!.url)));
  const published = performance.now();
  while (delivered < expected && performance.now() - published < 30_000) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  console.log(`subscribers ${subscribers} (2 replicas), events ${events}, delivered ${delivered}/${expected}`);
  console.log(`publish rate ${(events / ((published - started) / 1000)).toFixed(0)} events/s over HTTP`);
  console.log(`deliveries ${(delivered / seconds).toFixed(0)}/s over ${seconds.toFixed(2)} s; client process CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s`);
  await Promise.all(gateways.map((g) => g.kill()));
  await redis.stop();
  process.exit(delivered === expected ? 0 : 1);
}

void main();

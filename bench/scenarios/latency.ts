/**
 * End-to-end latency at a fixed offered load: S subscribers on one channel over two replicas,
 * a publisher posting R events per second (S × R deliveries per second) for D seconds. One
 * client in ten reads each event's publish time (the publisher's clock: same machine) and
 * records now minus it: p50, p90, p99 and max over the whole run.
 */
import { quantile } from "../lib/histogram.js";
import { sleep } from "../lib/proc.js";
import type { SystemKey } from "../systems/systems.js";
import { clientSpecs, until, withSystem, type Profile, type ScenarioResult } from "./harness.js";

export async function latency(key: SystemKey, profile: Profile, deliveriesPerSecond: number): Promise<ScenarioResult> {
  const subscribers = 500;
  const rate = deliveriesPerSecond / subscribers;
  const seconds = profile === "full" ? 20 : 8;
  return withSystem(key, { replicas: 2, loadgens: 2 }, async ({ system, clients, publisher, meter }) => {
    const channel = system.channel(0);
    const urls = system.replicas.map((r) => r.url);
    const connected = await clients.connect(
      { protocol: system.protocol, urls, concurrency: 64, sampleEvery: 10, track: false },
      await clientSpecs(system, subscribers, () => [channel]),
    );
    await sleep(500);
    // Warm-up: a second of the same load, not measured.
    await publisher.publish({
      kind: system.protocol,
      urls,
      headers: system.publishHeaders,
      channels: [channel],
      count: Math.ceil(rate),
      rate,
      concurrency: 64,
    });
    await sleep(1000);
    await clients.reset();
    await publisher.reset();
    const cpu = meter();
    const count = Math.round(rate * seconds);
    await publisher.publish({
      kind: system.protocol,
      urls,
      headers: system.publishHeaders,
      channels: [channel],
      count,
      rate,
      concurrency: 64,
    });
    await until(async () => (await clients.stats()).deliveries >= connected.connected * count, 10_000, 100);
    const stats = await clients.stats();
    const pub = await publisher.stats();
    const used = cpu.stop();
    const h = stats.latency;
    return {
      scenario: `latency at ${deliveriesPerSecond / 1000}k deliveries/s`,
      system: key,
      figures: {
        offered_deliveries_per_s: deliveriesPerSecond,
        achieved_deliveries_per_s: stats.deliveries / ((stats.lastDeliveryAt - stats.firstDeliveryAt) / 1000),
        p50_ms: quantile(h, 0.5),
        p90_ms: quantile(h, 0.9),
        p99_ms: quantile(h, 0.99),
        max_ms: h.max,
        publish_p50_ms: quantile(pub.publishLatency, 0.5),
        samples: h.count,
        delivered_share: stats.deliveries / (connected.connected * count),
      },
      cpu: used,
      notes: stats.errors.slice(0, 3),
    };
  });
}

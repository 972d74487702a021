/**
 * Many channels: C channels with 3 subscribers each (clients subscribed to 10 channels each,
 * over two replicas), a publisher posting R events per second round robin over the channels
 * for D seconds. Deliveries per second and latency (one client in ten sampled).
 */
import { quantile } from "../lib/histogram.js";
import { sleep } from "../lib/proc.js";
import type { SystemKey } from "../systems/systems.js";
import { clientSpecs, until, withSystem, type Profile, type ScenarioResult } from "./harness.js";

const PER_CHANNEL = 3;
const PER_CLIENT = 10;

export async function manyChannels(key: SystemKey, profile: Profile): Promise<ScenarioResult> {
  const channels = profile === "full" ? 10_000 : 2000;
  const clientsCount = (channels * PER_CHANNEL) / PER_CLIENT;
  const rate = profile === "full" ? 3000 : 1000;
  const seconds = profile === "full" ? 15 : 6;
  return withSystem(key, { replicas: 2, loadgens: 2 }, async ({ system, clients, publisher, meter }) => {
    const names = Array.from({ length: channels }, (_, i) => system.channel(i));
    const urls = system.replicas.map((r) => r.url);
    // Client i takes channels i*10 .. i*10+9 (mod C): each channel ends up with 3 subscribers.
    const specs = await clientSpecs(system, clientsCount, (i) =>
      Array.from({ length: PER_CLIENT }, (_, k) => names[(i * PER_CLIENT + k) % channels]!),
    );
    const connected = await clients.connect(
      { protocol: system.protocol, urls, concurrency: 32, sampleEvery: 10, track: false },
      specs,
    );
    await sleep(1000);
    // Warm-up: a second of the same load, not measured.
    await publisher.publish({
      kind: system.protocol,
      urls,
      headers: system.publishHeaders,
      channels: names,
      count: Math.ceil(rate),
      rate,
      concurrency: 64,
    });
    await sleep(1000);
    await clients.reset();
    await publisher.reset();
    const cpu = meter();
    const count = rate * seconds;
    await publisher.publish({
      kind: system.protocol,
      urls,
      headers: system.publishHeaders,
      channels: names,
      count,
      rate,
      concurrency: 64,
    });
    const expected = count * PER_CHANNEL * (connected.connected / clientsCount);
    await until(async () => (await clients.stats()).deliveries >= expected, 10_000, 100);
    const stats = await clients.stats();
    const pub = await publisher.stats();
    const used = cpu.stop();
    return {
      scenario: "many channels",
      system: key,
      figures: {
        channels,
        subscriptions: connected.connected * PER_CLIENT,
        deliveries_per_s: stats.deliveries / ((stats.lastDeliveryAt - stats.firstDeliveryAt) / 1000),
        p50_ms: quantile(stats.latency, 0.5),
        p99_ms: quantile(stats.latency, 0.99),
        publish_p50_ms: quantile(pub.publishLatency, 0.5),
        delivered_share: stats.deliveries / expected,
      },
      cpu: used,
      notes: [
        ...(connected.failed ? [`${connected.failed} clients failed: ${connected.errors.slice(0, 2).join("; ")}`] : []),
        ...stats.errors.slice(0, 3),
      ],
    };
  });
}

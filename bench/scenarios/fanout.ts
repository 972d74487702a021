/**
 * Fan-out throughput: S subscribers on one channel, half on each of two replicas; E events
 * published over HTTP as fast as 16 requests in flight allow (a bounded burst: it stays under
 * roomcast's slow-consumer limit of 1000 queued packets). Deliveries per second from the first
 * publish to the last delivery.
 */
import { sleep } from "../lib/proc.js";
import type { SystemKey } from "../systems/systems.js";
import { clientSpecs, until, WARMUP_EVENTS, withSystem, type Profile, type ScenarioResult } from "./harness.js";

export async function fanout(key: SystemKey, profile: Profile): Promise<ScenarioResult> {
  const subscribers = 1000;
  const events = profile === "full" ? 500 : 200;
  return withSystem(key, { replicas: 2, loadgens: 2 }, async ({ system, clients, publisher, meter }) => {
    const channel = system.channel(0);
    const urls = system.replicas.map((r) => r.url);
    const connected = await clients.connect(
      { protocol: system.protocol, urls, concurrency: 64, sampleEvery: 0, track: false },
      await clientSpecs(system, subscribers, () => [channel]),
    );
    await sleep(500);
    await publisher.publish({
      kind: system.protocol,
      urls,
      headers: system.publishHeaders,
      channels: [channel],
      count: WARMUP_EVENTS,
      rate: 0,
      concurrency: 16,
    });
    await until(async () => (await clients.stats()).deliveries >= connected.connected * WARMUP_EVENTS, 20_000, 100);
    await clients.reset();
    await publisher.reset();
    const cpu = meter();
    await publisher.publish({
      kind: system.protocol,
      urls,
      headers: system.publishHeaders,
      channels: [channel],
      count: events,
      rate: 0,
      concurrency: 16,
    });
    const expected = connected.connected * events;
    const complete = await until(async () => (await clients.stats()).deliveries >= expected, 60_000, 100);
    const stats = await clients.stats();
    const pub = await publisher.stats();
    const used = cpu.stop();
    const seconds = (stats.lastDeliveryAt - pub.firstPublishAt) / 1000;
    return {
      scenario: "fan-out",
      system: key,
      figures: {
        subscribers: connected.connected,
        events,
        deliveries: stats.deliveries,
        deliveries_per_s: stats.deliveries / seconds,
        server_cpu_us_per_delivery: (used.servers * 1e6) / stats.deliveries,
      },
      cpu: used,
      notes: [
        ...(complete ? [] : [`incomplete: ${stats.deliveries} of ${expected} deliveries`]),
        ...stats.errors.slice(0, 3),
        ...pub.errors.slice(0, 3),
      ],
    };
  });
}

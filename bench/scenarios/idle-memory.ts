/**
 * Idle memory per connection: one replica, N clients connected (authenticated where the
 * system authenticates) and each subscribed to a channel of its own, then RSS and V8 heap
 * after a full GC, less the same before the clients came. RSS lags behind the heap (V8 gives
 * pages back some seconds after a GC): the lowest of five samples a second apart is taken.
 */
import { sleep } from "../lib/proc.js";
import type { SystemKey } from "../systems/systems.js";
import { clientSpecs, withSystem, type Profile, type ScenarioResult } from "./harness.js";

export async function idleMemory(key: SystemKey, profile: Profile): Promise<ScenarioResult> {
  const n = profile === "full" ? 10_000 : 2000;
  return withSystem(key, { replicas: 1, loadgens: 4 }, async ({ system, clients, meter }) => {
    const replica = system.replicas[0]!;
    await sleep(500);
    const settled = async () => {
      let best = await replica.memory();
      for (let i = 0; i < 4; i++) {
        await sleep(1000);
        const sample = await replica.memory();
        const heapUsed =
          sample.heapUsed === undefined || best.heapUsed === undefined
            ? undefined
            : Math.min(sample.heapUsed, best.heapUsed);
        if (sample.rss < best.rss) best = { rss: sample.rss, ...(heapUsed === undefined ? {} : { heapUsed }) };
      }
      return best;
    };
    const before = await settled();
    const cpu = meter();
    const specs = await clientSpecs(system, n, (i) => [system.channel(i)]);
    const connected = await clients.connect(
      { protocol: system.protocol, urls: [replica.url], concurrency: 64, sampleEvery: 0, track: false },
      specs,
    );
    await sleep(1000);
    const after = await settled();
    const used = cpu.stop();
    const notes =
      connected.failed > 0
        ? [`${connected.failed} connections failed: ${connected.errors.slice(0, 3).join("; ")}`]
        : [];
    const figures: Record<string, number> = {
      connections: connected.connected,
      rss_per_connection_bytes: (after.rss - before.rss) / connected.connected,
    };
    if (after.heapUsed !== undefined && before.heapUsed !== undefined)
      figures.heap_per_connection_bytes = (after.heapUsed - before.heapUsed) / connected.connected;
    return { scenario: "idle memory", system: key, figures, cpu: used, notes };
  });
}

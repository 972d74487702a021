/**
 * Connection rate: N clients open a WebSocket and complete the Socket.IO handshake (roomcast:
 * JWT verification and the cluster-wide quota scripts; Centrifugo: its JWT), 64 handshakes in
 * flight at a time, on one replica. Connections per second from the first to the last.
 */
import { nowMs, sleep } from "../lib/proc.js";
import type { SystemKey } from "../systems/systems.js";
import { clientSpecs, withSystem, type Profile, type ScenarioResult } from "./harness.js";

export async function connectRate(key: SystemKey, profile: Profile): Promise<ScenarioResult> {
  const n = profile === "full" ? 5000 : 1500;
  return withSystem(key, { replicas: 1, loadgens: 2 }, async ({ system, clients, meter }) => {
    // Warm-up: 300 handshakes, closed again, before the measured ones.
    const url = system.replicas[0]!.url;
    await clients.connect(
      { protocol: system.protocol, urls: [url], concurrency: 64, sampleEvery: 0, track: false },
      await clientSpecs(system, 300, () => [], n),
    );
    await clients.closeClients();
    await clients.reset();
    await sleep(500);
    const specs = await clientSpecs(system, n, () => []);
    const cpu = meter();
    const started = nowMs();
    const connected = await clients.connect(
      { protocol: system.protocol, urls: [url], concurrency: 64, sampleEvery: 0, track: false },
      specs,
    );
    const seconds = (nowMs() - started) / 1000;
    const used = cpu.stop();
    return {
      scenario: "connection rate",
      system: key,
      figures: {
        connections: connected.connected,
        connections_per_s: connected.connected / seconds,
        server_cpu_ms_per_connection: (used.servers * 1000) / connected.connected,
      },
      cpu: used,
      notes: connected.failed > 0 ? [`${connected.failed} failed: ${connected.errors.slice(0, 3).join("; ")}`] : [],
    };
  });
}

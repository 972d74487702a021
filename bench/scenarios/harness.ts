/**
 * What every scenario shares: a fresh Redis, the system under test, load generators in their
 * own processes, CPU accounting of servers, Redis and clients over the measured window, and
 * clean-up whatever happens.
 */
import { startEmbeddedRedis, type EmbeddedRedis } from "../../src/cluster/embedded-redis.js";
import { startPool, type Pool } from "../lib/loadgen-pool.js";
import { cpuMeter } from "../lib/proc.js";
import { startSystem, type SystemHandle, type SystemKey } from "../systems/systems.js";

export type Profile = "quick" | "full";

export interface Cpu {
  servers: number;
  redis: number;
  clients: number;
}

export interface ScenarioResult {
  scenario: string;
  system: SystemKey;
  /** Figures by name (units in the name: _per_s, _ms, _bytes, ...). */
  figures: Record<string, number>;
  cpu: Cpu;
  notes: string[];
}

export interface Run {
  redis: EmbeddedRedis;
  system: SystemHandle;
  /** Subscribers' load generators. */
  clients: Pool;
  /** The publisher, in a process of its own. */
  publisher: Pool;
  /** Starts the CPU window; stop() returns the seconds used since. */
  meter(): { stop(): Cpu };
}

export async function withSystem<T>(
  key: SystemKey,
  options: { replicas: number; loadgens: number; env?: Record<string, string> },
  body: (run: Run) => Promise<T>,
): Promise<T> {
  const redis = await startEmbeddedRedis();
  let system: SystemHandle | undefined;
  let clients: Pool | undefined;
  let publisher: Pool | undefined;
  try {
    system = await startSystem(key, {
      redisUrl: redis.url,
      replicas: options.replicas,
      ...(options.env ? { env: options.env } : {}),
    });
    [clients, publisher] = await Promise.all([startPool(options.loadgens), startPool(1)]);
    const run: Run = {
      redis,
      system,
      clients,
      publisher,
      meter() {
        const servers = cpuMeter(() => system!.replicas.map((r) => r.pid));
        const redisCpu = cpuMeter(() => [redis.process.pid!]);
        const loadgens = cpuMeter(() => [...clients!.pids(), ...publisher!.pids()]);
        return {
          stop: () => ({
            servers: servers.stop().reduce((a, b) => a + b, 0),
            redis: redisCpu.stop().reduce((a, b) => a + b, 0),
            clients: loadgens.stop().reduce((a, b) => a + b, 0),
          }),
        };
      },
    };
    return await body(run);
  } finally {
    await clients?.stop();
    await publisher?.stop();
    await system?.stop();
    await redis.stop();
    // Let the kernel close what the processes left before the next scenario measures anything.
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Client specs: client i gets `channels(i)` and its own token. */
export async function clientSpecs(system: SystemHandle, count: number, channels: (i: number) => string[], offset = 0) {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => ({ token: await system.token(offset + i), channels: channels(i) })),
  );
}

/**
 * Warm-up before a measurement, for every system alike: the first requests of a fresh process
 * run unoptimised code (and roomcast's Lua scripts are loaded then), which would weigh on
 * short runs.
 */
export const WARMUP_EVENTS = 100;

/** Waits until `done()` or the timeout; resolves whether it got there. */
export async function until(done: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await done()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return done();
}

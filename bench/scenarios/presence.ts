/**
 * Presence at scale (roomcast only; the baselines have none): N clients of N users, spread over
 * two replicas, all subscribed to one channel of a presence namespace (`lobby`, without
 * join/leave events: N joins to N subscribers would be N² deliveries). Then, from one more
 * client, `presence_stats` requests one after another (the answer time a client sees, p50 and
 * p99), the same over HTTP, `presence` (above the member limit: the counts only), how long the
 * connections took to connect and join, the servers' and Redis's CPU over one lease of idling
 * (presence renewals, quota renewals and heartbeats), and the Redis memory per connection
 * (presence and quota entries).
 */
import { io } from "socket.io-client";
import { emptyHistogram, quantile, record } from "../lib/histogram.js";
import { nowMs, sleep } from "../lib/proc.js";
import { clientSpecs, until, withSystem, type Profile, type ScenarioResult } from "./harness.js";

const CHANNEL = "lobby:all";
const REQUESTS = 1000;
/** ROOMCAST_PRESENCE_LEASE_S of the run (the default). */
const LEASE_S = 15;

type Stats = { ok: boolean; users?: number; connections?: number };

export async function presence(profile: Profile): Promise<ScenarioResult> {
  const n = profile === "full" ? 20_000 : 5000;
  // The probe sends its requests back to back: over the per-connection rate limit, raised here.
  const env = { ROOMCAST_RATE_LIMIT: "100000", ROOMCAST_RATE_BURST: "100000" };
  return withSystem("roomcast", { replicas: 2, loadgens: 4, env }, async ({ redis, system, clients, meter }) => {
    const url = system.replicas[0]!.url;
    const memoryBefore = await redisUsedMemory(redis.url);
    const started = nowMs();
    const connected = await clients.connect(
      { protocol: "roomcast", urls: system.replicas.map((r) => r.url), concurrency: 64, sampleEvery: 0, track: false },
      await clientSpecs(system, n, () => [CHANNEL]),
    );
    const probe = io(url, { auth: { token: await system.token(n) }, transports: ["websocket"], reconnection: false });
    try {
      await new Promise<void>((resolve, reject) => {
        probe.once("connect", () => resolve());
        probe.once("connect_error", reject);
      });
      const stats = () => probe.timeout(5000).emitWithAck("presence_stats", { channel: CHANNEL }) as Promise<Stats>;
      // Until every join counts (each is in before its subscribe answer: this is at once).
      await until(async () => (await stats()).users === connected.connected, 60_000, 200);
      const joinSeconds = (nowMs() - started) / 1000;
      const socketLatency = await timed(REQUESTS, async () => check(await stats(), connected.connected));
      const token = await system.token(n);
      const httpLatency = await timed(REQUESTS, async () => {
        const res = await fetch(`${url}/v1/channels/${encodeURIComponent(CHANNEL)}/presence/stats`, {
          headers: { authorization: `Bearer ${token}` },
        });
        check((await res.json()) as Stats, connected.connected);
      });
      const membersLatency = await timed(100, async () => {
        const answer = (await probe.timeout(5000).emitWithAck("presence", { channel: CHANNEL })) as {
          members?: unknown[];
        };
        if (answer.members !== undefined) throw new Error("a member list above the member limit");
      });
      // N idle connections for one lease: presence renewals, quota renewals and heartbeats.
      const cpu = meter();
      await sleep(LEASE_S * 1000);
      const used = cpu.stop();
      const memoryAfter = await redisUsedMemory(redis.url);
      return {
        scenario: "presence",
        system: "roomcast" as const,
        figures: {
          connections: connected.connected,
          seconds_to_connect_and_join: joinSeconds,
          presence_stats_p50_ms: quantile(socketLatency, 0.5),
          presence_stats_p99_ms: quantile(socketLatency, 0.99),
          http_presence_stats_p99_ms: quantile(httpLatency, 0.99),
          presence_counts_only_p99_ms: quantile(membersLatency, 0.99),
          idle_cpu_us_per_connection_per_lease: ((used.servers + used.redis) * 1e6) / connected.connected,
          redis_bytes_per_connection: (memoryAfter - memoryBefore) / connected.connected,
        },
        cpu: used,
        notes: connected.failed > 0 ? [`${connected.failed} failed: ${connected.errors.slice(0, 3).join("; ")}`] : [],
      };
    } finally {
      probe.close();
    }
  });
}

function check(answer: Stats, users: number): void {
  if (answer.users !== users) throw new Error(`presence_stats answered ${JSON.stringify(answer)}, not ${users} users`);
}

/** `count` calls one after another (after 50 to warm up): their durations. */
async function timed(count: number, call: () => Promise<void>) {
  for (let i = 0; i < 50; i++) await call();
  const histogram = emptyHistogram();
  for (let i = 0; i < count; i++) {
    const t0 = nowMs();
    await call();
    record(histogram, nowMs() - t0);
  }
  return histogram;
}

/** Redis's used_memory (includes the connections' quota entries, counted as part of a connection's cost). */
async function redisUsedMemory(url: string): Promise<number> {
  const { Redis } = await import("ioredis");
  const redis = new Redis(url);
  try {
    const info = await redis.info("memory");
    return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
  } finally {
    redis.disconnect();
  }
}

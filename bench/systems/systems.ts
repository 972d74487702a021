/**
 * The systems the benchmarks compare, each started on a Redis the run gives it, with N
 * replicas on free loopback ports:
 * - `roomcast` with its default features on: JWT auth per connection, quotas (limits raised so
 *   that one machine's load fits, not turned off), history, metrics, slow-consumer protection;
 * - `stock`: socket.io + @socket.io/redis-adapter, nothing else (bench/baselines/stock-server.mjs);
 * - `ws-relay`: raw ws + Redis pub/sub, a rough floor of framework cost;
 * - `centrifugo`: Centrifugo v6 with its Redis engine, the strongest peer, when its binary
 *   can be built here (bench/systems/centrifugo.ts).
 * Node servers run with --expose-gc and bench/lib/gc-probe.cjs, so their memory is read the
 * same way, after a full GC.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { mintToken } from "../../src/auth/mint-token.js";
import { freePort } from "../../src/cluster/embedded-redis.js";
import type { Protocol } from "../loadgen/protocols.js";
import { sleep } from "../lib/proc.js";
import { startCentrifugo } from "./centrifugo.js";

export type SystemKey = "roomcast" | "stock" | "ws-relay" | "centrifugo";

export const SYSTEM_NAMES: Record<SystemKey, string> = {
  roomcast: "roomcast",
  stock: "stock socket.io + redis-adapter",
  "ws-relay": "raw ws + Redis pub/sub",
  centrifugo: "Centrifugo v6 (Redis engine)",
};

export const BENCH_SECRET = "bench-secret-that-is-long-enough-for-hs256-tokens";

export interface Replica {
  url: string;
  pid: number;
  /** The Node server's process, with its IPC channel (bench/tools/heap-diff.ts). */
  child?: ChildProcess;
  /** RSS and V8 heap after a full GC (Node servers); RSS only otherwise. */
  memory(): Promise<{ rss: number; heapUsed?: number }>;
  /** Stops it: SIGKILL, or SIGTERM when profiled (to write its profile) unless `crash`. */
  kill(crash?: boolean): Promise<void>;
}

export interface SystemHandle {
  key: SystemKey;
  protocol: Protocol;
  replicas: Replica[];
  /** A channel name this system accepts (roomcast: the `bench` namespace). */
  channel(i: number): string;
  /** Client i's credentials (undefined: no auth). */
  token(i: number): Promise<string | undefined>;
  /** For PublishCommand: headers of the publisher. */
  publishHeaders: Record<string, string>;
  /** More replicas on the same Redis (for jobs, workers). */
  stop(): Promise<void>;
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PROBE = fileURLToPath(new URL("../lib/gc-probe.cjs", import.meta.url));

/** A Node server process with IPC (for the memory probe), ready when /readyz answers 200. */
export async function startNodeServer(script: string, args: string[], env: Record<string, string>): Promise<Replica> {
  const port = await freePort();
  // BENCH_CPU_PROF=<dir>: every Node server writes a V8 CPU profile there (on a clean exit).
  const profile = process.env.BENCH_CPU_PROF;
  const child: ChildProcess = fork(script, args, {
    cwd: ROOT,
    execArgv: ["--expose-gc", "--require", PROBE, ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : [])],
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${script} not ready`);
    await sleep(50);
  }
  return {
    url,
    pid: child.pid!,
    child,
    memory: () =>
      new Promise((resolve) => {
        const onMessage = (m: { bench?: string; rss: number; heapUsed: number }) => {
          if (m?.bench !== "memory") return;
          child.off("message", onMessage);
          resolve({ rss: m.rss, heapUsed: m.heapUsed });
        };
        child.on("message", onMessage);
        child.send({ bench: "memory" });
      }),
    async kill(crash = false) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // A profiled server must exit cleanly to write its profile.
      child.kill(profile && !crash ? "SIGTERM" : "SIGKILL");
      await new Promise((resolve) => child.once("exit", resolve));
    },
  };
}

/** roomcast's limits, raised so that one machine's load fits; still on (checked on every handshake). */
export const ROOMCAST_BENCH_ENV = {
  ROOMCAST_MAX_CONNECTIONS_PER_IP: "1000000",
  ROOMCAST_MAX_CONNECTIONS_PER_NODE: "100000",
  ROOMCAST_HTTP_RATE_LIMIT: "1000000",
  // Every load generator shares 127.0.0.1: a replica's 5,000 clients reconnect at once from it.
  ROOMCAST_MAX_UNAUTHENTICATED_PER_IP: "1000000",
};

export async function startSystem(
  key: SystemKey,
  options: { redisUrl: string; replicas: number; env?: Record<string, string> },
): Promise<SystemHandle> {
  const replicas: Replica[] = [];
  const stop = async () => {
    await Promise.all(replicas.map((r) => r.kill()));
  };
  try {
    switch (key) {
      case "roomcast": {
        const dir = mkdtempSync(join(tmpdir(), "roomcast-bench-"));
        const config = join(dir, "roomcast.yaml");
        // A namespace any valid token may subscribe to, reliable, default history; and one with presence.
        writeFileSync(
          config,
          "namespaces:\n  bench:\n    subscribe: { match: any }\n  lobby:\n    subscribe: { match: any }\n    presence: true\n",
        );
        for (let i = 0; i < options.replicas; i++) {
          replicas.push(
            await startNodeServer(join(ROOT, "dist/cli.js"), ["gateway"], {
              REDIS_URL: options.redisUrl,
              ROOMCAST_JWT_SECRET: BENCH_SECRET,
              ROOMCAST_CONFIG: config,
              ROOMCAST_NODE_ID: `bench-${i + 1}`,
              ...ROOMCAST_BENCH_ENV,
              ...(process.env.BENCH_ROOMCAST_ENV
                ? (JSON.parse(process.env.BENCH_ROOMCAST_ENV) as Record<string, string>)
                : {}),
              ...options.env,
            }),
          );
        }
        const publisher = await mintToken({
          secret: BENCH_SECRET,
          sub: "bench-publisher",
          scope: "publish jobs:write jobs:read",
          ttlS: 24 * 3600,
        });
        return {
          key,
          protocol: "roomcast",
          replicas,
          channel: (i) => `bench:c${i}`,
          token: (i) =>
            mintToken({
              secret: BENCH_SECRET,
              sub: `u${i}`,
              envs: ["bench"],
              scope: "jobs:read env:read",
              ttlS: 24 * 3600,
            }),
          publishHeaders: { authorization: `Bearer ${publisher}` },
          stop,
        };
      }
      case "stock":
      case "ws-relay": {
        const script = join(
          ROOT,
          key === "stock" ? "bench/baselines/stock-server.mjs" : "bench/baselines/ws-relay-server.mjs",
        );
        for (let i = 0; i < options.replicas; i++)
          replicas.push(await startNodeServer(script, [], { REDIS_URL: options.redisUrl, ...options.env }));
        return {
          key,
          protocol: key === "stock" ? "socketio" : "ws-relay",
          replicas,
          channel: (i) => `c${i}`,
          token: async () => undefined,
          publishHeaders: {},
          stop,
        };
      }
      case "centrifugo":
        return await startCentrifugo(options);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * A real Redis Cluster on loopback for tests and benchmarks: N masters with R replicas
 * each (`redis-server --cluster-enabled yes` and `redis-cli --cluster create`).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { answersPing, freePort } from "../../src/cluster/embedded-redis.js";

export interface ClusterNode {
  port: number;
  process: ChildProcess;
  /** SIGKILL this node. */
  kill(): Promise<void>;
}

export interface RedisClusterHandle {
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...` */
  url: string;
  nodes: ClusterNode[];
  /** The master ports, as `redis-cli cluster nodes` reports them now. */
  masters(): number[];
  /** The port of the master that serves a key's slot now. */
  masterFor(key: string): number;
  /** Blocks until a replica replaced the (killed) master on that port and the cluster is ok. */
  waitFailover(deadPort: number, timeoutMs?: number): Promise<void>;
  /** Blocks until every slot is served by a reachable master (after a failover). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

function cli(port: number, ...args: string[]): string {
  const out = spawnSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8" });
  return out.stdout ?? "";
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

export async function startRedisCluster(
  options: { masters?: number; replicas?: number; nodeTimeoutMs?: number } = {},
): Promise<RedisClusterHandle> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 1;
  const count = masters * (1 + replicas);
  const dir = mkdtempSync(join(tmpdir(), "roomcast-redis-cluster-"));
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < count; i++) {
    const port = await freePort();
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        `nodes-${port}.conf`,
        "--cluster-node-timeout",
        String(options.nodeTimeoutMs ?? 1000),
        "--cluster-replica-validity-factor",
        "0",
        "--dir",
        dir,
        "--loglevel",
        "warning",
      ],
      { stdio: "ignore" },
    );
    nodes.push({
      port,
      process: child,
      async kill() {
        child.kill("SIGKILL");
        await exited(child);
      },
    });
  }
  const stop = async () => {
    for (const node of nodes) node.process.kill("SIGKILL");
    await Promise.all(nodes.map((n) => exited(n.process)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const node of nodes) {
      const deadline = Date.now() + 10_000;
      while (!(await answersPing(node.port))) {
        if (Date.now() > deadline) throw new Error(`cluster node ${node.port} did not start`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const create = spawnSync(
      "redis-cli",
      [
        "--cluster",
        "create",
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        "--cluster-replicas",
        String(replicas),
        "--cluster-yes",
      ],
      { encoding: "utf8" },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    const handle: RedisClusterHandle = {
      url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(",")}`,
      nodes,
      masters() {
        const alive = nodes.find((n) => n.process.exitCode === null && n.process.signalCode === null);
        if (!alive) return [];
        return cli(alive.port, "cluster", "nodes")
          .split("\n")
          .map((line) => line.split(" "))
          .filter(
            (f) =>
              f.length > 7 && f[2]!.split(",").includes("master") && !f[2]!.includes("fail") && f[7] === "connected",
          )
          .map((f) => Number(f[1]!.split(":")[1]!.split("@")[0]));
      },
      masterFor(key: string) {
        const alive = nodes.find((n) => n.process.exitCode === null && n.process.signalCode === null)!;
        const slot = Number(cli(alive.port, "cluster", "keyslot", key).trim());
        for (const line of cli(alive.port, "cluster", "nodes").split("\n")) {
          const f = line.split(" ");
          if (f.length < 9 || !f[2]!.split(",").includes("master") || f[2]!.includes("fail")) continue;
          for (const range of f.slice(8)) {
            const [from, to] = range.split("-").map(Number);
            if (slot >= from! && slot <= (to ?? from)!) return Number(f[1]!.split(":")[1]!.split("@")[0]);
          }
        }
        throw new Error(`no master serves slot ${slot}`);
      },
      async waitFailover(deadPort: number, timeoutMs = 20_000) {
        const deadline = Date.now() + timeoutMs;
        const flaggedFailed = () => {
          const alive = nodes.find((n) => n.process.exitCode === null && n.process.signalCode === null);
          const line = alive
            ? cli(alive.port, "cluster", "nodes")
                .split("\n")
                .find((l) => l.includes(`:${deadPort}@`))
            : undefined;
          const fields = line?.split(" ") ?? [];
          // Flagged failed, and its slots handed to the promoted replica.
          return (fields[2]?.split(",") ?? []).includes("fail") && fields.slice(8).filter(Boolean).length === 0;
        };
        while (!flaggedFailed() || handle.masters().length < masters) {
          if (Date.now() > deadline) throw new Error(`no replica replaced master ${deadPort} in time`);
          await new Promise((r) => setTimeout(r, 50));
        }
        await handle.waitHealthy(timeoutMs);
      },
      async waitHealthy(timeoutMs = 20_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const alive = nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null);
          if (alive.length > 0 && alive.every((n) => /cluster_state:ok/.test(cli(n.port, "cluster", "info")))) return;
          if (Date.now() > deadline) throw new Error("Redis Cluster not healthy in time");
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      stop,
    };
    await handle.waitHealthy();
    return handle;
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * A real Redis Cluster on loopback for tests and benchmarks: N masters with R replicas
 * each (`redis-server --cluster-enabled yes` and `redis-cli --cluster create`).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { answersPing } from "../../src/cluster/embedded-redis.js";

/**
 * A cluster node listens on its port and on port + 10000 (the cluster bus). Both are taken
 * below Linux's ephemeral range (32768 and up): a port from there (listen on port 0) has its
 * bus port inside it, where any outgoing connection of the tests may hold it by the time the
 * node binds it, and the node then fails to start.
 */
const NODE_PORTS = { from: 20_000, to: 22_700 };
const NODE_STARTS = 5;

function listenable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A port whose cluster bus port is free too. */
async function nodePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = NODE_PORTS.from + Math.floor(Math.random() * (NODE_PORTS.to - NODE_PORTS.from));
    if ((await listenable(port)) && (await listenable(port + 10_000))) return port;
  }
  throw new Error("no free port pair for a cluster node");
}

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
  const spawnNode = (port: number) =>
    spawn(
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
  /** A node that answers PING; one that exits at start (its port taken meanwhile) is started again on other ports. */
  const startNode = async (): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const port = await nodePort();
      const child = spawnNode(port);
      const node: ClusterNode = {
        port,
        process: child,
        async kill() {
          child.kill("SIGKILL");
          await exited(child);
        },
      };
      nodes.push(node);
      const deadline = Date.now() + 10_000;
      while (!(await answersPing(port))) {
        if (child.exitCode !== null || child.signalCode !== null) break;
        if (Date.now() > deadline) throw new Error(`cluster node ${port} did not start`);
        await new Promise((r) => setTimeout(r, 50));
      }
      if (child.exitCode === null && child.signalCode === null) return;
      nodes.splice(nodes.indexOf(node), 1);
      if (attempt >= NODE_STARTS) throw new Error(`cluster node ${port} exited at start (${attempt} attempts)`);
    }
  };
  const stop = async () => {
    for (const node of nodes) node.process.kill("SIGKILL");
    await Promise.all(nodes.map((n) => exited(n.process)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // One after another: each takes the ports it checked before the next one looks.
    for (let i = 0; i < count; i++) await startNode();
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

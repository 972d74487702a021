/**
 * Real gateway and worker processes (`node dist/cli.js gateway|worker`) on free loopback
 * ports, for tests. `npm test` builds dist/ first.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freePort } from "../../src/cluster/embedded-redis.js";

export const CLI = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));
export const TEST_SECRET = "test-secret-that-is-long-enough-for-hs256";

export interface GatewayProcess {
  url: string;
  port: number;
  nodeId: string;
  process: ChildProcess;
  /** Everything the process printed so far. */
  output(): string;
  /** SIGKILL: the replica dies without any cleanup. */
  kill(): Promise<void>;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
}

export interface GatewayOptions {
  redisUrl: string;
  env?: Record<string, string>;
  nodeId?: string;
}

let counter = 0;

export function waitForExit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** Runs the CLI to completion (for start-up failures): exit code and output. */
export async function runCli(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 15_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await waitForExit(child);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

async function waitReady(url: string, child: ChildProcess, output: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode}: ${output()}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`process at ${url} not ready in ${timeoutMs} ms: ${output()}`);
}

export function startGateway(options: GatewayOptions): Promise<GatewayProcess> {
  return startRoomcast("gateway", options);
}

/** A worker (its /readyz, /metrics on `url`), with the sample processors unless env says otherwise. */
export function startWorker(options: GatewayOptions): Promise<GatewayProcess> {
  return startRoomcast("worker", { ...options, env: { ROOMCAST_SAMPLE_PROCESSORS: "1", ...options.env } });
}

async function startRoomcast(command: "gateway" | "worker", options: GatewayOptions): Promise<GatewayProcess> {
  const port = await freePort();
  const nodeId = options.nodeId ?? `test-${command === "gateway" ? "gw" : "worker"}-${process.pid}-${++counter}`;
  const child = spawn(process.execPath, [CLI, command], {
    env: {
      PATH: process.env.PATH ?? "",
      HOST: "127.0.0.1",
      PORT: String(port),
      REDIS_URL: options.redisUrl,
      ROOMCAST_JWT_SECRET: TEST_SECRET,
      ROOMCAST_NODE_ID: nodeId,
      LOG_LEVEL: "warn",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady(url, child, () => output);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return {
    url,
    port,
    nodeId,
    process: child,
    output: () => output,
    async kill() {
      child.kill("SIGKILL");
      await waitForExit(child);
    },
    async stop() {
      child.kill("SIGTERM");
      return waitForExit(child);
    },
  };
}

/**
 * Centrifugo v6 with its Redis engine, the strongest peer: built here with
 * `go install github.com/centrifugal/centrifugo/v6@v6.9.1` (its binary is looked for on PATH,
 * then in $(go env GOPATH)/bin, or at CENTRIFUGO_BIN). Configured like the roomcast runs: JWT
 * (HS256) connection tokens, a `bench` namespace clients may subscribe to, with history (1000)
 * and recovery, publishing over its HTTP API.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mintToken } from "../../src/auth/mint-token.js";
import { freePort } from "../../src/cluster/embedded-redis.js";
import { rssBytes, sleep } from "../lib/proc.js";
import { BENCH_SECRET, type Replica, type SystemHandle } from "./systems.js";

const API_KEY = "bench-api-key";

export function centrifugoBinary(): string | undefined {
  if (process.env.CENTRIFUGO_BIN && existsSync(process.env.CENTRIFUGO_BIN)) return process.env.CENTRIFUGO_BIN;
  if (spawnSync("centrifugo", ["version"], { stdio: "ignore" }).status === 0) return "centrifugo";
  const gopath = spawnSync("go", ["env", "GOPATH"], { encoding: "utf8" }).stdout?.trim();
  const candidate = gopath ? join(gopath, "bin", "centrifugo") : "";
  return candidate && existsSync(candidate) ? candidate : undefined;
}

export async function startCentrifugo(options: { redisUrl: string; replicas: number }): Promise<SystemHandle> {
  const binary = centrifugoBinary();
  if (!binary) throw new Error("no centrifugo binary (go install github.com/centrifugal/centrifugo/v6@v6.9.1)");
  const dir = mkdtempSync(join(tmpdir(), "roomcast-bench-centrifugo-"));
  const replicas: Replica[] = [];
  for (let i = 0; i < options.replicas; i++) {
    const port = await freePort();
    const config = {
      http_server: { address: "127.0.0.1", port },
      log: { level: "error" },
      engine: { type: "redis", redis: { address: [options.redisUrl] } },
      client: { token: { hmac_secret_key: BENCH_SECRET }, allowed_origins: ["*"] },
      channel: {
        namespaces: [
          {
            name: "bench",
            allow_subscribe_for_client: true,
            history_size: 1000,
            history_ttl: "3600s",
            force_recovery: true,
          },
        ],
      },
      http_api: { key: API_KEY },
      health: { enabled: true },
    };
    const file = join(dir, `config-${i}.json`);
    writeFileSync(file, JSON.stringify(config));
    const child: ChildProcess = spawn(binary, ["--config", file], { stdio: ["ignore", "ignore", "inherit"] });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`centrifugo exited with ${child.exitCode}`);
      try {
        if ((await fetch(`${url}/health`)).status === 200) break;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error("centrifugo not ready");
      await sleep(50);
    }
    replicas.push({
      url,
      pid: child.pid!,
      // A Go process: RSS only (its heap is not V8's).
      memory: async () => ({ rss: rssBytes(child.pid!) }),
      async kill() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill("SIGKILL");
        await new Promise((resolve) => child.once("exit", resolve));
      },
    });
  }
  return {
    key: "centrifugo",
    protocol: "centrifugo",
    replicas,
    channel: (i) => `bench:c${i}`,
    token: (i) => mintToken({ secret: BENCH_SECRET, sub: `u${i}`, ttlS: 24 * 3600 }),
    publishHeaders: { "x-api-key": API_KEY },
    stop: async () => {
      await Promise.all(replicas.map((r) => r.kill()));
    },
  };
}

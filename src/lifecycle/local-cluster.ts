/**
 * `roomcast start`: a whole local cluster for trying roomcast. Redis (a private
 * redis-server unless REDIS_URL is set), then --replicas N gateway processes behind one
 * port (node:cluster with @socket.io/sticky, so that long-polling works too). A replica
 * that dies is restarted; Ctrl-C stops everything it started.
 */
import cluster, { type Worker } from "node:cluster";
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { setupMaster } from "@socket.io/sticky";
import { mintToken } from "../auth/mint-token.js";
import { ConfigError, loadConfig } from "../config/load-config.js";
import { hasRedisServer, NO_REDIS_HINT, startEmbeddedRedis, type EmbeddedRedis } from "../cluster/embedded-redis.js";
import { redactUrl } from "../cluster/redis-clients.js";

const RESTART_DELAY_MS = 1000;

function replicasFlag(argv: readonly string[]): number {
  const i = argv.findIndex((a) => a === "--replicas" || a.startsWith("--replicas="));
  if (i < 0) return 2;
  const raw = argv[i]!.includes("=") ? argv[i]!.split("=")[1] : argv[i + 1];
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new ConfigError(`invalid flag --replicas: expected 1 to 64, got ${JSON.stringify(raw)}`);
  return n;
}

/** The flags for the gateways: all but `--replicas N` / `--replicas=N`. */
function withoutReplicasFlag(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--replicas") i++;
    else if (!argv[i]!.startsWith("--replicas=")) out.push(argv[i]!);
  }
  return out;
}

export async function runLocalCluster(argv: readonly string[]): Promise<void> {
  const config = loadConfig({ argv });
  const replicas = replicasFlag(argv);
  const secret = config.jwtSecret ?? randomBytes(24).toString("base64url");
  if (config.jwtPublicKeyFile || config.jwksFile) throw new ConfigError("invalid setting ROOMCAST_JWT_PUBLIC_KEY_FILE: roomcast start uses an HS256 secret for its dev token; run `roomcast gateway` for asymmetric keys");

  let redis: EmbeddedRedis | undefined;
  let redisUrl = config.redisUrl;
  if (!redisUrl) {
    if (!hasRedisServer()) {
      process.stderr.write(`roomcast: ${NO_REDIS_HINT}\n`);
      process.exit(1);
    }
    redis = await startEmbeddedRedis();
    redisUrl = redis.url;
  }

  let stopping = false;
  const names = new Map<Worker, string>();
  cluster.setupPrimary({ exec: fileURLToPath(new URL("../cli.js", import.meta.url)), args: ["gateway", ...withoutReplicasFlag(argv)] });
  const fork = (name: string): Promise<Worker> => {
    const worker = cluster.fork({
      REDIS_URL: redisUrl,
      ROOMCAST_JWT_SECRET: secret,
      ROOMCAST_NODE_ID: name,
      ROOMCAST_STICKY_WORKER: "1",
      ROOMCAST_LOG_PRETTY: process.env.ROOMCAST_LOG_PRETTY ?? "1",
    });
    names.set(worker, name);
    return new Promise((resolve, reject) => {
      worker.on("message", (m: { type?: string }) => m?.type === "roomcast:ready" && resolve(worker));
      worker.once("exit", (code) => reject(new Error(`${name} exited with code ${code} before it was ready`)));
    });
  };
  cluster.on("exit", (worker, code, signal) => {
    const name = names.get(worker) ?? "gateway";
    names.delete(worker);
    if (stopping) return;
    console.log(`roomcast: ${name} (pid ${worker.process.pid}) stopped (${signal ?? `code ${code}`}); restarting it in ${RESTART_DELAY_MS} ms`);
    setTimeout(() => {
      if (!stopping) fork(name).then((w) => console.log(`roomcast: ${name} is back (pid ${w.process.pid})`), () => undefined);
    }, RESTART_DELAY_MS);
  });

  const stop = async (exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    if (exitCode === 0) console.log("\nroomcast: stopping");
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill("SIGTERM");
    await new Promise<void>((resolve) => {
      const check = () => (Object.keys(cluster.workers ?? {}).length === 0 ? resolve() : setTimeout(check, 50));
      check();
    });
    server.close();
    await redis?.stop();
    process.exit(exitCode);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());

  const server = createServer();
  setupMaster(server, { loadBalancingMethod: "least-connection" });
  let workers: Worker[];
  try {
    workers = await Promise.all(Array.from({ length: replicas }, (_, i) => fork(`gateway-${i + 1}`)));
  } catch (err) {
    process.stderr.write(`roomcast: ${(err as Error).message}\n`);
    await stop(1);
    return;
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(config.port, config.host, () => resolve());
    });
  } catch (err) {
    const inUse = (err as NodeJS.ErrnoException).code === "EADDRINUSE";
    process.stderr.write(`roomcast: ${inUse ? `port ${config.port} is in use; choose another with PORT=... or --port` : (err as Error).message}\n`);
    await stop(1);
    return;
  }

  const url = `http://${config.host === "0.0.0.0" ? "localhost" : config.host}:${config.port}`;
  const token = await mintToken({ secret, sub: "dev", envs: ["*"], scope: "publish env:read jobs:read jobs:write admin", ttlS: 24 * 3600 });
  console.log(`
roomcast is running at ${url}
  redis:    ${redis ? `embedded, ${redis.url}` : redactUrl(redisUrl)}
  replicas: ${workers.map((w) => `${names.get(w)} (pid ${w.process.pid})`).join(", ")}
  secret:   ${config.jwtSecret ? "from ROOMCAST_JWT_SECRET" : `${secret} (generated; set ROOMCAST_JWT_SECRET to keep one)`}

dev token (sub "dev", every environment, scopes publish env:read jobs:read jobs:write admin, 24 h):
  export TOKEN=${token}

try it:
  curl -X POST ${url}/v1/channels/user:dev/events -H "Authorization: Bearer $TOKEN" \\
       -H "Content-Type: application/json" -d '{"type":"hello","data":{"text":"hi"}}'
  curl ${url}/v1/channels/user:dev/history -H "Authorization: Bearer $TOKEN"

Ctrl-C stops everything.
`);
}

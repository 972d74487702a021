/**
 * `roomcast start`: a whole local cluster for trying roomcast. Redis (a private
 * redis-server unless REDIS_URL is set), then --replicas N gateway processes behind one
 * port (node:cluster with sticky sessions, so that long-polling works too), serving the
 * live console at `/`, and one worker running the sample processors, with a simulated status
 * feed for the environments dev, staging and prod. A process that dies is restarted; Ctrl-C
 * stops everything it started. It listens on 127.0.0.1 unless --host or HOST says otherwise.
 */
import { fork as forkProcess, type ChildProcess } from "node:child_process";
import cluster, { type Worker } from "node:cluster";
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { setupStickyBalancer } from "./sticky-balancer.js";
import { mintToken } from "../auth/mint-token.js";
import { ADMIN_PAGE, adminUiEnabled } from "../gateway/admin-ui.js";
import { LISTEN_BACKLOG } from "../gateway/listen-backlog.js";
import { ConfigError, environmentWith, loadConfig } from "../config/load-config.js";
import {
  freePort,
  hasRedisServer,
  NO_REDIS_HINT,
  startEmbeddedRedis,
  type EmbeddedRedis,
} from "../cluster/embedded-redis.js";
import { redactUrl } from "../config/redis-url.js";

const RESTART_DELAY_MS = 1000;
export const DEMO_ENVIRONMENTS = ["dev", "staging", "prod"];
const CLI = fileURLToPath(new URL("../cli.js", import.meta.url));

function replicasFlag(argv: readonly string[]): number {
  const i = argv.findIndex((a) => a === "--replicas" || a.startsWith("--replicas="));
  if (i < 0) return 2;
  const raw = argv[i]!.includes("=") ? argv[i]!.split("=")[1] : argv[i + 1];
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new ConfigError(`invalid flag --replicas: expected 1 to 64, got ${JSON.stringify(raw)}`);
  return n;
}

/** argv without the named flags (`--name value` and `--name=value`). */
function withoutFlags(argv: readonly string[], names: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (names.includes(arg)) i++;
    else if (!names.some((name) => arg.startsWith(`${name}=`))) out.push(arg);
  }
  return out;
}

/**
 * Its defaults where they differ from a replica's: loopback only (it prints an admin token),
 * and a short drain, so that a Ctrl-C with clients connected takes a second, not ROOMCAST_DRAIN_S.
 */
export const LOCAL_DEFAULTS = { host: "127.0.0.1", drainS: 1 } as const;

/** What the demo turns on unless told otherwise: readable logs, the console, the sample processors. */
const DEMO_DEFAULTS = { logPretty: true, console: true, sampleProcessors: true } as const;

export async function runLocalCluster(argv: readonly string[]): Promise<void> {
  const config = loadConfig({ argv, defaults: { ...LOCAL_DEFAULTS, ...DEMO_DEFAULTS } });
  const replicas = replicasFlag(argv);
  const secret = config.jwtSecret ?? randomBytes(24).toString("base64url");
  if (config.jwtPublicKeyFile || config.jwksFile)
    throw new ConfigError(
      "invalid setting ROOMCAST_JWT_PUBLIC_KEY_FILE: roomcast start uses an HS256 secret for its dev token; run `roomcast gateway` for asymmetric keys",
    );

  let redis: EmbeddedRedis | undefined;
  let redisUrl = config.redisUrl;
  if (!redisUrl) {
    if (!hasRedisServer()) {
      process.stderr.write(`roomcast: ${NO_REDIS_HINT}\n`);
      process.exit(1);
    }
    // Ctrl-C reaches every process of the terminal's group at once: Redis must outlive the
    // gateways' drain and the worker's requeue, so it is in a group of its own and goes last.
    redis = await startEmbeddedRedis({ ownProcessGroup: true });
    redisUrl = redis.url;
  }

  let stopping = false;
  const names = new Map<Worker, string>();
  cluster.setupPrimary({ exec: CLI, args: ["gateway", ...withoutFlags(argv, ["--replicas"])] });
  const shared = {
    REDIS_URL: redisUrl,
    ROOMCAST_JWT_SECRET: secret,
    ROOMCAST_LOG_PRETTY: String(config.logPretty),
    ROOMCAST_CONSOLE: String(config.console),
    ROOMCAST_SAMPLE_PROCESSORS: String(config.sampleProcessors),
    ROOMCAST_SUPERVISED: "1",
  };
  const fork = (name: string): Promise<Worker> => {
    // The drain as resolved here (ours, unless a flag, the variable or the config file set one).
    const worker = cluster.fork({
      ...shared,
      ROOMCAST_DRAIN_S: String(config.drainS),
      ROOMCAST_NODE_ID: name,
      ROOMCAST_STICKY_WORKER: "1",
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
    console.log(
      `roomcast: ${name} (pid ${worker.process.pid}) stopped (${signal ?? `code ${code}`}); restarting it in ${RESTART_DELAY_MS} ms`,
    );
    setTimeout(() => {
      if (!stopping)
        fork(name).then(
          (w) => console.log(`roomcast: ${name} is back (pid ${w.process.pid})`),
          () => undefined,
        );
    }, RESTART_DELAY_MS);
  });

  // The job worker: a plain child process (it serves only /healthz, /readyz, /metrics, on a port of its own).
  const workerPort = await freePort();
  let jobWorker: ChildProcess | undefined;
  const forkWorker = (): Promise<ChildProcess> => {
    // The worker listens on a port of its own: the gateways' --port and --host are not for it.
    const child = forkProcess(CLI, ["worker", ...withoutFlags(argv, ["--replicas", "--port", "--host"])], {
      env: environmentWith({ ...shared, ROOMCAST_NODE_ID: "worker-1", PORT: String(workerPort), HOST: "127.0.0.1" }),
    });
    jobWorker = child;
    child.once("exit", (code, signal) => {
      if (stopping || jobWorker !== child) return;
      console.log(
        `roomcast: worker-1 (pid ${child.pid}) stopped (${signal ?? `code ${code}`}); restarting it in ${RESTART_DELAY_MS} ms`,
      );
      setTimeout(() => {
        if (!stopping)
          forkWorker().then(
            (w) => console.log(`roomcast: worker-1 is back (pid ${w.pid})`),
            () => undefined,
          );
      }, RESTART_DELAY_MS);
    });
    return new Promise((resolve, reject) => {
      child.on("message", (m: { type?: string }) => m?.type === "roomcast:ready" && resolve(child));
      child.once("exit", (code) => reject(new Error(`worker-1 exited with code ${code} before it was ready`)));
    });
  };

  let demoFeed: string | undefined;
  const stop = async (exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    if (exitCode === 0) console.log("\nroomcast: stopping");
    if (demoFeed) await callApi("DELETE", `/v1/jobs/${demoFeed}`).catch(() => undefined);
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill("SIGTERM");
    jobWorker?.kill("SIGTERM");
    await new Promise<void>((resolve) => {
      const check = () =>
        Object.keys(cluster.workers ?? {}).length === 0 &&
        (!jobWorker || jobWorker.exitCode !== null || jobWorker.signalCode !== null)
          ? resolve()
          : setTimeout(check, 50);
      check();
    });
    server.close();
    await redis?.stop();
    process.exit(exitCode);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());

  const server = createServer();
  setupStickyBalancer(server);
  let workers: Worker[];
  try {
    [workers] = await Promise.all([
      Promise.all(Array.from({ length: replicas }, (_, i) => fork(`gateway-${i + 1}`))),
      forkWorker(),
    ]);
  } catch (err) {
    process.stderr.write(`roomcast: ${(err as Error).message}\n`);
    await stop(1);
    return;
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG }, () => resolve());
    });
  } catch (err) {
    const inUse = (err as NodeJS.ErrnoException).code === "EADDRINUSE";
    process.stderr.write(
      `roomcast: ${inUse ? `port ${config.port} is in use; choose another with PORT=... or --port` : (err as Error).message}\n`,
    );
    await stop(1);
    return;
  }

  const url = `http://${["0.0.0.0", "127.0.0.1"].includes(config.host) ? "localhost" : config.host}:${config.port}`;
  const token = await mintToken({
    secret,
    sub: "dev",
    envs: ["*"],
    scope: "publish env:read jobs:read jobs:write admin",
    ttlS: 24 * 3600,
  });
  const local = `http://${config.host === "0.0.0.0" ? "127.0.0.1" : config.host}:${config.port}`;
  const callApi = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${local}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const answer = (await res.json()) as { jobId?: string; error?: { message: string } };
    if (!res.ok) throw new Error(answer.error?.message ?? `HTTP ${res.status}`);
    return answer;
  };
  // The demo's environment status feed (a sample job, cancelled when this stops).
  if (config.sampleProcessors) {
    demoFeed = await callApi("POST", "/v1/jobs", {
      name: "sample.env-status",
      data: { envs: DEMO_ENVIRONMENTS, intervalMs: 5000, durationMs: 24 * 3600 * 1000 },
    })
      .then((answer) => answer.jobId)
      .catch((err: unknown) => {
        console.log(`roomcast: no environment status feed (${(err as Error).message})`);
        return undefined;
      });
  }
  console.log(`
roomcast is running at ${url}
  console:  ${url}/#token=${token}
${adminUiEnabled(config) ? `  admin UI: ${url}${ADMIN_PAGE} (user ${config.adminUser}${config.adminReadonly ? ", read-only" : ""})\n` : ""}  redis:    ${redis ? `embedded, ${redis.url}` : redactUrl(redisUrl)}
  replicas: ${workers.map((w) => `${names.get(w)} (pid ${w.process.pid})`).join(", ")}
  worker:   worker-1 (pid ${jobWorker?.pid}), sample processors, metrics at http://127.0.0.1:${workerPort}/metrics
  secret:   ${config.jwtSecret ? "from ROOMCAST_JWT_SECRET" : `${secret} (generated; set ROOMCAST_JWT_SECRET to keep one)`}

dev token (sub "dev", every environment, scopes publish env:read jobs:read jobs:write admin, 24 h):
  export TOKEN=${token}

try it:
  open the console link above, press Start, and watch the build's progress and log tail
  curl -X POST ${url}/v1/jobs -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\
       -d '{"name":"sample.build","envId":"dev","data":{"lines":500,"durationMs":20000}}'
  curl -X POST ${url}/v1/channels/user:dev/events -H "Authorization: Bearer $TOKEN" \\
       -H "Content-Type: application/json" -d '{"type":"hello","data":{"text":"hi"}}'

Ctrl-C stops everything.
`);
}

/**
 * What deploys roomcast outside Kubernetes (no Docker engine runs here, so the parts are
 * checked one by one, for real where they can be):
 * - the Dockerfile: multi-stage, non-root, the real CLI as entrypoint, its HEALTHCHECK command
 *   run against a live gateway, and its runtime layout (production dependencies only, dist/,
 *   console/) installed in a temporary directory, where a gateway and a worker run a job;
 * - docker-compose.yml: every roomcast setting it sets exists and is accepted by the app's own
 *   config loader, its services and mounted files agree with each other;
 * - deploy/haproxy/haproxy.cfg: the real HAProxy runs that file in front of three real
 *   gateways: WebSocket and long-polling clients (sticky by its cookie), the HTTP API, per-IP
 *   quotas on the forwarded client addresses, /metrics not routed;
 * - deploy/prometheus/prometheus.yml: `promtool check config`, and its targets are the compose
 *   services.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { WebSocket } from "ws";
import { parse as parseYaml, parseDocument } from "yaml";
import { freePort } from "../../src/cluster/embedded-redis.js";
import { loadConfig, requireRedisSetting, requireServerSettings } from "../../src/config/load-config.js";
import { SETTINGS } from "../../src/config/settings.js";
import {
  connect,
  connectError,
  httpPublish,
  recordEvents,
  request,
  token,
  waitUntil,
  type TestSocket,
} from "../support/clients.js";
import { startCluster, startTestRedis, type TestCluster, type TestRedis } from "../support/cluster.js";
import { TEST_SECRET, waitForExit } from "../support/gateway-process.js";
import { createJob, followJob, JOB_SCOPES } from "../support/jobs.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const KNOWN_ENV = new Set<string>(Object.values(SETTINGS).map((s) => s.env));
const has = (binary: string) =>
  spawnSync(binary, ["--version"], { stdio: "ignore" }).status === 0 ||
  spawnSync(binary, ["-v"], { stdio: "ignore" }).status === 0;
// In CI, .ci/run installs haproxy and prometheus: there a missing binary is a failure, not a skip.
const skipWithout = (binary: string) =>
  !has(binary) && !process.env.CI ? `no ${binary} here (apt-get install ${binary})` : false;

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** The Dockerfile's instructions (continuation lines joined, comments dropped), with their stage. */
function dockerfile(): Instruction[] {
  const joined = read("Dockerfile").replace(/\\\n/g, " ");
  let stage = -1;
  return joined
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/);
      if (op!.toUpperCase() === "FROM") stage++;
      return { op: op!.toUpperCase(), args: rest.join(" "), stage };
    });
}

async function waitReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    assert.equal(child.exitCode, null, `exited: ${output()}`);
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    assert.ok(Date.now() < deadline, `not ready: ${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("Dockerfile", () => {
  const steps = dockerfile();
  const last = Math.max(...steps.map((s) => s.stage));
  const runtime = steps.filter((s) => s.stage === last);
  const one = (op: string) => {
    const found = runtime.filter((s) => s.op === op);
    assert.equal(found.length, 1, `one ${op} in the runtime stage`);
    return found[0]!.args;
  };

  it("is multi-stage, runs as a non-root user, stops with SIGTERM, exposes the default PORT", () => {
    assert.ok(last >= 1, "a build stage and a runtime stage");
    assert.match(
      steps.find((s) => s.op === "FROM" && s.stage === last)!.args,
      /node:\$\{NODE_VERSION\}-bookworm-slim AS runtime/,
    );
    assert.equal(one("USER"), "node");
    const userAt = runtime.findIndex((s) => s.op === "USER");
    assert.ok(runtime.findIndex((s) => s.op === "ENTRYPOINT") > userAt, "USER before ENTRYPOINT");
    assert.equal(one("STOPSIGNAL"), "SIGTERM");
    assert.equal(one("EXPOSE"), String(SETTINGS.port.default));
    assert.ok(
      !runtime.some((s) => s.op === "RUN" && /npm (ci|install)/.test(s.args)),
      "no dependency install in the runtime stage (they come built from the build stage)",
    );
  });

  it("its entrypoint is the real CLI (the package's bin), its default command a real command", () => {
    const entrypoint = JSON.parse(one("ENTRYPOINT")) as string[];
    const cmd = JSON.parse(one("CMD")) as string[];
    const bin = (JSON.parse(read("package.json")) as { bin: { roomcast: string } }).bin.roomcast;
    assert.deepEqual(entrypoint, ["node", bin]);
    assert.deepEqual(cmd, ["gateway"]);
    assert.ok(existsSync(join(ROOT, bin)), "npm test builds dist/ first");
    const help = spawnSync(process.execPath, [join(ROOT, bin), "--help"], { encoding: "utf8" });
    assert.equal(help.status, 0);
    for (const command of ["gateway", "worker", "start", "token"])
      assert.match(help.stdout, new RegExp(`^  ${command} `, "m"));
  });

  it("copies only what exists and what .dockerignore lets through; the runtime gets dist, production node_modules, console and package.json", () => {
    const ignored = read(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    for (const must of [".git", "node_modules", "dist", "test", "test-artifacts"])
      assert.ok(ignored.includes(must), `.dockerignore leaves out ${must}`);
    const fromContext = steps.filter((s) => s.op === "COPY" && !s.args.includes("--from"));
    for (const copy of fromContext) {
      const sources = copy.args.replace(/--\S+/g, "").trim().split(/\s+/).slice(0, -1);
      for (const source of sources) {
        assert.ok(existsSync(join(ROOT, source)), `COPY ${source}: missing from the repository`);
        assert.ok(!ignored.includes(source), `COPY ${source}: .dockerignore leaves it out`);
      }
    }
    const runtimeCopies = runtime
      .filter((s) => s.op === "COPY")
      .map((s) => s.args)
      .join("\n");
    for (const path of ["/app/dist", "/app/node_modules", "/app/package.json", "console"])
      assert.ok(runtimeCopies.includes(path), `the runtime stage copies ${path}`);
    assert.ok(
      steps.some((s) => s.stage < last && s.op === "RUN" && /npm prune --omit=dev/.test(s.args)),
      "the build stage drops the dev dependencies",
    );
  });

  describe("its runtime layout, installed for real", () => {
    let dir = "";
    let redis: TestRedis;
    const children: ChildProcess[] = [];
    before(async () => {
      redis = await startTestRedis();
      dir = mkdtempSync(join(tmpdir(), "roomcast-image-"));
      for (const file of ["package.json", "package-lock.json"]) cpSync(join(ROOT, file), join(dir, file));
      // What `npm ci` then `npm prune --omit=dev` leave: production dependencies only (from the npm cache when it can).
      const install = spawnSync(
        "npm",
        ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
        { cwd: dir, encoding: "utf8", timeout: 180_000 },
      );
      assert.equal(install.status, 0, install.stderr);
      cpSync(join(ROOT, "dist"), join(dir, "dist"), { recursive: true });
      cpSync(join(ROOT, "console"), join(dir, "console"), { recursive: true });
    });
    after(async () => {
      for (const child of children) child.kill("SIGKILL");
      await Promise.all(children.map(waitForExit));
      await redis?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    async function run(command: string, env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
      const port = await freePort();
      const child = spawn(process.execPath, ["dist/cli.js", command], {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? "",
          NODE_ENV: "production",
          HOST: "127.0.0.1",
          PORT: String(port),
          REDIS_URL: redis.url,
          LOG_LEVEL: "warn",
          ...env,
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.push(child);
      let output = "";
      child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
      const url = `http://127.0.0.1:${port}`;
      await waitReady(url, child, () => output);
      return { url, child };
    }

    it("has no dev dependency, and runs a gateway (with the console) and a worker that complete a job", async () => {
      for (const dev of ["typescript", "tsx", "playwright-core", "eslint", "kubernetes-models"])
        assert.equal(existsSync(join(dir, "node_modules", dev)), false, `${dev} is a dev dependency`);
      const gateway = await run("gateway", { ROOMCAST_JWT_SECRET: TEST_SECRET, ROOMCAST_CONSOLE: "true" });
      await run("worker", { ROOMCAST_SAMPLE_PROCESSORS: "true" });
      assert.equal((await fetch(`${gateway.url}/`)).status, 200, "the console's files are in the image");
      const owner = await token({ sub: "image", scope: JOB_SCOPES });
      const socket = await connect(gateway.url, { token: owner });
      try {
        const followed = await followJob(
          socket,
          await createJob(gateway.url, owner, { name: "sample.build", data: { lines: 20, durationMs: 0 } }),
        );
        assert.equal(((await followed.done()).data as { state: string }).state, "completed");
      } finally {
        socket.close();
      }
    });

    it("its HEALTHCHECK command passes against a live gateway and fails against a dead port", async () => {
      const [, , script = ""] = JSON.parse(
        /HEALTHCHECK .*?CMD (\[.*\])$/m.exec(read("Dockerfile").replace(/\\\n\s*/g, ""))![1]!,
      ) as string[];
      const gateway = await run("gateway", { ROOMCAST_JWT_SECRET: TEST_SECRET });
      const port = new URL(gateway.url).port;
      const probe = (p: string) =>
        spawnSync(process.execPath, ["-e", script], { env: { PATH: process.env.PATH ?? "", PORT: p }, timeout: 10_000 })
          .status;
      assert.equal(probe(port), 0);
      assert.equal(probe(String(await freePort())), 1);
    });
  });
});

describe("docker-compose.yml", () => {
  const compose = parseDocument(read("docker-compose.yml"), { merge: true }).toJS() as {
    services: Record<
      string,
      {
        build?: string;
        image?: string;
        command?: string[];
        environment?: Record<string, string>;
        volumes?: string[];
        stop_grace_period?: string;
        ports?: string[];
      }
    >;
  };
  const roomcast = Object.entries(compose.services).filter(([, s]) => s.build === ".");
  const gateways = roomcast.filter(([, s]) => s.command?.[0] === "gateway").map(([name]) => name);

  it("has Redis, three gateways, a worker, a load balancer, Prometheus and Grafana; roomcast services build this Dockerfile", () => {
    for (const name of ["redis", "lb", "prometheus", "grafana"]) assert.ok(compose.services[name], name);
    assert.deepEqual(gateways, ["gateway-1", "gateway-2", "gateway-3"]);
    assert.deepEqual(
      roomcast.filter(([, s]) => s.command?.[0] === "worker").map(([n]) => n),
      ["worker"],
    );
    for (const [, service] of roomcast) assert.ok(["gateway", "worker"].includes(service.command![0]!));
  });

  it("sets only real settings, which the app's own loader accepts, with a distinct node id each and a stop grace above the drain", () => {
    const ids = new Set<string>();
    for (const [name, service] of roomcast) {
      const env = Object.fromEntries(
        Object.entries(service.environment ?? {}).map(([k, v]) => [
          k,
          String(v).replace(/\$\{[^}]+\}/g, "compose-secret-of-at-least-32-characters"),
        ]),
      );
      for (const key of Object.keys(env)) assert.ok(KNOWN_ENV.has(key), `${name}: ${key} is not a roomcast setting`);
      const config = loadConfig({ env });
      if (service.command![0] === "gateway") requireServerSettings(config);
      else requireRedisSetting(config, "worker");
      assert.ok(!ids.has(config.nodeId), `${name}: ROOMCAST_NODE_ID ${config.nodeId} taken`);
      ids.add(config.nodeId);
      assert.ok(
        Number.parseInt(service.stop_grace_period ?? "10s", 10) > config.drainS + 5,
        `${name}: stop_grace_period ${service.stop_grace_period} vs ROOMCAST_DRAIN_S ${config.drainS}`,
      );
      if (service.command![0] === "gateway")
        assert.equal(config.trustProxy, 1, `${name}: behind HAProxy, one trusted proxy`);
    }
  });

  it("has presence webhooks off, and its commented-out example gives gateways and the worker the same webhook settings", () => {
    for (const [name, service] of roomcast)
      assert.deepEqual(
        Object.keys(service.environment ?? {}).filter((k) => k.startsWith("ROOMCAST_WEBHOOK_")),
        [],
        `${name}: webhooks are on by default`,
      );
    // What the file's comment says to do: delete the {} and uncomment the lines under it.
    const text = read("docker-compose.yml");
    const on = text.replace(
      /^(x-webhook-env: &webhook-env) \{\}\n((?: {2}# .*\n)+)/m,
      (_, head: string, lines: string) => `${head}\n${lines.replace(/^ {2}# /gm, "  ")}`,
    );
    assert.notEqual(on, text, "no commented-out webhook example under x-webhook-env");
    const services = (parseDocument(on, { merge: true }).toJS() as typeof compose).services;
    const webhookEnv = (name: string) =>
      Object.fromEntries(
        Object.entries(services[name]!.environment ?? {})
          .filter(([k]) => k.startsWith("ROOMCAST_WEBHOOK_"))
          .map(([k, v]) => [k, String(v).replace(/\$\{[^}]+\}/g, "compose-secret-of-at-least-32-characters")]),
      );
    const expected = webhookEnv("worker");
    assert.deepEqual(Object.keys(expected).sort(), [
      "ROOMCAST_WEBHOOK_EVENTS",
      "ROOMCAST_WEBHOOK_SECRET",
      "ROOMCAST_WEBHOOK_URLS",
    ]);
    for (const [name] of roomcast) assert.deepEqual(webhookEnv(name), expected, `${name}: other webhook settings`);
    const config = loadConfig({ env: { REDIS_URL: "redis://redis:6379", ...expected } });
    assert.equal(config.webhookUrls.length, 1);
  });

  it("mounts files that exist; HAProxy's servers and Prometheus's targets are its services", () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const host = volume.split(":")[0]!;
        if (host.startsWith("./")) assert.ok(existsSync(join(ROOT, host)), `${name}: ${host}`);
      }
    }
    const servers = [...read("deploy/haproxy/haproxy.cfg").matchAll(/^\s*server (\S+) (\S+):(\d+)/gm)];
    assert.deepEqual([...new Set(servers.map((m) => m[2]))], gateways, "HAProxy balances over the gateways");
    const prometheus = parseYaml(read("deploy/prometheus/prometheus.yml")) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const targets = Object.fromEntries(
      prometheus.scrape_configs.map((c) => [c.job_name, c.static_configs.flatMap((s) => s.targets)]),
    );
    assert.deepEqual(
      targets,
      { roomcast: gateways.map((g) => `${g}:3000`), "roomcast-worker": ["worker:3000"] },
      "the job names the alert rules expect",
    );
  });

  it(
    "deploy/prometheus/prometheus.yml passes promtool check config (with the rules it loads)",
    { skip: skipWithout("promtool") },
    () => {
      const dir = mkdtempSync(join(tmpdir(), "roomcast-promcfg-"));
      try {
        const config = read("deploy/prometheus/prometheus.yml").replace(
          "/etc/prometheus/roomcast-rules.yml",
          join(ROOT, "grafana/alerts/roomcast-rules.yml"),
        );
        writeFileSync(join(dir, "prometheus.yml"), config);
        const check = spawnSync("promtool", ["check", "config", join(dir, "prometheus.yml")], { encoding: "utf8" });
        assert.equal(check.status, 0, check.stdout + check.stderr);
        assert.match(check.stdout, /SUCCESS/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

/** The node of the gateway whose `welcome` a new connection gets (undefined if it fails). */
function welcomedBy(url: string, bearer: string): Promise<string | undefined> {
  const socket = io(url, {
    auth: { token: bearer },
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: 3000,
  });
  return new Promise((resolve) => {
    const done = (node: string | undefined) => {
      socket.close();
      resolve(node);
    };
    socket.on("welcome", (welcome: { node: string }) => done(welcome.node));
    socket.on("connect_error", () => done(undefined));
  });
}

describe("deploy/haproxy/haproxy.cfg in front of three real gateways", { skip: skipWithout("haproxy") }, () => {
  let cluster: TestCluster;
  let haproxy: ChildProcess | undefined;
  let lb = "";
  let log = "";
  let dir = "";
  const sockets: TestSocket[] = [];

  before(async () => {
    cluster = await startCluster({
      replicas: 3,
      env: { ROOMCAST_TRUST_PROXY: "1", ROOMCAST_MAX_CONNECTIONS_PER_IP: "2", ROOMCAST_HTTP_RATE_LIMIT: "0" },
    });
    const port = await freePort();
    lb = `http://127.0.0.1:${port}`;
    // The very file, with loopback addresses for the compose service names (no Docker DNS here),
    // and a maxconn this machine's file descriptor limit allows.
    const config = read("deploy/haproxy/haproxy.cfg")
      .replace(/^(\s*maxconn) \d+$/m, "$1 4000")
      .replace(/^resolvers docker\n(?:[ \t]+.*\n)*/m, "")
      .replace(/ resolvers docker init-addr last,libc,none/g, "")
      .replace(/^(\s*bind) :3000$/m, `$1 127.0.0.1:${port}`)
      .replace(/gateway-(\d):3000/g, (_, n: string) => `127.0.0.1:${cluster.gateways[Number(n) - 1]!.port}`);
    dir = mkdtempSync(join(tmpdir(), "roomcast-haproxy-"));
    writeFileSync(join(dir, "haproxy.cfg"), config);
    const check = spawnSync("haproxy", ["-c", "-f", join(dir, "haproxy.cfg")], { encoding: "utf8" });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    haproxy = spawn("haproxy", ["-db", "-f", join(dir, "haproxy.cfg")], { stdio: ["ignore", "pipe", "pipe"] });
    haproxy.stdout!.on("data", (d: Buffer) => (log += d.toString()));
    haproxy.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    // Ready once every server passed its health check (/readyz).
    const deadline = Date.now() + 20_000;
    for (;;) {
      const nodes = new Set<string>();
      for (let i = 0; i < 9; i++) {
        const res = await fetch(`${lb}/readyz`).catch(() => undefined);
        if (res?.status === 200) nodes.add(((await res.json()) as { node: string }).node);
      }
      if (nodes.size === 3) break;
      assert.ok(Date.now() < deadline, `HAProxy does not reach the three gateways: ${[...nodes]} ${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  after(async () => {
    for (const s of sockets) s.close();
    if (haproxy && haproxy.exitCode === null) {
      haproxy.kill("SIGTERM");
      await waitForExit(haproxy);
    }
    await cluster?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("carries WebSocket and long-polling clients (sticky by cookie) and the HTTP API; every event arrives once, in order", async () => {
    const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
    const viaWs = await connect(lb, { token: await token({ sub: "lb-ws" }), transports: ["websocket"] });
    // Polling only, keeping cookies as a browser does: each poll must reach the replica that owns the session.
    const viaPolling = await connect(lb, {
      token: await token({ sub: "lb-poll" }),
      transports: ["polling"],
      withCredentials: true,
    });
    sockets.push(viaWs, viaPolling);
    for (const [socket, channel] of [
      [viaWs, "user:lb-ws"],
      [viaPolling, "user:lb-poll"],
    ] as const) {
      assert.equal((await request<{ ok: boolean }>(socket, "subscribe", { channel })).ok, true);
    }
    const seenWs = recordEvents(viaWs);
    const seenPolling = recordEvents(viaPolling);
    for (let i = 1; i <= 30; i++) {
      for (const channel of ["user:lb-ws", "user:lb-poll"])
        assert.equal((await httpPublish(lb, publisher, channel, { type: "n", data: { i } })).status, 202);
    }
    await waitUntil(
      () => seenWs.get("user:lb-ws")?.length === 30 && seenPolling.get("user:lb-poll")?.length === 30,
      10_000,
      "every event through HAProxy",
    );
    for (const events of [seenWs.get("user:lb-ws")!, seenPolling.get("user:lb-poll")!])
      assert.deepEqual(
        events.map((e) => e.offset),
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
    assert.equal(viaPolling.io.engine.transport.name, "polling", "it stayed on long-polling");
  });

  it("forwards the client's address: per-IP quotas hold per client, not per proxy", async () => {
    // Loopback clients from distinct addresses (127.0.0.2, 127.0.0.3); HAProxy appends them to X-Forwarded-For.
    const open = (from: string, sub: string) =>
      new Promise<string>((resolve, reject) => {
        const url = `${lb.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`;
        const ws = new WebSocket(url, { localAddress: from });
        ws.on("error", reject);
        ws.on("message", (raw) => {
          const text = raw.toString();
          if (text.startsWith("0")) void token({ sub }).then((t) => ws.send(`40${JSON.stringify({ token: t })}`));
          else if (text.startsWith("40")) resolve("connected");
          else if (text.startsWith("44")) {
            resolve(text);
            ws.close();
          }
        });
        sockets.push({ close: () => ws.close() } as unknown as TestSocket);
      });
    assert.equal(await open("127.0.0.2", "ip-a1"), "connected");
    assert.equal(await open("127.0.0.2", "ip-a2"), "connected");
    const refused = await open("127.0.0.2", "ip-a3");
    assert.match(refused, /"code":4429/);
    assert.match(refused, /"scope":"ip"/);
    assert.equal(await open("127.0.0.3", "ip-b1"), "connected", "another client address has its own quota");
  });

  it("does not route /metrics or /admin from outside; a stopped gateway leaves the rotation", async () => {
    assert.equal((await fetch(`${lb}/metrics`)).status, 404);
    assert.equal((await fetch(`${lb}/admin/`)).status, 404);
    // Free 127.0.0.1's per-IP quota (2) for the handshakes below.
    for (const socket of sockets.splice(0)) socket.close();
    const gone = cluster.gateways[0]!;
    await gone.kill();
    // HAProxy's health checks (every 2 s, 2 failures) take it out; handshakes land on the others.
    const deadline = Date.now() + 15_000;
    let streak = 0;
    while (streak < 6) {
      assert.ok(Date.now() < deadline, `handshakes still fail after the kill: ${log.slice(-500)}`);
      const node = await welcomedBy(lb, await token({ sub: `after-${streak}-${Date.now()}` }));
      if (!node) {
        streak = 0;
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      assert.notEqual(node, gone.nodeId);
      streak++;
    }
    const refusedHandshake = await connectError(lb, { token: "not-a-token" });
    assert.equal(refusedHandshake.data.code, 4401, "refusals still come from a gateway");
  });
});

describe("CORS for pages on another origin (ROOMCAST_CORS_ORIGINS)", () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.addGateway({ ROOMCAST_CORS_ORIGINS: "https://app.example.com,https://admin.example.com" });
  });
  after(() => cluster?.close());

  const handshake = (url: string, origin: string) =>
    fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { origin } });

  it("by default any origin may connect, without credentials (no stickiness cookie from other origins)", async () => {
    const res = await handshake(cluster.gateways[0]!.url, "https://anywhere.example");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.equal(res.headers.get("access-control-allow-credentials"), null);
  });

  it("listed origins may send credentials (the load balancer's cookie); others get no CORS grant", async () => {
    const listed = await handshake(cluster.gateways[1]!.url, "https://app.example.com");
    assert.equal(listed.headers.get("access-control-allow-origin"), "https://app.example.com");
    assert.equal(listed.headers.get("access-control-allow-credentials"), "true");
    const other = await handshake(cluster.gateways[1]!.url, "https://evil.example");
    assert.equal(other.headers.get("access-control-allow-origin"), null);
  });
});

/**
 * The Grafana dashboards (grafana/dashboards/) and the Prometheus alert rules
 * (grafana/alerts/roomcast-rules.yml) against real metrics: two real gateway processes and a
 * real worker get real traffic (socket.io-client connections over websocket and polling, HTTP
 * publishes, deliveries across replicas, a recovery with since, refused handshakes, limits and
 * rate limits, a Redis error, jobs that complete, retry, fail and are cancelled, presence joins
 * and leaves, presence webhooks to a receiver that refuses the first ones, a drain), a
 * real Prometheus (the Debian `prometheus` binary, on a free loopback port, storage in a
 * temporary directory) scrapes all three /metrics every second and
 * loads the rules, and then every PromQL expression of every panel and of every alert must be
 * valid and return data (some sample a number, not only NaN):
 * - panels: with the template variables substituted ($node -> .*, $__rate_interval -> 1m);
 * - alerts: as written (valid; usually empty, the condition being false), and with their
 *   threshold comparisons (`> 0.5`, `== 1`) removed, which must return data: it proves the
 *   series the alert watches exist with the names and labels it uses.
 * Also: Prometheus evaluates every rule without error, the `node` variable's query lists both
 * replicas, `promtool check rules` passes, and the committed dashboard JSON is exactly what
 * scripts/build-dashboards.ts generates.
 *
 * Without the prometheus binary the Prometheus parts are skipped outside CI; in CI (where
 * .ci/run installs it) they must run.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { freePort } from "../../src/cluster/embedded-redis.js";
import { DASHBOARD_DIR, DASHBOARDS, NODE_VARIABLE, renderDashboards } from "../../scripts/build-dashboards.js";
import {
  connect,
  connectError,
  engineHandshake,
  httpGet,
  httpPublish,
  recordEvents,
  request,
  token,
  waitUntil,
  type TestSocket,
} from "../support/clients.js";
import { createJob, followJob, httpJson, JOB_SCOPES, logLines } from "../support/jobs.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { waitForExit } from "../support/gateway-process.js";
import { sleep } from "../support/util.js";

const RULES_FILE = fileURLToPath(new URL("../../grafana/alerts/roomcast-rules.yml", import.meta.url));
const JOB = "roomcast";
const WORKER_JOB = "roomcast-worker";
const WEBHOOK_SECRET = "observability-webhook-secret-of-32-bytes";

const hasBinary = (name: string) => spawnSync(name, ["--version"], { stdio: "ignore" }).status === 0;
const HAVE_PROMETHEUS = hasBinary("prometheus") && hasBinary("promtool");
// In CI .ci/run installs prometheus: a missing binary is a failure there, not a skip.
const skip =
  !HAVE_PROMETHEUS && !process.env.CI
    ? "prometheus/promtool not installed (apt-get install prometheus): skipped outside CI"
    : false;

/** Grafana's variables, as the test substitutes them. */
const VARIABLES: Record<string, string> = { node: ".*", __rate_interval: "1m", __interval: "1s", __range: "1m" };

function substitute(expr: string): string {
  const out = expr.replace(
    /\$\{(\w+)\}|\$(\w+)/g,
    (whole, braced: string | undefined, bare: string | undefined) => VARIABLES[braced ?? bare ?? ""] ?? whole,
  );
  assert.ok(!out.includes("$"), `unknown template variable in ${expr}`);
  return out;
}

/** The expression with its threshold comparisons (`> 0.5`, `== 1`, `> bool 2`) removed. */
function withoutThresholds(expr: string): string {
  return expr.replace(/\s*(?:==|!=|>=|<=|>|<)\s*(?:bool\s+)?-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])/gi, "");
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; definition?: string; allValue?: string }[] };
}

function loadDashboards(): Map<string, Dashboard> {
  const files = readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith(".json"));
  return new Map(files.map((f) => [f, JSON.parse(readFileSync(join(DASHBOARD_DIR, f), "utf8")) as Dashboard]));
}

function panelsOf(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...panelsOf(p.panels ?? [])]);
}

function dashboardExpressions(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const [file, dashboard] of loadDashboards()) {
    for (const panel of panelsOf(dashboard.panels)) {
      for (const target of panel.targets ?? [])
        out.push({ where: `${file} "${panel.title}" ${target.refId}`, expr: target.expr });
    }
  }
  return out;
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function loadRules(): Rule[] {
  const doc = parseYaml(readFileSync(RULES_FILE, "utf8")) as { groups: { name: string; rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

/** True when some sample of an instant vector is a number (not NaN: e.g. a quantile of no observations). */
function hasNumber(result: unknown[]): boolean {
  return (result as { value: [number, string] }[]).some((r) => Number.isFinite(Number(r.value[1])));
}

describe("grafana dashboards and alert rules", () => {
  it("the committed dashboards are exactly scripts/build-dashboards.ts's output", () => {
    const committed = new Set(readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith(".json")));
    const generated = renderDashboards();
    assert.deepEqual(
      [...committed].sort(),
      [...generated.keys()].sort(),
      "dashboard files differ from the generator's: run npx tsx scripts/build-dashboards.ts",
    );
    for (const [file, json] of generated) {
      assert.equal(
        readFileSync(join(DASHBOARD_DIR, file), "utf8"),
        json,
        `${file} is stale: run npx tsx scripts/build-dashboards.ts`,
      );
    }
  });

  it("every dashboard uses the datasource variable and a node variable over gateways (roomcast_connections) or workers (roomcast_jobs_running)", () => {
    const uids = new Set<string>();
    for (const [file, dashboard] of loadDashboards()) {
      const nodes = NODE_VARIABLE[DASHBOARDS.find((d) => d.file === file)?.nodes ?? "gateways"].metric;
      assert.equal(dashboard.schemaVersion, 39, file);
      assert.ok(!uids.has(dashboard.uid), `duplicate uid ${dashboard.uid}`);
      uids.add(dashboard.uid);
      const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
      assert.equal(vars.get("DS_PROMETHEUS")?.type, "datasource", file);
      assert.equal(vars.get("node")?.definition, `label_values(${nodes}, node)`, file);
      assert.equal(vars.get("node")?.allValue, ".*", file);
      const ids = new Set<number>();
      for (const panel of panelsOf(dashboard.panels)) {
        assert.ok(!ids.has(panel.id), `${file}: duplicate panel id ${panel.id}`);
        ids.add(panel.id);
        if (panel.type === "row") continue;
        assert.equal(panel.datasource?.uid, "${DS_PROMETHEUS}", `${file} "${panel.title}"`);
        assert.ok((panel.targets ?? []).length > 0, `${file} "${panel.title}" has no query`);
        for (const target of panel.targets ?? []) {
          assert.equal(target.datasource?.uid, "${DS_PROMETHEUS}", `${file} "${panel.title}"`);
          assert.match(target.expr, /roomcast_/, `${file} "${panel.title}" queries no roomcast metric`);
        }
      }
    }
  });

  it("every alert has for:, a severity and summary and description annotations", () => {
    const rules = loadRules();
    assert.ok(rules.length > 0);
    for (const rule of rules) {
      assert.ok(rule.alert, `a rule without alert: ${rule.expr}`);
      assert.match(rule.for ?? "", /^\d+[smh]$/, rule.alert);
      assert.match(rule.labels?.severity ?? "", /^(critical|warning|info)$/, rule.alert);
      assert.ok(rule.annotations?.summary && rule.annotations.description, rule.alert);
    }
  });

  it("promtool check rules passes", { skip }, () => {
    assert.ok(HAVE_PROMETHEUS, "promtool is required in CI (.ci/run installs the prometheus package)");
    const run = spawnSync("promtool", ["check", "rules", RULES_FILE], { encoding: "utf8" });
    assert.equal(run.status, 0, `promtool check rules failed:\n${run.stdout}${run.stderr}`);
    assert.match(run.stdout, /SUCCESS: \d+ rules found/);
  });

  describe("against a real Prometheus scraping two gateways and a worker", { skip }, () => {
    let cluster: TestCluster;
    let prometheus: ChildProcess | undefined;
    let promUrl = "";
    let promLog = "";
    let dir = "";
    const sockets: TestSocket[] = [];
    // The webhook receiver: refuses the first two POSTs (failed deliveries), accepts the rest.
    const hooks = { accepted: 0, refused: 0 };
    let receiver: Server | undefined;

    async function promQuery(expr: string): Promise<{ status: string; error?: string; data?: { result: unknown[] } }> {
      const res = await fetch(`${promUrl}/api/v1/query`, {
        method: "POST",
        body: new URLSearchParams({ query: expr }),
      });
      return (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
    }

    async function promGet<T>(path: string): Promise<T> {
      const res = await fetch(`${promUrl}${path}`);
      assert.equal(res.status, 200, `${path}: ${res.status}`);
      return ((await res.json()) as { data: T }).data;
    }

    /** Waits until Prometheus has scraped both gateways and the worker, successfully, after `time` (ms). */
    async function scrapedAfter(time: number, timeoutMs = 20_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { activeTargets } = await promGet<{
          activeTargets: { health: string; lastScrape: string; lastError: string }[];
        }>("/api/v1/targets");
        const fresh = activeTargets.filter((t) => t.health === "up" && Date.parse(t.lastScrape) > time);
        if (activeTargets.length === 3 && fresh.length === 3) return;
        assert.ok(
          Date.now() < deadline,
          `Prometheus did not scrape the gateways and the worker: ${JSON.stringify(activeTargets)} ${promLog}`,
        );
        await sleep(200);
      }
    }

    const open = async (url: string, bearer: string, transports: ("websocket" | "polling")[] = ["websocket"]) => {
      const socket = await connect(url, { token: bearer, transports });
      sockets.push(socket);
      return socket;
    };

    before(
      async () => {
        assert.ok(
          HAVE_PROMETHEUS,
          "the prometheus and promtool binaries are required in CI (.ci/run installs the prometheus package)",
        );
        receiver = createServer((req, res) => {
          req.resume();
          req.on("end", () => {
            const accept = hooks.refused >= 2;
            hooks[accept ? "accepted" : "refused"]++;
            res.writeHead(accept ? 204 : 500).end();
          });
        });
        await new Promise<void>((resolve) => receiver!.listen(0, "127.0.0.1", resolve));
        const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
        // Low limits so that a few requests reach them; a long drain so that a SIGTERMed
        // replica stays draining (and scraped) for the rest of the test; short presence leases
        // and debounce, so that users per channel are observed and leaves announced soon.
        cluster = await startCluster({
          replicas: 2,
          workers: 1,
          env: {
            ROOMCAST_RATE_LIMIT: "5",
            ROOMCAST_RATE_BURST: "5",
            ROOMCAST_HTTP_RATE_LIMIT: "50",
            ROOMCAST_MAX_SUBSCRIPTIONS: "3",
            ROOMCAST_DRAIN_S: "600",
            ROOMCAST_PRESENCE_LEASE_S: "3",
            ROOMCAST_PRESENCE_DEBOUNCE_S: "1",
            ROOMCAST_WEBHOOK_URLS: hookUrl,
            ROOMCAST_WEBHOOK_SECRET: WEBHOOK_SECRET,
          },
        });
        const [a, b] = cluster.gateways as [(typeof cluster.gateways)[0], (typeof cluster.gateways)[0]];

        // Prometheus first, so that it has samples from before the traffic too.
        dir = mkdtempSync(join(tmpdir(), "roomcast-prometheus-"));
        const port = await freePort();
        promUrl = `http://127.0.0.1:${port}`;
        const config = {
          global: { scrape_interval: "1s", scrape_timeout: "900ms", evaluation_interval: "1s" },
          rule_files: [RULES_FILE],
          scrape_configs: [
            {
              job_name: JOB,
              metrics_path: "/metrics",
              static_configs: [{ targets: [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`] }],
            },
            {
              job_name: WORKER_JOB,
              metrics_path: "/metrics",
              static_configs: [{ targets: [`127.0.0.1:${cluster.workers[0]!.port}`] }],
            },
          ],
        };
        writeFileSync(join(dir, "prometheus.yml"), JSON.stringify(config, null, 2)); // JSON is YAML
        prometheus = spawn(
          "prometheus",
          [
            `--config.file=${join(dir, "prometheus.yml")}`,
            `--storage.tsdb.path=${join(dir, "data")}`,
            `--web.listen-address=127.0.0.1:${port}`,
            "--log.level=warn",
          ],
          { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
        );
        prometheus.stdout?.on("data", (d: Buffer) => (promLog += d.toString()));
        prometheus.stderr?.on("data", (d: Buffer) => (promLog += d.toString()));
        const ready = Date.now() + 20_000;
        for (;;) {
          if (prometheus.exitCode !== null)
            throw new Error(`prometheus exited with ${prometheus.exitCode}: ${promLog}`);
          try {
            if ((await fetch(`${promUrl}/-/ready`)).status === 200) break;
          } catch {
            // not listening yet
          }
          if (Date.now() > ready) throw new Error(`prometheus not ready in 20 s: ${promLog}`);
          await sleep(100);
        }

        // Prometheus loads its targets a few seconds after start: let it scrape both replicas
        // before the traffic.
        await scrapedAfter(0);

        // --- traffic, in two rounds with a scrape between them: a labelled series is born with
        // its first increment, so only the second round shows in rate() (see grafana/README.md).
        const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
        const alice = await open(a.url, await token({ sub: "alice" }));
        const bob = await open(b.url, await token({ sub: "bob" }), ["polling"]);
        const envReader = await open(b.url, await token({ sub: "ops", envs: ["e1"], scope: "env:read" }));
        // Idle connections on b, so that its drain below lasts (each leaves at a random moment within 600 s).
        for (let i = 0; i < 3; i++) await open(b.url, await token({ sub: `idle${i}` }));
        const seenAlice = recordEvents(alice);
        const seenBob = recordEvents(bob);
        const seenEnv = recordEvents(envReader);
        for (const [socket, channel] of [
          [alice, "user:alice"],
          [bob, "user:bob"],
          [envReader, "env:e1:logs"],
          [envReader, "env:e1:status"],
        ] as const) {
          const answer = await request(socket, "subscribe", { channel });
          assert.equal(answer.ok, true, JSON.stringify(answer));
        }
        // A Redis error: a channel whose meta key has the wrong type fails the publish script.
        // (redis://host:port, or redis+cluster://host:port,...: redis-cli -c follows the slot.)
        const hostPort = /:\/\/([^,/?#]+)/.exec(cluster.redis.url)![1]!;
        const cut = hostPort.lastIndexOf(":");
        const set = spawnSync(
          "redis-cli",
          [
            "-c",
            "-h",
            hostPort.slice(0, cut),
            "-p",
            hostPort.slice(cut + 1),
            "SET",
            "rc:{user:broken}:meta",
            "not-a-hash",
          ],
          { encoding: "utf8" },
        );
        assert.equal(set.status, 0, set.stderr);

        const count = (seen: Map<string, unknown[]>, channel: string) => seen.get(channel)?.length ?? 0;
        const round = async (n: number) => {
          // Publishes through both replicas, deliveries on both (and across them).
          const before = [count(seenAlice, "user:alice"), count(seenBob, "user:bob"), count(seenEnv, "env:e1:logs")];
          for (let i = 0; i < 4; i++) {
            for (const [gw, channel] of [
              [a, "user:alice"],
              [a, "user:bob"],
              [b, "env:e1:logs"],
              [b, "env:e1:status"],
              [b, "user:alice"],
            ] as const) {
              const res = await httpPublish(gw.url, publisher, channel, { type: "n", data: { n, i } });
              assert.equal(res.status, 202, JSON.stringify(res.body));
            }
          }
          await waitUntil(
            () =>
              count(seenAlice, "user:alice") === before[0]! + 8 &&
              count(seenBob, "user:bob") === before[1]! + 4 &&
              count(seenEnv, "env:e1:logs") === before[2]! + 4,
            10_000,
            "deliveries",
          );

          // Recovery with since: recovered, and not recovered (an unknown epoch).
          const last = seenAlice.get("user:alice")!.at(-1)!;
          const recoverer = await open(a.url, await token({ sub: "alice" }));
          assert.equal(
            (await httpPublish(a.url, publisher, "user:alice", { type: "n", data: { n, i: "missed" } })).status,
            202,
          );
          const recovered = await request(recoverer, "subscribe", {
            channel: "user:alice",
            since: { offset: last.offset, epoch: last.epoch },
          });
          assert.equal(recovered.recovered, true, JSON.stringify(recovered));
          const recoverer2 = await open(a.url, await token({ sub: "alice" }));
          const lost = await request(recoverer2, "subscribe", {
            channel: "user:alice",
            since: { offset: last.offset, epoch: "not-the-epoch" },
          });
          assert.equal(lost.recovered, false, JSON.stringify(lost));
          await waitUntil(() => count(seenAlice, "user:alice") === before[0]! + 9, 5000, "the missed event");

          // Refused handshakes (unauthorized).
          await connectError(a.url, { token: "not-a-jwt" });
          await connectError(a.url, {});

          // Requests refused by limits: too_many_subscriptions, too_large.
          const carol = await open(a.url, await token({ sub: `carol${n}`, envs: [`c${n}`], scope: "env:read" }));
          for (const channel of [`user:carol${n}`, `env:c${n}:logs`, `env:c${n}:status`])
            assert.equal((await request(carol, "subscribe", { channel })).ok, true);
          const tooMany = await request<{ ok: boolean; error?: { reason: string } }>(carol, "subscribe", {
            channel: `env:c${n}:events`,
          });
          assert.equal(tooMany.error?.reason, "too_many_subscriptions", JSON.stringify(tooMany));
          const big = await request<{ ok: boolean; error?: { reason: string } }>(carol, "publish", {
            channel: `user:carol${n}`,
            type: "big",
            data: "x".repeat(70_000),
          });
          assert.equal(big.error?.reason, "too_large", JSON.stringify(big));
          // carol leaves her env channels: presence leaves and webhooks (after the debounce).
          carol.close();

          // Socket rate limit, then an abuse close (20 refusals within 10 s).
          const flooder = await connect(a.url, { token: await token({ sub: `flooder${n}` }) });
          const closed = new Promise<void>((resolve) => flooder.once("disconnect", () => resolve()));
          for (let i = 0; i < 40; i++) flooder.emit("unsubscribe", { channel: `user:flooder${n}` });
          await closed;
          flooder.close();

          // HTTP rate limit (50/s per token): a token that reads history (a publishing backend's
          // successes would not count).
          const flood = await token({ sub: `flood-reader${n}` });
          const statuses = await Promise.all(
            Array.from({ length: 80 }, () =>
              httpGet(`${a.url}/v1/channels/user:flood-reader${n}/history`, flood).then((r) => r.status),
            ),
          );
          assert.ok(statuses.includes(429), statuses.join(","));

          // Jobs: one completes, one fails after a retry, one is cancelled while it runs.
          const owner = await token({ sub: `jobs${n}`, scope: JOB_SCOPES });
          const watcher = await open(b.url, owner);
          const completes = await followJob(
            watcher,
            await createJob(a.url, owner, { name: "sample.build", data: { lines: 120, durationMs: 300 } }),
          );
          const fails = await followJob(
            watcher,
            await createJob(a.url, owner, {
              name: "sample.build",
              data: { lines: 10, durationMs: 0, failAttempts: 9 },
              opts: { attempts: 2, backoffMs: 10 },
            }),
          );
          const cancelledId = await createJob(a.url, owner, {
            name: "sample.build",
            data: { lines: 1000, durationMs: 20_000 },
          });
          const cancelled = await followJob(watcher, cancelledId);
          await waitUntil(() => logLines(cancelled.all()).length > 0, 10_000, "the job to cancel runs");
          assert.equal((await httpJson("DELETE", `${a.url}/v1/jobs/${cancelledId}`, owner)).status, 200);
          await Promise.all([completes.done(), fails.done(), cancelled.done()]);

          // The Redis error (HTTP 500: the publish script failed).
          const broken = await httpPublish(
            a.url,
            await token({ sub: `backend-${n}`, scope: "publish" }),
            "user:broken",
            { type: "n", data: {} },
          );
          assert.equal(broken.status, 500, JSON.stringify(broken));
        };
        await round(1);
        await scrapedAfter(Date.now());
        await round(2);
        // Webhooks both refused and accepted, and a presence leave announced.
        await waitUntil(() => hooks.refused >= 2 && hooks.accepted > 0, 20_000, "webhook deliveries");
        const leaves = async () => {
          const answer = await promQuery(`sum(roomcast_presence_changes_total{action="leave"})`);
          return Number((answer.data?.result[0] as { value: [number, string] } | undefined)?.value[1] ?? 0);
        };
        for (const deadline = Date.now() + 20_000; (await leaves()) === 0; await sleep(200))
          assert.ok(Date.now() < deadline, "no presence leave reached Prometheus");

        // Drain b (it keeps its connections for a while), and a handshake it refuses as unavailable.
        b.process.kill("SIGTERM");
        const deadline = Date.now() + 5000;
        for (;;) {
          const answer = await engineHandshake(b.url).catch(() => ({ status: 0, body: "" }));
          if (answer.status === 503) break;
          assert.ok(Date.now() < deadline, `b never refused a handshake as unavailable: ${JSON.stringify(answer)}`);
          await sleep(50);
        }

        // Two scrapes of both replicas after the traffic (rates need two samples), and one more
        // rule evaluation on them.
        await scrapedAfter(Date.now() + 2000);
        await sleep(1200);
      },
      { timeout: 120_000 },
    );

    after(async () => {
      for (const socket of sockets) socket.close();
      if (prometheus && prometheus.exitCode === null) {
        prometheus.kill("SIGTERM");
        const timer = setTimeout(() => prometheus?.kill("SIGKILL"), 5000);
        await waitForExit(prometheus);
        clearTimeout(timer);
      }
      await cluster?.close();
      receiver?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("every panel's expression is valid and returns data", async (t) => {
      const failures: string[] = [];
      const expressions = dashboardExpressions();
      for (const { where, expr } of expressions) {
        const answer = await promQuery(substitute(expr));
        if (answer.status !== "success") failures.push(`${where}: ${answer.error} in ${expr}`);
        else if ((answer.data?.result.length ?? 0) === 0) failures.push(`${where}: no data for ${expr}`);
        else if (!hasNumber(answer.data!.result)) failures.push(`${where}: only NaN for ${expr}`);
      }
      t.diagnostic(`${expressions.length} panel expressions checked`);
      assert.deepEqual(failures, []);
    });

    it("every alert's expression is valid, and returns data without its thresholds", async (t) => {
      const failures: string[] = [];
      const rules = loadRules();
      let checked = 0;
      for (const rule of rules) {
        const asWritten = await promQuery(rule.expr);
        checked++;
        if (asWritten.status !== "success") failures.push(`${rule.alert}: ${asWritten.error}`);
        const data = withoutThresholds(rule.expr);
        assert.notEqual(data, rule.expr, `${rule.alert}: no threshold comparison found to remove`);
        const answer = await promQuery(data);
        checked++;
        if (answer.status !== "success") failures.push(`${rule.alert} without thresholds: ${answer.error} in ${data}`);
        else if ((answer.data?.result.length ?? 0) === 0)
          failures.push(`${rule.alert} without thresholds: no data for ${data}`);
        else if (!hasNumber(answer.data!.result))
          failures.push(`${rule.alert} without thresholds: only NaN for ${data}`);
      }
      t.diagnostic(`${rules.length} alerts, ${checked} expressions checked`);
      assert.deepEqual(failures, []);
    });

    it("Prometheus loaded every rule and evaluates it without error", async () => {
      const data = await promGet<{
        groups: { rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[] }[];
      }>("/api/v1/rules");
      const loaded = data.groups.flatMap((g) => g.rules);
      assert.deepEqual(
        loaded.map((r) => r.name).sort(),
        loadRules()
          .map((r) => r.alert)
          .sort(),
      );
      for (const rule of loaded) {
        assert.ok(Date.parse(rule.lastEvaluation) > 0, `${rule.name} never evaluated`);
        assert.equal(rule.health, "ok", `${rule.name}: ${rule.lastError}`);
      }
    });

    it("the node variable's queries list both replicas (label_values(roomcast_connections, node)) and the worker (label_values(roomcast_jobs_running, node))", async () => {
      const nodes = await promGet<string[]>(
        `/api/v1/label/node/values?${new URLSearchParams({ "match[]": "roomcast_connections" })}`,
      );
      assert.deepEqual(nodes.sort(), cluster.gateways.map((g) => g.nodeId).sort());
      const workers = await promGet<string[]>(
        `/api/v1/label/node/values?${new URLSearchParams({ "match[]": "roomcast_jobs_running" })}`,
      );
      assert.deepEqual(workers, [cluster.workers[0]!.nodeId]);
    });

    it("every metric src/metrics/metrics.ts declares reached Prometheus", async () => {
      const source = readFileSync(fileURLToPath(new URL("../../src/metrics/metrics.ts", import.meta.url)), "utf8");
      const declared = [...source.matchAll(/name: "(roomcast_\w+)"/g)].map((m) => m[1]!);
      assert.ok(declared.length >= 15, `only ${declared.length} metrics found in metrics.ts`);
      const names = new Set(await promGet<string[]>("/api/v1/label/__name__/values"));
      const missing = declared.filter((n) => !names.has(n) && !names.has(`${n}_bucket`));
      assert.deepEqual(missing, [], "declared metrics without any series after the traffic");
    });
  });
});

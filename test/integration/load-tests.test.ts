/**
 * The k6 load-test scripts (load-tests/) in a smoke run: each one, small, through the test
 * runner of test/support/k6-runner (k6 itself is not installed: it is AGPL) against a real
 * cluster (its own Redis, two gateway processes, one worker with the sample processors).
 * Each run must end without an error, with every check passed, its key metrics sampled, its
 * gap and loss counters at 0 and every threshold valid in k6's grammar; and the gateways'
 * and the worker's own /metrics must show the conversation really happened (handshakes,
 * subscribes, publishes, deliveries, recoveries, jobs). No timed assertion: thresholds are
 * parsed, never judged. The last tests show the runner reports what it must (failed checks,
 * exceptions, sockets left open, invalid thresholds, modules it does not provide).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { token } from "../support/clients.js";
import { LIMITS_OFF, startCluster, type TestCluster } from "../support/cluster.js";
import { TEST_SECRET } from "../support/gateway-process.js";
import { runK6Script, type K6RunResult, type RunOptions } from "../support/k6-runner/index.js";

const SETTINGS = {
  ...LIMITS_OFF,
  ROOMCAST_JOB_BACKOFF_MS: "200",
};

const SCRIPTS = fileURLToPath(new URL("../../load-tests/", import.meta.url));

/** One Prometheus series: its labels and value. */
type Series = { labels: Record<string, string>; value: number };

async function scrape(url: string): Promise<Map<string, Series[]>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, Series[]>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), { labels, value: Number(m[3]) }]);
  }
  return out;
}

/** The sum of a metric's series whose labels match, per process. */
async function totals(urls: string[], name: string, labels: Record<string, string> = {}): Promise<number[]> {
  return Promise.all(
    urls.map(async (url) =>
      ((await scrape(url)).get(name) ?? [])
        .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        .reduce((sum, s) => sum + s.value, 0),
    ),
  );
}

/** How much each counter grew on each process while `fn` ran. */
async function growth<T>(
  urls: string[],
  counters: Record<string, [string, Record<string, string>?]>,
  fn: () => Promise<T>,
): Promise<{ result: T; grew: Record<string, number[]> }> {
  const before = Object.fromEntries(
    await Promise.all(
      Object.entries(counters).map(async ([key, [name, labels]]) => [key, await totals(urls, name, labels)] as const),
    ),
  );
  const result = await fn();
  const grew: Record<string, number[]> = {};
  for (const [key, [name, labels]] of Object.entries(counters)) {
    const now = await totals(urls, name, labels);
    grew[key] = now.map((v, i) => v - before[key]![i]!);
  }
  return { result, grew };
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** No error, every check ran and passed, every threshold parses, the key metrics have samples. */
function assertClean(result: K6RunResult, keyMetrics: string[]): void {
  assert.deepEqual(result.errors, [], "the run reported errors");
  const declared = Object.values((result.options.thresholds ?? {}) as Record<string, unknown[]>).flat().length;
  assert.ok(declared > 0, "the script declares thresholds");
  assert.deepEqual(result.thresholds.invalid, []);
  assert.equal(result.thresholds.valid.length, declared, "every threshold parsed");
  const checks = Object.entries(result.checks);
  assert.ok(checks.length > 0, "no check ran");
  for (const [name, c] of checks)
    assert.equal(c.fails, 0, `check "${name}" failed ${c.fails} of ${c.passes + c.fails} times`);
  for (const metric of keyMetrics)
    assert.ok((result.metrics[metric]?.samples.length ?? 0) > 0, `${metric} has no samples`);
}

/** A counter that must stay 0: sampled (so it was looked at), and 0. */
function assertZero(result: K6RunResult, metric: string): void {
  const m = result.metrics[metric];
  assert.ok(m && m.samples.length > 0, `${metric} has no samples`);
  assert.equal(m.type, "counter");
  assert.equal(m.values.count, 0, `${metric}: ${JSON.stringify(m.samples.filter((s) => s.value !== 0))}`);
}

describe("load-tests (k6 scripts through the test runner)", () => {
  let cluster: TestCluster;
  let gateways: string[];
  let env: Record<string, string>;
  const run = (script: string, options: RunOptions) =>
    runK6Script(join(SCRIPTS, script), { iterationTimeoutMs: 30_000, runTimeoutMs: 60_000, ...options });

  before(async () => {
    cluster = await startCluster({ replicas: 2, workers: 1, env: SETTINGS });
    gateways = cluster.gateways.map((g) => g.url);
    // Both replicas: VUs spread over them, publishers and reconnects use the other one.
    env = { BASE_URL: gateways.join(","), JWT_SECRET: TEST_SECRET };
  });

  after(async () => {
    await cluster?.close();
  });

  it("connection-storm.js: handshakes with a token per VU, welcome, subscribe to user:<sub>, hold, leave", async () => {
    const { result, grew } = await growth(
      gateways,
      {
        attempts: ["roomcast_connection_attempts_total"],
        subscribes: ["roomcast_requests_total", { event: "subscribe", outcome: "ok" }],
      },
      () =>
        run("connection-storm.js", {
          env: { ...env, HOLD_MS: "200" },
          scenarios: { storm: { vus: 3, iterations: 2 } },
        }),
    );
    assertClean(result, [
      "roomcast_time_to_welcome",
      "roomcast_handshake_accepted",
      "roomcast_subscribe_duration",
      "roomcast_subscribe_ok",
    ]);
    assert.equal(result.metrics.roomcast_time_to_welcome!.samples.length, 6);
    assert.equal(result.metrics.roomcast_handshake_accepted!.values.rate, 1);
    assert.equal(result.metrics.roomcast_handshake_refusals!.values.count, 0);
    assert.equal(result.metrics.roomcast_connect_failures!.values.count, 0);
    assert.equal(sum(grew.attempts!), 6, "handshakes the gateways saw");
    assert.ok(
      grew.attempts!.every((n) => n > 0),
      `connections spread over both gateways: ${grew.attempts}`,
    );
    assert.equal(sum(grew.subscribes!), 6, "subscribes the gateways answered ok");
  });

  it("connection-storm.js: refusals are counted by code (a token signed with the wrong secret: 4401)", async () => {
    const { result, grew } = await growth(gateways, { refused: ["roomcast_connection_refusals_total"] }, () =>
      run("connection-storm.js", {
        env: { ...env, JWT_SECRET: "not-the-gateways-secret-but-long-enough" },
        scenarios: { storm: { vus: 2, iterations: 1 } },
      }),
    );
    assert.deepEqual(result.errors, []);
    assert.equal(result.metrics.roomcast_handshake_accepted!.values.rate, 0);
    const refusals = result.metrics.roomcast_handshake_refusals!;
    assert.equal(refusals.values.count, 2);
    assert.ok(
      refusals.samples.every((s) => s.tags.code === "4401" && s.tags.reason === "unauthorized"),
      JSON.stringify(refusals.samples),
    );
    assert.equal(sum(grew.refused!), 2, "refusals the gateways counted");
    // The threshold on the 4401 submetric is what a real run would fail on.
    assert.ok(
      result.thresholds.valid.some(
        (t) => t.metric === "roomcast_handshake_refusals" && t.tags.code === "4401" && t.expression === "count==0",
      ),
    );
  });

  it("connection-storm.js: with a ready TOKEN instead of the secret, every VU is that token's user", async () => {
    const dev = await token({ sub: "dev", envs: ["*"], scope: "publish env:read jobs:read jobs:write" });
    const { result, grew } = await growth(
      gateways,
      { subscribes: ["roomcast_requests_total", { event: "subscribe", outcome: "ok" }] },
      () =>
        run("connection-storm.js", {
          env: { BASE_URL: env.BASE_URL!, TOKEN: dev, HOLD_MS: "50" },
          scenarios: { storm: { vus: 2, iterations: 1 } },
        }),
    );
    assertClean(result, ["roomcast_time_to_welcome", "roomcast_subscribe_ok"]);
    assert.equal(result.metrics.roomcast_subscribe_ok!.values.rate, 1, "both subscribed to user:dev");
    assert.equal(sum(grew.subscribes!), 2);
  });

  it("fanout.js: subscribers of one env channel get every event once, in order, with its latency", async () => {
    const published = 8;
    const subscribers = 3;
    const { result, grew } = await growth(
      gateways,
      {
        published: ["roomcast_events_published_total", { namespace: "env" }],
        delivered: ["roomcast_events_delivered_total", { namespace: "env" }],
      },
      () =>
        run("fanout.js", {
          env: { ...env, ENV_ID: "lt-fanout", WARMUP_S: "1", PUBLISH_S: "1", DRAIN_S: "1" },
          scenarios: { subscribers: { vus: subscribers, iterations: 1 }, publisher: { vus: 1, iterations: published } },
        }),
    );
    assertClean(result, [
      "roomcast_fanout_latency",
      "roomcast_fanout_delivery_latency",
      "roomcast_publish_duration",
      "roomcast_publish_accepted",
    ]);
    for (const counter of ["roomcast_fanout_gaps", "roomcast_fanout_duplicates", "roomcast_fanout_missed"])
      assertZero(result, counter);
    assert.equal(result.metrics.roomcast_fanout_events_received!.values.count, subscribers * published);
    assert.equal(result.metrics.roomcast_fanout_latency!.samples.length, subscribers * published);
    assert.equal(result.metrics.roomcast_publish_accepted!.values.rate, 1);
    assert.equal(sum(grew.published!), published, "HTTP publishes the gateways took");
    assert.equal(sum(grew.delivered!), subscribers * published, "deliveries the gateways wrote");
  });

  it("job-streams.js: sample.build jobs followed to done, lines contiguous across a retry, ending in build ok", async () => {
    const lines = 40;
    const jobs = 2;
    const { result, grew } = await growth(
      cluster.workers.map((w) => w.url),
      {
        completed: ["roomcast_job_attempts_total", { processor: "sample.build", outcome: "completed" }],
        retried: ["roomcast_job_attempts_total", { processor: "sample.build", outcome: "retried" }],
        lines: ["roomcast_job_log_lines_total", { processor: "sample.build" }],
      },
      () =>
        run("job-streams.js", {
          env: { ...env, LINES: String(lines), JOB_DURATION_MS: "400", FAIL_ATTEMPTS: "1" },
          scenarios: { jobs: { vus: jobs, iterations: 1 } },
        }),
    );
    assertClean(result, [
      "roomcast_job_time_to_done",
      "roomcast_job_time_to_first_line",
      "roomcast_job_create_duration",
      "roomcast_job_lines",
      "roomcast_job_completed",
    ]);
    for (const counter of ["roomcast_job_line_gaps", "roomcast_job_offset_gaps"]) assertZero(result, counter);
    assert.equal(result.metrics.roomcast_job_time_to_done!.samples.length, jobs);
    assert.equal(result.metrics.roomcast_job_completed!.values.rate, 1);
    assert.equal(sum(grew.completed!), jobs, "jobs the worker completed");
    assert.equal(sum(grew.retried!), jobs, "the failing first attempts the worker retried");
    const received = result.metrics.roomcast_job_lines!.values.count!;
    assert.ok(received > jobs * lines, `lines of both attempts: ${received}`);
    assert.equal(received, sum(grew.lines!), "every line the worker published was received");
  });

  it("reconnect-recovery.js: dropped sockets resubscribe with since on the other replica and get exactly what they missed", async () => {
    const vus = 2;
    const iterations = 2;
    const missed = 5;
    const { result, grew } = await growth(
      gateways,
      {
        recovered: ["roomcast_recoveries_total", { outcome: "recovered" }],
        notRecovered: ["roomcast_recoveries_total", { outcome: "not_recovered" }],
      },
      () =>
        run("reconnect-recovery.js", {
          env: { ...env, BEFORE: "3", MISSED: String(missed), AFTER: "2", AWAY_MS: "100" },
          scenarios: { recovery: { vus, iterations } },
        }),
    );
    assertClean(result, ["roomcast_recovered", "roomcast_recovery_time", "roomcast_recovery_events"]);
    for (const counter of ["roomcast_recovery_lost", "roomcast_recovery_unexpected", "roomcast_recovery_gaps"])
      assertZero(result, counter);
    assert.equal(result.metrics.roomcast_recovered!.samples.length, vus * iterations);
    assert.equal(result.metrics.roomcast_recovered!.values.rate, 1);
    assert.equal(result.metrics.roomcast_recovery_events!.values.count, vus * iterations * missed);
    assert.equal(sum(grew.recovered!), vus * iterations, "recoveries the gateways made");
    assert.equal(sum(grew.notRecovered!), 0);
  });

  describe("the runner reports what k6 would", () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "k6-runner-"));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("failed checks, exceptions in iterations and event handlers, sockets left open, invalid thresholds", async () => {
      const script = join(dir, "broken.js");
      writeFileSync(
        script,
        `import { check } from "k6";
import { Counter } from "k6/metrics";
import { setTimeout } from "k6/timers";
import { WebSocket } from "k6/websockets";
const counter = new Counter("harness_counter");
export const options = {
  scenarios: { broken: { executor: "per-vu-iterations", exec: "broken" } },
  thresholds: {
    harness_counter: ["count==3", "p(95)<1"],
    "harness_counter{kind:x}": ["rate<2"],
    missing_metric: ["count==0"],
    checks: ["rate>>0.5"],
    iteration_duration: ["p(101)<5", { threshold: "med<=100", abortOnFail: true }],
  },
};
export function broken() {
  counter.add(1, { kind: "x" });
  check(1, { "one is two": (v) => v === 2, "one is one": (v) => v === 1 });
  const url = __ENV.BASE_URL.split(",")[0].replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket";
  if (__ITER === 0) {
    const ws = new WebSocket(url);
    ws.onopen = () => { throw new Error("thrown in onopen"); };
  } else if (__ITER === 1) {
    new WebSocket(url);
  } else {
    setTimeout(() => {}, 10);
    throw new Error("thrown in the iteration");
  }
}
`,
      );
      const result = await runK6Script(script, { env, iterations: 3, iterationTimeoutMs: 1500 });
      assert.deepEqual(result.checks, { "one is two": { passes: 0, fails: 3 }, "one is one": { passes: 3, fails: 0 } });
      assert.equal(result.metrics.harness_counter!.values.count, 3);
      assert.equal(result.metrics.iterations!.values.count, 3, "every iteration ran, despite the errors");
      const errors = result.errors.join("\n");
      assert.match(errors, /iteration 0: Error: thrown in onopen/);
      assert.match(errors, /iteration 1: Error: iteration did not end within 1500 ms; still open: WebSocket ws:/);
      assert.match(errors, /iteration 2: Error: thrown in the iteration/);
      assert.deepEqual(
        result.thresholds.invalid.map((t) => `${t.key} ${t.expression}`),
        ["harness_counter p(95)<1", "missing_metric ", "checks rate>>0.5", "iteration_duration p(101)<5"],
      );
      assert.deepEqual(
        result.thresholds.valid.map((t) => `${t.key} ${t.expression}`),
        ["harness_counter count==3", "harness_counter{kind:x} rate<2", "iteration_duration med<=100"],
      );
      assert.equal(result.thresholds.valid[2]!.abortOnFail, true);
    });

    it("modules it does not provide (k6/ws) and bad scenario definitions", async () => {
      const ws = join(dir, "legacy-ws.js");
      writeFileSync(ws, `import ws from "k6/ws";\nexport default function () { ws.connect(); }\n`);
      const legacy = await runK6Script(ws, { env });
      assert.match(legacy.errors.join("\n"), /init context \(VU 0\): .*not k6\/ws/s);

      const bad = join(dir, "bad-scenarios.js");
      writeFileSync(
        bad,
        `export const options = { scenarios: {
  a: { executor: "constant-arrival-rate", rate: 10, duration: "1x", preAllocatedVus: 2 },
  b: { executor: "ramping-vus", stages: [], exec: "nope" },
} };
export default function () {}
`,
      );
      const refused = await runK6Script(bad, { env, scenarios: { c: { vus: 1 } } });
      const errors = refused.errors.join("\n");
      for (const expected of [
        /scenario a: constant-arrival-rate needs preAllocatedVUs/,
        /scenario a: unknown field preAllocatedVus/,
        /scenario a: duration: invalid duration "1x"/,
        /scenario b: stages must be a non-empty array/,
        /scenario b: exec "nope" is not a function the script exports/,
        /sizes for scenario c, which the script does not define/,
      ]) {
        assert.match(errors, expected);
      }
      assert.equal(refused.metrics.iterations, undefined, "nothing ran");
    });
  });
});

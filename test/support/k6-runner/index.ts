/**
 * A TEST HARNESS, not k6: runs a k6 script in Node against a real cluster, so the tests can
 * check that the load-test scripts speak the protocol right without installing k6 (AGPL).
 *
 * - Each VU is a worker thread with its own module instance of the script and k6's globals
 *   (`__ENV`, `__VU`, `__ITER`); `k6`, `k6/http`, `k6/websockets`, `k6/metrics`,
 *   `k6/timers`, `k6/crypto`, `k6/encoding` and `k6/execution` resolve to the shims of
 *   ./shims (resolution hooks, hooks.ts); any other k6 module fails to load.
 * - Lifecycle as in k6: every VU's init context, setup() once (in its own instance, __VU 0),
 *   the scenarios of `options.scenarios` (concurrently, each from its startTime), teardown().
 *   Setup data reaches VUs and teardown through JSON.
 * - Executors are NOT simulated: each scenario runs `vus` VUs of `iterations` iterations
 *   each (from the caller; default 1 and 1), honouring its `exec`, `env`, `tags` and
 *   `startTime`. The scenario definitions are still validated as k6 would.
 * - An iteration ends when its function returned (its promise settled) and every socket and
 *   timer it opened is closed or done, or when nothing is left that could settle it; an
 *   exception in an event handler, a rejected promise nobody handled or a timeout ends it
 *   with an error.
 * - Thresholds are parsed with k6's grammar and checked against the metrics' types; they are
 *   never evaluated (the tests make no timed assertions).
 */
import { once } from "node:events";
import { resolve as resolvePath } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { parseDuration } from "./durations.js";
import type { FromVu, MetricDefinition, MetricType, Sample, ScenarioPlan, ToVu, VuWorkerData } from "./protocol.js";
import { BUILTIN_METRICS, validateThresholds, type InvalidThreshold, type ParsedThreshold } from "./thresholds.js";

export type { ParsedThreshold, InvalidThreshold } from "./thresholds.js";
export { parseThresholdExpression, parseMetricKey, validateThresholds } from "./thresholds.js";

export interface ScenarioOverride {
  vus?: number;
  iterations?: number;
  /** Replaces the scenario's startTime. */
  startTimeMs?: number;
}

export interface RunOptions {
  /** __ENV of every VU (a scenario's `env` is merged over it). */
  env?: Record<string, string>;
  /** Per scenario, by name; the defaults below for the others. */
  scenarios?: Record<string, ScenarioOverride>;
  vus?: number;
  iterations?: number;
  /** Longest an iteration, setup or teardown may run (default 60 s). */
  iterationTimeoutMs?: number;
  /** Longest the whole run may take (default 180 s). */
  runTimeoutMs?: number;
}

export interface MetricResult {
  type: MetricType;
  contains: "time" | "default";
  samples: { value: number; tags: Record<string, string> }[];
  /** As k6's summary: Trend avg, min, med, max, p(90), p(95), p(99); Counter count, rate; Rate rate, passes, fails; Gauge value, min, max. */
  values: Record<string, number>;
}

export interface K6RunResult {
  checks: Record<string, { passes: number; fails: number }>;
  metrics: Record<string, MetricResult>;
  /** Init errors, invalid options and thresholds, iteration errors (exceptions, timeouts, test.fail). */
  errors: string[];
  thresholds: { valid: ParsedThreshold[]; invalid: InvalidThreshold[] };
  /** The script's `options`, as its init context exported them. */
  options: Record<string, unknown>;
  /** The scenarios as run. */
  scenarios: ScenarioPlan[];
  durationMs: number;
}

const BOOTSTRAP = new URL("./vu-bootstrap.mjs", import.meta.url);
const VU_ENTRY = new URL("./vu.ts", import.meta.url).href;
const HELPER_ENTRY = new URL("./http-helper.ts", import.meta.url).href;

const EXECUTOR_FIELDS: Record<string, { required: string[]; optional: string[] }> = {
  "shared-iterations": { required: [], optional: ["vus", "iterations", "maxDuration"] },
  "per-vu-iterations": { required: [], optional: ["vus", "iterations", "maxDuration"] },
  "constant-vus": { required: ["duration"], optional: ["vus"] },
  "ramping-vus": { required: ["stages"], optional: ["startVUs", "gracefulRampDown"] },
  "constant-arrival-rate": { required: ["rate", "duration", "preAllocatedVUs"], optional: ["timeUnit", "maxVUs"] },
  "ramping-arrival-rate": { required: ["stages", "preAllocatedVUs"], optional: ["startRate", "timeUnit", "maxVUs"] },
};
const COMMON_FIELDS = ["executor", "startTime", "gracefulStop", "exec", "env", "tags", "options"];
const DURATION_FIELDS = ["startTime", "gracefulStop", "duration", "maxDuration", "timeUnit", "gracefulRampDown"];
const COUNT_FIELDS = ["vus", "iterations", "startVUs", "rate", "preAllocatedVUs", "maxVUs", "startRate"];

/** The problems k6 would refuse a scenario for (it does not run executors, but checks them). */
export function validateScenario(
  name: string,
  scenario: Record<string, unknown>,
  exports: readonly string[],
): string[] {
  const problems: string[] = [];
  const say = (text: string) => problems.push(`scenario ${name}: ${text}`);
  if (!/^[0-9A-Za-z_-]+$/.test(name)) say("a scenario name may only hold letters, digits, underscores and dashes");
  const executor = String(scenario.executor ?? "");
  const fields = EXECUTOR_FIELDS[executor];
  if (!fields) {
    say(`unknown executor ${JSON.stringify(scenario.executor)} (one of ${Object.keys(EXECUTOR_FIELDS).join(", ")})`);
    return problems;
  }
  for (const field of fields.required) if (scenario[field] === undefined) say(`${executor} needs ${field}`);
  for (const field of Object.keys(scenario)) {
    if (!COMMON_FIELDS.includes(field) && !fields.required.includes(field) && !fields.optional.includes(field))
      say(`unknown field ${field} for ${executor}`);
  }
  for (const field of DURATION_FIELDS) {
    if (scenario[field] === undefined) continue;
    try {
      parseDuration(scenario[field] as string);
    } catch (err) {
      say(`${field}: ${(err as Error).message}`);
    }
  }
  for (const field of COUNT_FIELDS) {
    const v = scenario[field];
    if (v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < 0))
      say(`${field} must be a whole number >= 0, not ${JSON.stringify(v)}`);
  }
  if (scenario.stages !== undefined) {
    if (!Array.isArray(scenario.stages) || scenario.stages.length === 0) say("stages must be a non-empty array");
    else {
      for (const [i, stage] of (scenario.stages as Record<string, unknown>[]).entries()) {
        try {
          parseDuration(stage.duration as string);
        } catch (err) {
          say(`stage ${i}: ${(err as Error).message}`);
        }
        if (typeof stage.target !== "number" || stage.target < 0) say(`stage ${i}: target must be a number >= 0`);
      }
    }
  }
  if (
    typeof scenario.maxVUs === "number" &&
    typeof scenario.preAllocatedVUs === "number" &&
    scenario.maxVUs < scenario.preAllocatedVUs
  )
    say("maxVUs is below preAllocatedVUs");
  if (
    executor === "shared-iterations" &&
    typeof scenario.iterations === "number" &&
    scenario.iterations < ((scenario.vus as number | undefined) ?? 1)
  )
    say("iterations below vus");
  const exec = scenario.exec === undefined ? "default" : scenario.exec;
  if (typeof exec !== "string" || !exports.includes(exec))
    say(`exec ${JSON.stringify(exec)} is not a function the script exports`);
  for (const field of ["env", "tags"]) {
    const v = scenario[field];
    if (v !== undefined && (typeof v !== "object" || v === null || Object.values(v).some((x) => typeof x !== "string")))
      say(`${field} must be an object of strings`);
  }
  return problems;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  if (sorted.length === 1) return sorted[0]!;
  const i = p * (sorted.length - 1);
  const lo = sorted[Math.floor(i)]!;
  const hi = sorted[Math.ceil(i)]!;
  return lo + (hi - lo) * (i - Math.floor(i));
}

function summarize(
  type: MetricType,
  values: number[],
  durationS: number,
  extraPercentiles: number[],
): Record<string, number> {
  switch (type) {
    case "trend": {
      const sorted = [...values].sort((a, b) => a - b);
      const out: Record<string, number> = {
        avg: values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0,
        min: sorted[0] ?? 0,
        med: percentile(sorted, 0.5),
        max: sorted[sorted.length - 1] ?? 0,
      };
      for (const p of new Set([90, 95, 99, ...extraPercentiles])) out[`p(${p})`] = percentile(sorted, p / 100);
      return out;
    }
    case "counter": {
      const count = values.reduce((a, b) => a + b, 0);
      return { count, rate: durationS > 0 ? count / durationS : 0 };
    }
    case "rate": {
      const passes = values.filter((v) => v !== 0).length;
      return { rate: values.length ? passes / values.length : 0, passes, fails: values.length - passes };
    }
    case "gauge":
      return {
        value: values[values.length - 1] ?? 0,
        min: values.length ? Math.min(...values) : 0,
        max: values.length ? Math.max(...values) : 0,
      };
  }
}

/** One thread running vu.ts: messages in, typed waits for its answers. */
class VuThread {
  readonly worker: Worker;
  private readonly waiters = new Map<string, (message: FromVu | null) => void>();
  exited = false;

  constructor(
    workerData: VuWorkerData,
    transfer: MessagePort[],
    onMessage: (m: FromVu) => void,
    onError: (text: string) => void,
  ) {
    this.worker = new Worker(BOOTSTRAP, { workerData, transferList: transfer });
    this.worker.on("message", (message: FromVu) => {
      onMessage(message);
      const waiter = this.waiters.get(message.type);
      if (waiter) {
        this.waiters.delete(message.type);
        waiter(message);
      }
    });
    this.worker.on("error", (err) => onError(`VU ${workerData.vu} thread crashed: ${err.stack ?? err.message}`));
    this.worker.on("exit", () => {
      this.exited = true;
      for (const waiter of this.waiters.values()) waiter(null);
      this.waiters.clear();
    });
  }

  /** The next message of that type (or init-error for ready); null if the thread ended first. */
  next(type: FromVu["type"]): Promise<FromVu | null> {
    if (this.exited) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.set(type, resolve));
  }

  send(message: ToVu): void {
    if (!this.exited) this.worker.postMessage(message);
  }

  async stop(): Promise<void> {
    if (!this.exited) await this.worker.terminate();
  }
}

export async function runK6Script(script: string, run: RunOptions = {}): Promise<K6RunResult> {
  const started = Date.now();
  const scriptUrl = pathToFileURL(resolvePath(script)).href;
  const iterationTimeoutMs = run.iterationTimeoutMs ?? 60_000;
  const errors: string[] = [];
  const definitions = new Map<string, MetricDefinition>();
  const samples: Sample[] = [];
  const threads: VuThread[] = [];
  let aborted = false;

  const define = (list: readonly MetricDefinition[]) => {
    for (const d of list) {
      const known = definitions.get(d.name);
      if (!known) definitions.set(d.name, d);
      else if (known.type !== d.type)
        errors.push(`metric ${d.name} is a ${known.type} in one VU and a ${d.type} in another`);
    }
  };
  const onMessage = (m: FromVu) => {
    if (m.type === "ready") define(m.definitions);
    else if (m.type === "samples") {
      define(m.definitions);
      samples.push(...m.samples);
    } else if (m.type === "setup-done" || m.type === "teardown-done" || m.type === "finished")
      samples.push(...m.samples);
    else if (m.type === "error" || m.type === "init-error") errors.push(m.error);
    else if (m.type === "abort") {
      aborted = true;
      for (const t of threads) void t.stop();
    }
  };
  const onError = (text: string) => errors.push(text);

  const helper = new Worker(BOOTSTRAP, { workerData: { entry: HELPER_ENTRY } });
  helper.on("error", (err) => errors.push(`HTTP helper thread crashed: ${err.message}`));
  await once(helper, "message");

  const spawn = (data: Omit<VuWorkerData, "entry" | "scriptUrl" | "http" | "iterationTimeoutMs">): VuThread => {
    const { port1, port2 } = new MessageChannel();
    const flag = new SharedArrayBuffer(4);
    helper.postMessage({ port: port2, flag }, [port2]);
    const thread = new VuThread(
      { ...data, entry: VU_ENTRY, scriptUrl, iterationTimeoutMs, http: { port: port1, flag } },
      [port1],
      onMessage,
      onError,
    );
    threads.push(thread);
    return thread;
  };

  const plans: ScenarioPlan[] = [];
  let options: Record<string, unknown> = {};
  const body = async () => {
    // The setup/teardown instance; its init context also tells the options.
    const setupThread = spawn({
      role: "setup",
      vu: 0,
      env: { ...run.env },
      scenario: null,
      vuIndexInScenario: 0,
      options: null,
    });
    const ready = await setupThread.next("ready");
    if (!ready || ready.type !== "ready") return;
    options = (ready.options ?? {}) as Record<string, unknown>;
    const scenarios = (options.scenarios as Record<string, Record<string, unknown>> | undefined) ?? {
      default: { executor: "per-vu-iterations", vus: options.vus ?? 1, iterations: options.iterations ?? 1 },
    };
    for (const name of Object.keys(run.scenarios ?? {}))
      if (!(name in scenarios))
        errors.push(`the runner was given sizes for scenario ${name}, which the script does not define`);
    for (const [name, scenario] of Object.entries(scenarios)) {
      const problems = validateScenario(
        name,
        scenario,
        ready.exports.filter((e) => e !== "options"),
      );
      errors.push(...problems);
      if (problems.length) continue;
      const override = run.scenarios?.[name] ?? {};
      plans.push({
        name,
        executor: String(scenario.executor),
        exec: (scenario.exec as string | undefined) ?? "default",
        vus: override.vus ?? run.vus ?? 1,
        iterations: override.iterations ?? run.iterations ?? 1,
        startTimeMs:
          override.startTimeMs ?? (scenario.startTime === undefined ? 0 : parseDuration(scenario.startTime as string)),
        env: (scenario.env as Record<string, string> | undefined) ?? {},
        tags: (scenario.tags as Record<string, string> | undefined) ?? {},
      });
    }
    if (errors.length) return;

    // Every VU's init context first, as k6 does before setup().
    let vu = 1;
    const vus = plans.map((plan) =>
      Array.from({ length: plan.vus }, (_, i) =>
        spawn({
          role: "vu",
          vu: vu++,
          env: { ...run.env, ...plan.env },
          scenario: plan,
          vuIndexInScenario: i,
          options,
        }),
      ),
    );
    const inits = await Promise.all(vus.flat().map((t) => t.next("ready")));
    if (inits.some((m) => !m || m.type !== "ready")) return;

    setupThread.send({ type: "setup" });
    const setupDone = await setupThread.next("setup-done");
    if (!setupDone || setupDone.type !== "setup-done" || aborted) return;
    const data = setupDone.data;

    await Promise.all(
      plans.map(async (plan, i) => {
        if (plan.startTimeMs > 0) await delay(plan.startTimeMs);
        await Promise.all(
          vus[i]!.map((t) => {
            const finished = t.next("finished");
            t.send({ type: "run", data });
            return finished;
          }),
        );
      }),
    );
    if (aborted) return;
    const teardownDone = setupThread.next("teardown-done");
    setupThread.send({ type: "teardown", data });
    await teardownDone;
  };

  const runTimeoutMs = run.runTimeoutMs ?? 180_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      body(),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          errors.push(`the run did not end within ${runTimeoutMs} ms`);
          resolve();
        }, runTimeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await Promise.all(threads.map((t) => t.stop()));
    await helper.terminate();
  }

  const durationMs = Date.now() - started;
  const types = new Map([...definitions.values()].map((d) => [d.name, d.type] as const));
  const thresholds = validateThresholds(options.thresholds, types);
  for (const t of thresholds.invalid)
    errors.push(`invalid threshold on ${t.key}${t.expression ? ` (${t.expression})` : ""}: ${t.reason}`);
  const wanted = new Map<string, number[]>();
  for (const t of thresholds.valid)
    if (t.aggregation === "p" && t.percentile !== undefined)
      wanted.set(t.metric, [...(wanted.get(t.metric) ?? []), t.percentile]);

  const metrics: Record<string, MetricResult> = {};
  for (const d of definitions.values())
    metrics[d.name] = { type: d.type, contains: d.contains, samples: [], values: {} };
  for (const s of samples) {
    const m = (metrics[s.metric] ??= {
      type: BUILTIN_METRICS[s.metric] ?? "counter",
      contains: "default",
      samples: [],
      values: {},
    });
    m.samples.push({ value: s.value, tags: s.tags });
  }
  for (const [name, m] of Object.entries(metrics)) {
    m.values = summarize(
      m.type,
      m.samples.map((s) => s.value),
      durationMs / 1000,
      wanted.get(name) ?? [],
    );
  }
  const checks: Record<string, { passes: number; fails: number }> = {};
  for (const s of metrics.checks?.samples ?? []) {
    const c = (checks[s.tags.check ?? ""] ??= { passes: 0, fails: 0 });
    if (s.value) c.passes++;
    else c.fails++;
  }
  return { checks, metrics, errors, thresholds, options, scenarios: plans, durationMs };
}

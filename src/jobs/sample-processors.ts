/**
 * Built-in sample processors (ROOMCAST_SAMPLE_PROCESSORS, on under `roomcast start`), for the
 * demo, the tests and the load tests. Their output looks like the real thing and is
 * deterministic for a given job id, so tests can check every line.
 *
 * - `sample.build`: a CI build. data: `{ durationMs = 10000, lines = 200, failureRate = 0,
 *   failAttempts = 0 }`: `lines` log lines over `durationMs`, five steps, progress 0 to 100;
 *   each attempt fails with probability `failureRate`, and the first `failAttempts` attempts
 *   fail for sure (to show retries).
 * - `sample.deploy`: a deploy to the job's environment: `{ version = "1.0.<n>", durationMs = 8000 }`,
 *   with the environment's status going `deploying` then `healthy`.
 * - `sample.env-status`: a simulated status feed of environments: `{ envs = [job env], intervalMs = 5000,
 *   durationMs = 0 (until cancelled) }`: every interval, each environment's status and metrics.
 */
import { defineProcessors, type ProcessorContext } from "./processor.js";

/** A small deterministic generator (mulberry32), seeded from a string. */
export function seededRandom(seed: string): () => number {
  let a = 0;
  for (let i = 0; i < seed.length; i++) a = (Math.imul(a ^ seed.charCodeAt(i), 2654435761) + i) | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function num(value: unknown, fallback: number, min: number, max: number): number {
  const n = typeof value === "number" && Number.isFinite(value) ? value : fallback;
  return Math.min(max, Math.max(min, n));
}

const STEPS = ["checkout", "install", "compile", "test", "package"] as const;
const MODULES = [
  "api",
  "auth",
  "billing",
  "channels",
  "delivery",
  "gateway",
  "history",
  "jobs",
  "metrics",
  "quotas",
  "recovery",
  "worker",
];

/** The text of line `i` (from 0) of `total` in a step of the sample build. */
function buildLine(
  step: (typeof STEPS)[number],
  i: number,
  random: () => number,
): { text: string; stream: "stdout" | "stderr"; level?: "warn" } {
  const mod = MODULES[Math.floor(random() * MODULES.length)]!;
  switch (step) {
    case "checkout":
      return {
        text: `Receiving objects: ${Math.min(100, (i + 1) * 7)}% (${(i + 1) * 113}/${(i + 1) * 113 + 40}), ${(random() * 900).toFixed(1)} KiB`,
        stream: "stdout",
      };
    case "install":
      return random() < 0.08
        ? {
            text: `npm warn deprecated ${mod}-legacy@1.${i % 9}.0: use ${mod}@2 instead`,
            stream: "stderr",
            level: "warn",
          }
        : {
            text: `added ${1 + Math.floor(random() * 40)} packages from ${mod} in ${(random() * 3).toFixed(2)}s`,
            stream: "stdout",
          };
    case "compile":
      return random() < 0.05
        ? {
            text: `src/${mod}/index.ts(${1 + Math.floor(random() * 300)},7): warning TS6133: 'unused' is declared but never read`,
            stream: "stderr",
            level: "warn",
          }
        : {
            text: `tsc: compiled src/${mod}/${["index", "service", "routes", "store"][i % 4]}.ts (${Math.floor(random() * 90) + 5} ms)`,
            stream: "stdout",
          };
    case "test":
      return {
        text: `  ✔ ${mod}: ${["handles an empty payload", "keeps offsets in order", "retries after a failure", "refuses a bad token", "recovers after a restart"][i % 5]} (${Math.floor(random() * 40) + 1} ms)`,
        stream: "stdout",
      };
    case "package":
      return {
        text: `  adding dist/${mod}/${["index", "service", "routes", "store"][i % 4]}.js (${(random() * 60).toFixed(1)} kB)`,
        stream: "stdout",
      };
  }
}

async function build(
  ctx: ProcessorContext<{ durationMs?: number; lines?: number; failureRate?: number; failAttempts?: number }>,
) {
  const data = ctx.job.data ?? {};
  const durationMs = num(data.durationMs, 10_000, 0, 3_600_000);
  const total = Math.floor(num(data.lines, 200, 1, 1_000_000));
  const failureRate = num(data.failureRate, 0, 0, 1);
  const failAttempts = Math.floor(num(data.failAttempts, 0, 0, 100));
  const random = seededRandom(`${ctx.job.id}:${ctx.job.attempt}`);
  const failsThisAttempt = ctx.job.attempt <= failAttempts || random() < failureRate;
  // The failing attempt stops in the test step, as builds do.
  const failAt = failsThisAttempt ? Math.floor(total * 0.7) : -1;
  const started = Date.now();
  const perStep = Math.ceil(total / STEPS.length);
  // Sleep in slices of at least 20 ms, so that long builds do not wake the event loop per line.
  const linesPerTick = Math.max(1, Math.ceil(total / Math.max(1, durationMs / 20)));
  const tickMs = total > 0 ? (durationMs * linesPerTick) / total : 0;
  let step = "";
  for (let i = 0; i < total; i++) {
    const current = STEPS[Math.min(STEPS.length - 1, Math.floor(i / perStep))]!;
    if (current !== step) {
      step = current;
      await ctx.status(step);
      ctx.log(`==> ${step}`, { level: "info" });
    }
    if (i === failAt) {
      ctx.log(`  ✖ ${MODULES[i % MODULES.length]}: keeps offsets in order: expected 42, got 41`, {
        stream: "stderr",
        level: "error",
      });
      throw new Error(`tests failed in attempt ${ctx.job.attempt}: 1 failing`);
    }
    const line = buildLine(current, i - Math.floor(i / perStep) * perStep, random);
    ctx.log(
      `[${String(i + 1).padStart(String(total).length, " ")}/${total}] ${line.text}`,
      line.level ? { stream: line.stream, level: line.level } : line.stream,
    );
    ctx.progress(((i + 1) / total) * 100);
    if ((i + 1) % linesPerTick === 0 && tickMs > 0) await ctx.sleep(tickMs);
    else if (ctx.signal.aborted) throw ctx.signal.reason;
  }
  ctx.log(`build ok: ${total} lines in ${((Date.now() - started) / 1000).toFixed(1)} s`, { level: "info" });
  return { artifact: `build-${ctx.job.id}.tar.gz`, lines: total, attempt: ctx.job.attempt };
}

async function deploy(ctx: ProcessorContext<{ version?: string; durationMs?: number }>) {
  const envId = ctx.job.envId;
  if (!envId) throw new Error("sample.deploy needs envId");
  const random = seededRandom(ctx.job.id);
  const version =
    typeof ctx.job.data?.version === "string" ? ctx.job.data.version : `1.0.${Math.floor(random() * 100)}`;
  const durationMs = num(ctx.job.data?.durationMs, 8000, 0, 3_600_000);
  const steps = ["pull image", "run migrations", "roll out", "health checks"];
  await ctx.envStatus({ status: "deploying", version, jobId: ctx.job.id });
  for (const [i, step] of steps.entries()) {
    await ctx.status(step);
    for (let r = 0; r < 5; r++) {
      ctx.log(`${step}: ${["ok", "waiting", "ready", "done", "ok"][r]} (${envId}, ${version}, replica ${r + 1}/5)`);
      ctx.progress(((i * 5 + r + 1) / (steps.length * 5)) * 100);
      await ctx.sleep(durationMs / (steps.length * 5));
    }
  }
  await ctx.envStatus({ status: "healthy", version, jobId: ctx.job.id });
  return { envId, version };
}

/** The simulated status of one environment at one moment. */
export function sampleEnvStatus(envId: string, tick: number): Record<string, unknown> {
  const random = seededRandom(`${envId}:${tick}`);
  const errorRate = random() < 0.1 ? 0.02 + random() * 0.05 : random() * 0.005;
  return {
    status: errorRate > 0.02 ? "degraded" : "healthy",
    metrics: {
      cpu: Math.round(20 + random() * 60),
      memoryMb: Math.round(400 + random() * 600),
      requestsPerSecond: Math.round(100 + random() * 900),
      errorRate: Number(errorRate.toFixed(4)),
      p95Ms: Math.round(40 + random() * 160),
    },
    ts: Date.now(),
  };
}

async function envStatusFeed(ctx: ProcessorContext<{ envs?: string[]; intervalMs?: number; durationMs?: number }>) {
  const envs = Array.isArray(ctx.job.data?.envs)
    ? ctx.job.data.envs.filter((e): e is string => typeof e === "string")
    : ctx.job.envId
      ? [ctx.job.envId]
      : [];
  if (envs.length === 0) throw new Error("sample.env-status needs data.envs or envId");
  const intervalMs = num(ctx.job.data?.intervalMs, 5000, 100, 3_600_000);
  const durationMs = num(ctx.job.data?.durationMs, 0, 0, 365 * 24 * 3_600_000);
  const until = durationMs > 0 ? Date.now() + durationMs : Infinity;
  let tick = 0;
  await ctx.status("publishing");
  while (Date.now() < until) {
    for (const envId of envs) await ctx.envStatus(sampleEnvStatus(envId, tick), envId);
    if (tick % 12 === 0) ctx.log(`status of ${envs.join(", ")} published (${tick + 1} times)`);
    tick++;
    await ctx.sleep(intervalMs);
  }
  return { envs, ticks: tick };
}

export const SAMPLE_PROCESSORS = defineProcessors({
  "sample.build": build,
  "sample.deploy": deploy,
  "sample.env-status": envStatusFeed,
});

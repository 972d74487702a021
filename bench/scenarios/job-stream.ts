/**
 * Job log streaming (roomcast only; the baselines have no jobs): J `sample.build` jobs of L
 * lines each (no pacing: as fast as the worker produces them) on one worker (concurrency 4),
 * each followed by one subscriber on each of two replicas. Log lines per second delivered to
 * subscribers, from the first line to the last `done`.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { quantile } from "../lib/histogram.js";
import { cpuMeter, sleep } from "../lib/proc.js";
import { startNodeServer, type Replica } from "../systems/systems.js";
import { until, withSystem, type Profile, type ScenarioResult } from "./harness.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export async function jobStream(profile: Profile): Promise<ScenarioResult> {
  const jobs = profile === "full" ? 8 : 4;
  const lines = profile === "full" ? 50_000 : 20_000;
  return withSystem("roomcast", { replicas: 2, loadgens: 1 }, async ({ redis, system, clients, meter }) => {
    let worker: Replica | undefined;
    try {
      worker = await startNodeServer(join(ROOT, "dist/cli.js"), ["worker"], {
        REDIS_URL: redis.url,
        ROOMCAST_SAMPLE_PROCESSORS: "true",
        ROOMCAST_WORKER_CONCURRENCY: "4",
      });
      const base = system.replicas[0]!.url;
      const ids: string[] = [];
      for (let j = 0; j < jobs; j++) {
        // A short delay: the subscribers are on before the first line.
        const res = await fetch(`${base}/v1/jobs`, {
          method: "POST",
          headers: { ...system.publishHeaders, "content-type": "application/json" },
          body: JSON.stringify({ name: "sample.build", data: { lines, durationMs: 0 }, opts: { delayMs: 1500 } }),
        });
        if (res.status !== 201) throw new Error(`POST /v1/jobs answered ${res.status}: ${await res.text()}`);
        ids.push(((await res.json()) as { jobId: string }).jobId);
      }
      // The publisher's token owns the jobs: the subscribers use it too (one per job and replica).
      const token = system.publishHeaders.authorization!.slice("Bearer ".length);
      const specs = ids.flatMap((id) => [0, 1].map(() => ({ token, channels: [`job:${id}`] })));
      await clients.connect(
        {
          protocol: "roomcast",
          urls: system.replicas.map((r) => r.url),
          concurrency: 16,
          sampleEvery: 1,
          track: false,
          jobs: true,
        },
        specs,
      );
      const cpu = meter();
      const workerCpu = cpuMeter(() => [worker!.pid]);
      const done = await until(async () => (await clients.stats()).jobsDone >= specs.length, 120_000, 100);
      const stats = await clients.stats();
      const used = cpu.stop();
      const [workerSeconds] = workerCpu.stop();
      await sleep(100);
      const seconds = (stats.lastDeliveryAt - stats.firstDeliveryAt) / 1000;
      return {
        scenario: "job log streaming",
        system: "roomcast" as const,
        figures: {
          jobs,
          lines_per_job: lines,
          lines_delivered: stats.lines,
          lines_per_s: stats.lines / seconds,
          event_latency_p99_ms: quantile(stats.latency, 0.99),
          worker_cpu_us_per_line: ((workerSeconds ?? 0) * 1e6) / (jobs * lines),
        },
        cpu: used,
        notes: done ? [] : [`only ${stats.jobsDone} of ${specs.length} done events`],
      };
    } finally {
      await worker?.kill();
    }
  });
}

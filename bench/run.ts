/**
 * The benchmark suite: every scenario against roomcast (default features on), the stock
 * baseline (socket.io + @socket.io/redis-adapter), a raw ws + Redis relay (the floor), and
 * Centrifugo v6 with its Redis engine where its binary exists, in one run on this machine.
 * Prints a markdown table with each figure and its ratio to the stock baseline, checks the
 * performance targets, and writes JSON to bench/results/.
 *
 *   npm run bench                      # the quick profile (a few minutes)
 *   npm run bench -- --full            # the sizes of docs/benchmarks.md
 *   npm run bench -- --only fanout,latency --systems roomcast,stock
 *
 * Everything starts here: a Redis per scenario and system, the replicas, the load generators
 * (separate processes speaking the wire protocols themselves) and the publisher. CPU seconds
 * of servers, Redis and clients are reported so that a saturated client is visible.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { centrifugoBinary } from "./systems/centrifugo.js";
import { SYSTEM_NAMES, type SystemKey } from "./systems/systems.js";
import type { Profile, ScenarioResult } from "./scenarios/harness.js";
import { connectRate } from "./scenarios/connect-rate.js";
import { fanout } from "./scenarios/fanout.js";
import { idleMemory } from "./scenarios/idle-memory.js";
import { jobStream } from "./scenarios/job-stream.js";
import { latency } from "./scenarios/latency.js";
import { manyChannels } from "./scenarios/many-channels.js";
import { presence } from "./scenarios/presence.js";
import { recovery } from "./scenarios/recovery.js";
import { checkTargets, markdownReport } from "./report.js";

type Scenario = {
  name: string;
  systems: readonly SystemKey[];
  run: (key: SystemKey, profile: Profile) => Promise<ScenarioResult | ScenarioResult[]>;
};

const ALL: SystemKey[] = ["roomcast", "stock", "ws-relay", "centrifugo"];

export const SCENARIOS: Scenario[] = [
  { name: "idle-memory", systems: ALL, run: idleMemory },
  { name: "connect-rate", systems: ALL, run: connectRate },
  { name: "fanout", systems: ALL, run: fanout },
  {
    name: "latency",
    systems: ALL,
    run: async (key, profile) =>
      profile === "full"
        ? [await latency(key, profile, 10_000), await latency(key, profile, 50_000)]
        : [await latency(key, profile, 10_000)],
  },
  { name: "many-channels", systems: ALL, run: manyChannels },
  { name: "job-stream", systems: ["roomcast"], run: (_key, profile) => jobStream(profile) },
  { name: "recovery", systems: ALL, run: recovery },
  { name: "presence", systems: ["roomcast"], run: (_key, profile) => presence(profile) },
];

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const profile: Profile = process.argv.includes("--full") ? "full" : "quick";
  const only = option("only")?.split(",");
  let systems = (option("systems")?.split(",") as SystemKey[] | undefined) ?? ALL;
  const notes: string[] = [];
  if (systems.includes("centrifugo") && !centrifugoBinary()) {
    systems = systems.filter((s) => s !== "centrifugo");
    notes.push("Centrifugo skipped: no binary (go install github.com/centrifugal/centrifugo/v6@v6.9.1)");
  }
  const started = Date.now();
  const results: ScenarioResult[] = [];
  for (const scenario of SCENARIOS) {
    if (only && !only.includes(scenario.name)) continue;
    for (const key of scenario.systems.filter((s) => systems.includes(s))) {
      process.stderr.write(`bench: ${scenario.name} on ${SYSTEM_NAMES[key]} ...`);
      const t0 = Date.now();
      try {
        const out = await scenario.run(key, profile);
        results.push(...(Array.isArray(out) ? out : [out]));
        process.stderr.write(` ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      } catch (err) {
        process.stderr.write(` failed: ${(err as Error).message}\n`);
        results.push({
          scenario: scenario.name,
          system: key,
          figures: {},
          cpu: { servers: 0, redis: 0, clients: 0 },
          notes: [`failed: ${(err as Error).message}`],
        });
      }
    }
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const targets = checkTargets(results);
  const report = markdownReport(results, { profile, machine, seconds: (Date.now() - started) / 1000, notes, targets });
  process.stdout.write(report);
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const json = JSON.stringify({ profile, machine, date: new Date().toISOString(), results, targets, notes }, null, 2);
  writeFileSync(`${dir}bench-${profile}-${stamp}.json`, json);
  writeFileSync(`${dir}latest-${profile}.json`, json);
  writeFileSync(`${dir}latest-${profile}.md`, report);
  process.stderr.write(`bench: wrote bench/results/bench-${profile}-${stamp}.json\n`);
  process.exit(0);
}

void main();

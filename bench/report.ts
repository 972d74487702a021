/** The benchmark report: a markdown table per scenario with ratios to the stock baseline, and the targets. */
import type { ScenarioResult } from "./scenarios/harness.js";
import { SYSTEM_NAMES, type SystemKey } from "./systems/systems.js";

export interface TargetCheck {
  target: string;
  value: string;
  met: boolean | undefined;
}

function figure(results: ScenarioResult[], scenario: string, system: SystemKey, name: string): number | undefined {
  const value = results.find((r) => r.scenario === scenario && r.system === system)?.figures[name];
  return value === undefined || Number.isNaN(value) ? undefined : value;
}

/** The targets (docs/benchmarks.md, "Targets"), from the figures of one run. */
export function checkTargets(results: ScenarioResult[]): TargetCheck[] {
  const ratio = (scenario: string, name: string, baseline: SystemKey = "stock") => {
    const mine = figure(results, scenario, "roomcast", name);
    const theirs = figure(results, scenario, baseline, name);
    return mine !== undefined && theirs !== undefined && theirs !== 0 ? mine / theirs : undefined;
  };
  const fmt = (n: number | undefined) => (n === undefined ? "n/a" : `${n.toFixed(2)}x`);
  /** A target on a ratio to stock: met when `ok` holds for it. */
  const onRatio = (target: string, scenario: string, name: string, ok: (r: number) => boolean): TargetCheck => {
    const r = ratio(scenario, name);
    return { target, value: fmt(r), met: r === undefined ? undefined : ok(r) };
  };
  const checks: TargetCheck[] = [];
  const fanStock = ratio("fan-out", "deliveries_per_s");
  const fanCentrifugo = ratio("fan-out", "deliveries_per_s", "centrifugo");
  checks.push({
    target: "fan-out deliveries/s >= 1.5x stock and >= 0.8x Centrifugo",
    value: `${fmt(fanStock)} stock, ${fmt(fanCentrifugo)} Centrifugo`,
    met: fanStock === undefined ? undefined : fanStock >= 1.5 && (fanCentrifugo === undefined || fanCentrifugo >= 0.8),
  });
  checks.push(
    onRatio("server CPU per delivery <= 0.7x stock", "fan-out", "server_cpu_us_per_delivery", (r) => r <= 0.7),
  );
  for (const rate of ["10k", "50k"])
    checks.push(
      onRatio(
        `p99 latency at ${rate} deliveries/s <= stock`,
        `latency at ${rate} deliveries/s`,
        "p99_ms",
        (r) => r <= 1,
      ),
    );
  checks.push(
    onRatio("connections/s with JWT and quotas >= 1.0x stock", "connection rate", "connections_per_s", (r) => r >= 1),
  );
  checks.push(
    onRatio("server CPU per connect <= 1.0x stock", "connection rate", "server_cpu_ms_per_connection", (r) => r <= 1),
  );
  const heap = figure(results, "idle memory", "roomcast", "heap_per_connection_bytes");
  checks.push({
    target: "idle heap per connection <= 7 KiB",
    value: heap === undefined ? "n/a" : `${(heap / 1024).toFixed(2)} KiB`,
    met: heap === undefined ? undefined : heap <= 7 * 1024,
  });
  checks.push(
    onRatio("idle RSS per connection <= 0.7x stock", "idle memory", "rss_per_connection_bytes", (r) => r <= 0.7),
  );
  const recovery = "recovery after a replica kill";
  const lost = figure(results, recovery, "roomcast", "events_lost");
  const clients = figure(results, recovery, "roomcast", "clients");
  const resubscribed = figure(results, recovery, "roomcast", "resubscribed");
  const notRecovered = figure(results, recovery, "roomcast", "not_recovered_subscriptions");
  const allBack = figure(results, recovery, "roomcast", "seconds_until_all_resubscribed");
  checks.push({
    target: "recovery after a replica kill: 0 lost, every client back in <= 8 s",
    value:
      lost === undefined
        ? "n/a"
        : `${lost} lost, ${resubscribed}/${clients} resubscribed in ${allBack?.toFixed(1) ?? "n/a"} s, ${notRecovered} not recovered`,
    met:
      lost === undefined
        ? undefined
        : lost === 0 && resubscribed === clients && notRecovered === 0 && allBack !== undefined && allBack <= 8,
  });
  const stats = figure(results, "presence", "roomcast", "presence_stats_p99_ms");
  const present = figure(results, "presence", "roomcast", "connections");
  checks.push({
    target: "presence_stats p99 on a channel of 20,000 connections < 5 ms",
    value: stats === undefined ? "n/a" : `${stats.toFixed(2)} ms at ${present} connections`,
    met: stats === undefined || (present ?? 0) < 20_000 ? undefined : stats < 5,
  });
  return checks;
}

function pretty(name: string, value: number): string {
  if (Number.isNaN(value)) return "n/a";
  if (name.endsWith("_bytes")) return `${(value / 1024).toFixed(2)} KiB`;
  if (name.endsWith("_ms")) return value < 10 ? value.toFixed(2) : value.toFixed(1);
  if (name.endsWith("_share")) return `${(value * 100).toFixed(1)}%`;
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

export function markdownReport(
  results: ScenarioResult[],
  meta: { profile: string; machine: string; seconds: number; notes: string[]; targets: TargetCheck[] },
): string {
  const lines: string[] = [
    `# roomcast benchmarks (${meta.profile} profile)`,
    "",
    `Machine: ${meta.machine}. Run took ${meta.seconds.toFixed(0)} s.`,
    "",
  ];
  for (const note of meta.notes) lines.push(`- ${note}`);
  if (meta.notes.length) lines.push("");
  const scenarios = [...new Set(results.map((r) => r.scenario))];
  for (const scenario of scenarios) {
    const rows = results.filter((r) => r.scenario === scenario);
    const stock = rows.find((r) => r.system === "stock");
    const names = [...new Set(rows.flatMap((r) => Object.keys(r.figures)))];
    lines.push(`## ${scenario}`, "");
    lines.push(`| system | ${names.join(" | ")} | CPU s (servers / Redis / clients) |`);
    lines.push(`|---|${names.map(() => "---").join("|")}|---|`);
    for (const row of rows) {
      const cells = names.map((name) => {
        const value = row.figures[name];
        if (value === undefined) return "";
        const base = stock?.figures[name];
        const showRatio =
          row.system !== "stock" &&
          base !== undefined &&
          base !== 0 &&
          !Number.isNaN(base) &&
          !Number.isNaN(value) &&
          /_per_s|_ms|_bytes|_us_/.test(name);
        return showRatio ? `${pretty(name, value)} (${(value / base).toFixed(2)}x)` : pretty(name, value);
      });
      lines.push(
        `| ${SYSTEM_NAMES[row.system]} | ${cells.join(" | ")} | ${row.cpu.servers.toFixed(1)} / ${row.cpu.redis.toFixed(1)} / ${row.cpu.clients.toFixed(1)} |`,
      );
    }
    const notes = rows.flatMap((r) => r.notes.map((n) => `${SYSTEM_NAMES[r.system]}: ${n}`));
    if (notes.length) lines.push("", ...notes.map((n) => `- ${n}`));
    lines.push("");
  }
  lines.push("## Targets", "", "| target | roomcast | met |", "|---|---|---|");
  for (const t of meta.targets)
    lines.push(`| ${t.target} | ${t.value} | ${t.met === undefined ? "not measured" : t.met ? "yes" : "**no**"} |`);
  lines.push("", "(x): ratio to the stock baseline in the same run.", "");
  return lines.join("\n");
}

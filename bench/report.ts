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

/** The targets (docs/benchmarks.md), from the figures of one run. */
export function checkTargets(results: ScenarioResult[]): TargetCheck[] {
  const ratio = (scenario: string, name: string) => {
    const mine = figure(results, scenario, "roomcast", name);
    const stock = figure(results, scenario, "stock", name);
    return mine !== undefined && stock !== undefined && stock !== 0 ? mine / stock : undefined;
  };
  const fmt = (n: number | undefined) => (n === undefined ? "n/a" : `${n.toFixed(2)}x`);
  const checks: TargetCheck[] = [];
  const fan = ratio("fan-out", "deliveries_per_s");
  checks.push({
    target: "fan-out deliveries/s >= 1.0x stock",
    value: fmt(fan),
    met: fan === undefined ? undefined : fan >= 1,
  });
  const p99 = ratio("latency at 10k deliveries/s", "p99_ms");
  checks.push({
    target: "p99 latency at 10k deliveries/s <= stock",
    value: fmt(p99),
    met: p99 === undefined ? undefined : p99 <= 1,
  });
  const rss = ratio("idle memory", "rss_per_connection_bytes");
  checks.push({
    target: "idle RSS per connection <= stock",
    value: fmt(rss),
    met: rss === undefined ? undefined : rss <= 1,
  });
  const heap = figure(results, "idle memory", "roomcast", "heap_per_connection_bytes");
  checks.push({
    target: "idle heap per connection < 10 KB",
    value: heap === undefined ? "n/a" : `${(heap / 1024).toFixed(2)} KiB`,
    met: heap === undefined ? undefined : heap < 10_240,
  });
  const heapRatio = ratio("idle memory", "heap_per_connection_bytes");
  checks.push({
    target: "idle heap per connection <= stock",
    value: fmt(heapRatio),
    met: heapRatio === undefined ? undefined : heapRatio <= 1,
  });
  const connect = ratio("connection rate", "connections_per_s");
  checks.push({
    target: "connection rate with auth and quotas >= 0.8x stock",
    value: fmt(connect),
    met: connect === undefined ? undefined : connect >= 0.8,
  });
  const lost = figure(results, "recovery after a replica kill", "roomcast", "events_lost");
  const clients = figure(results, "recovery after a replica kill", "roomcast", "clients");
  const resubscribed = figure(results, "recovery after a replica kill", "roomcast", "resubscribed");
  const notRecovered = figure(results, "recovery after a replica kill", "roomcast", "not_recovered_subscriptions");
  checks.push({
    target: "recovery after a replica kill: 0 lost, every client recovered",
    value:
      lost === undefined
        ? "n/a"
        : `${lost} lost, ${resubscribed}/${clients} resubscribed, ${notRecovered} not recovered`,
    met: lost === undefined ? undefined : lost === 0 && resubscribed === clients && notRecovered === 0,
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

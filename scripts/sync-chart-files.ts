/**
 * Helm reads no file outside its chart, so helm/roomcast/files/ keeps copies of the alert rules
 * and dashboards of grafana/ (the PrometheusRule and the dashboard ConfigMaps are made from
 * them). Copy them again after changing grafana/:
 *
 *     npx tsx scripts/sync-chart-files.ts           # copy
 *     npx tsx scripts/sync-chart-files.ts --check   # exit 1, naming the stale copies, if any differ
 *
 * test/unit/helm-chart.test.ts fails when a copy is not byte-identical to its source.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHART_FILES = join(ROOT, "helm", "roomcast", "files");

/** Each source file of grafana/ and the path of its copy under the chart's files/. */
export function chartFileCopies(root: string = ROOT): { source: string; copy: string }[] {
  const files = join(root, "helm", "roomcast", "files");
  const dashboards = join(root, "grafana", "dashboards");
  return [
    { source: join(root, "grafana", "alerts", "roomcast-rules.yml"), copy: join(files, "roomcast-rules.yml") },
    ...readdirSync(dashboards)
      .filter((name) => name.endsWith(".json"))
      .sort()
      .map((name) => ({ source: join(dashboards, name), copy: join(files, "dashboards", name) })),
  ];
}

/** Copies under files/dashboards/ that have no source any more. */
function orphanDashboards(copies: { copy: string }[]): string[] {
  const dir = join(CHART_FILES, "dashboards");
  if (!existsSync(dir)) return [];
  const wanted = new Set(copies.map((c) => c.copy));
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .filter((path) => !wanted.has(path));
}

function main(argv: readonly string[]): void {
  const check = argv.includes("--check");
  const copies = chartFileCopies();
  const stale = copies.filter(
    ({ source, copy }) => !existsSync(copy) || !readFileSync(source).equals(readFileSync(copy)),
  );
  const orphans = orphanDashboards(copies);
  if (check) {
    for (const { copy } of stale) console.error(`stale: ${relative(ROOT, copy)}`);
    for (const path of orphans) console.error(`no source in grafana/dashboards: ${relative(ROOT, path)}`);
    if (stale.length + orphans.length > 0) {
      console.error("run: npx tsx scripts/sync-chart-files.ts");
      process.exit(1);
    }
    console.log(`helm/roomcast/files: ${copies.length} files up to date`);
    return;
  }
  for (const { source, copy } of stale) {
    mkdirSync(dirname(copy), { recursive: true });
    copyFileSync(source, copy);
    console.log(`copied ${relative(ROOT, source)} -> ${relative(ROOT, copy)}`);
  }
  for (const path of orphans) {
    rmSync(path);
    console.log(`removed ${relative(ROOT, path)}`);
  }
  if (stale.length + orphans.length === 0) console.log(`helm/roomcast/files: ${copies.length} files up to date`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2));

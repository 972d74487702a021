/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by package or
 * source file, and inclusive time of the functions that match a pattern.
 *   npx tsx bench/tools/profile-summary.ts <file.cpuprofile> [--top 30] [--match regexp]
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2]!;
const top = Number(process.argv[process.argv.indexOf("--top") + 1]) || 30;
const matchAt = process.argv.indexOf("--match");
const match = matchAt > 0 ? new RegExp(process.argv[matchAt + 1]!) : undefined;
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);

const where = (url: string) => {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  const own = /\/(dist|src|bench)\/(.*)$/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return url.startsWith("node:") ? url : url ? "node internals" : "(native/gc/idle)";
};
const add = (map: Map<string, number>, key: string, v: number) => map.set(key, (map.get(key) ?? 0) + v);
const functions = new Map<string, number>();
const places = new Map<string, number>();
for (const [id, t] of self) {
  const { callFrame } = byId.get(id)!;
  add(functions, `${callFrame.functionName || "(anonymous)"} ${where(callFrame.url)}:${callFrame.lineNumber + 1}`, t);
  add(places, where(callFrame.url), t);
}
const pct = (t: number) => `${((t / total) * 100).toFixed(1).padStart(5)}%`;
console.log(`total ${(total / 1000).toFixed(0)} ms sampled`);
console.log("\nself time by package / file:");
for (const [k, t] of [...places].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`);
console.log("\nself time by function:");
for (const [k, t] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`);
if (match) {
  // Inclusive time of frames matching the pattern (each sample counted once per matching frame kind).
  const inclusive = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const { callFrame } = byId.get(n)!;
      const key = `${callFrame.functionName || "(anonymous)"} ${where(callFrame.url)}:${callFrame.lineNumber + 1}`;
      if (match.test(key) && !seen.has(key)) {
        seen.add(key);
        add(inclusive, key, profile.timeDeltas[i] ?? 0);
      }
    }
  });
  console.log(`\ninclusive time of frames matching ${match}:`);
  for (const [k, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`);
}

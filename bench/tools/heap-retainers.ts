/**
 * Who holds the objects of one kind that a heap snapshot has and an earlier one of the same
 * process has not (node ids are stable within a process): counts their retainers, by the
 * retainer's name and the edge's name.
 *   npx tsx bench/tools/heap-retainers.ts <before.heapsnapshot> <after.heapsnapshot> "<node name or (type)>"
 */
import { readFileSync } from "node:fs";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const [beforePath, afterPath, wanted] = process.argv.slice(2) as [string, string, string];
const load = (p: string) => JSON.parse(readFileSync(p, "utf8")) as Snapshot;
const before = load(beforePath);
const after = load(afterPath);
const nf = after.snapshot.meta.node_fields;
const W = nf.length;
const [TYPE, NAME, ID, EDGES] = ["type", "name", "id", "edge_count"].map((f) => nf.indexOf(f)) as [
  number,
  number,
  number,
  number,
];
const ef = after.snapshot.meta.edge_fields;
const EW = ef.length;
const [ETYPE, ENAME, ETO] = ["type", "name_or_index", "to_node"].map((f) => ef.indexOf(f)) as [number, number, number];
const ntypes = after.snapshot.meta.node_types[0];
const etypes = after.snapshot.meta.edge_types[0];
const beforeIds = new Set<number>();
for (let i = 0; i < before.nodes.length; i += before.snapshot.meta.node_fields.length)
  beforeIds.add(before.nodes[i + before.snapshot.meta.node_fields.indexOf("id")]!);
const label = (i: number) => {
  const type = ntypes[after.nodes[i + TYPE]!]!;
  return type === "object" || type === "closure" ? after.strings[after.nodes[i + NAME]!]! : `(${type})`;
};
const targets = new Set<number>();
for (let i = 0; i < after.nodes.length; i += W)
  if (label(i) === wanted && !beforeIds.has(after.nodes[i + ID]!)) targets.add(i);
const retainers = new Map<string, number>();
let edge = 0;
for (let i = 0; i < after.nodes.length; i += W) {
  const count = after.nodes[i + EDGES]!;
  for (let e = 0; e < count; e++, edge += EW) {
    const to = after.edges[edge + ETO]!;
    if (!targets.has(to)) continue;
    const etype = etypes[after.edges[edge + ETYPE]!]!;
    const ename =
      etype === "element" || etype === "hidden"
        ? `[${after.edges[edge + ENAME]}]`
        : after.strings[after.edges[edge + ENAME]!]!;
    const key = `${label(i)} --${etype}:${ename}-->`;
    retainers.set(key, (retainers.get(key) ?? 0) + 1);
  }
}
console.log(`${targets.size} new ${wanted} objects; their retainers:`);
for (const [k, c] of [...retainers].sort((a, b) => b[1] - a[1]).slice(0, 30))
  console.log(`${String(c).padStart(7)}  ${k}`);

/**
 * Where a server's memory per connection goes: starts one replica of a system, takes a heap
 * snapshot, connects N clients (each subscribed to a channel of its own), takes another, and
 * prints the difference per constructor (objects and self size per connection).
 *   npx tsx bench/tools/heap-diff.ts [roomcast|stock] [N=2000]
 */
import { readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { startEmbeddedRedis } from "../../src/cluster/embedded-redis.js";
import { startPool } from "../lib/loadgen-pool.js";
import { sleep } from "../lib/proc.js";
import { startSystem, type SystemKey } from "../systems/systems.js";

const key = (process.argv[2] ?? "roomcast") as SystemKey;
const n = Number(process.argv[3] ?? 2000);

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** A sample of string values (of the given node types), by the value with digits masked. */
function strings(path: string, kinds: string[]): Map<string, number> {
  const snap = JSON.parse(readFileSync(path, "utf8")) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const types = snap.snapshot.meta.node_types[0];
  const out = new Map<string, number>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    if (!kinds.includes(types[snap.nodes[i + typeAt]!]!)) continue;
    const value = snap.strings[snap.nodes[i + nameAt]!]!.slice(0, 60).replace(/[0-9]+/g, "#");
    out.set(value, (out.get(value) ?? 0) + 1);
  }
  return out;
}

function tally(path: string): Map<string, { count: number; size: number }> {
  const snap = JSON.parse(readFileSync(path, "utf8")) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const types = snap.snapshot.meta.node_types[0];
  const out = new Map<string, { count: number; size: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    const name = type === "object" || type === "closure" ? snap.strings[snap.nodes[i + nameAt]!]! : `(${type})`;
    const key = type === "closure" ? `closure ${name}` : name;
    const entry = out.get(key) ?? { count: 0, size: 0 };
    entry.count++;
    entry.size += snap.nodes[i + sizeAt]!;
    out.set(key, entry);
  }
  return out;
}

async function main() {
  const redis = await startEmbeddedRedis();
  const system = await startSystem(key, { redisUrl: redis.url, replicas: 1 });
  const pool = await startPool(2);
  const dir = mkdtempSync(join(tmpdir(), `roomcast-heap-${key}-`));
  const replica = system.replicas[0]! as unknown as { pid: number };
  // The probe answers on the fork IPC channel of the replica's process.
  const child = (system as unknown as { replicas: { child?: ChildProcess }[] }).replicas[0]!.child;
  if (!child) throw new Error("replica without IPC");
  const snapshot = (path: string) =>
    new Promise<void>((resolve) => {
      child.on("message", function onMessage(m: { bench?: string }) {
        if (m?.bench !== "heap-snapshot") return;
        child.off("message", onMessage);
        resolve();
      });
      child.send({ bench: "heap-snapshot", path });
    });
  await sleep(500);
  await snapshot(join(dir, "before.heapsnapshot"));
  const specs = await Promise.all(
    Array.from({ length: n }, async (_, i) => ({ token: await system.token(i), channels: [system.channel(i)] })),
  );
  await pool.connect(
    { protocol: system.protocol, urls: [system.replicas[0]!.url], concurrency: 64, sampleEvery: 0, track: false },
    specs,
  );
  await sleep(1500);
  await snapshot(join(dir, "after.heapsnapshot"));
  const before = tally(join(dir, "before.heapsnapshot"));
  const after = tally(join(dir, "after.heapsnapshot"));
  const rows = [...after].map(([name, a]) => {
    const b = before.get(name) ?? { count: 0, size: 0 };
    return { name, count: (a.count - b.count) / n, size: (a.size - b.size) / n };
  });
  rows.sort((x, y) => y.size - x.size);
  const total = rows.reduce((s, r) => s + r.size, 0);
  console.log(
    `${key}: ${n} connections (pid ${replica.pid}), ${total.toFixed(0)} bytes of heap per connection (self sizes)`,
  );
  for (const r of rows.slice(0, 40))
    console.log(`${r.size.toFixed(0).padStart(7)} B  ${r.count.toFixed(2).padStart(6)} objects  ${r.name}`);
  if (process.argv.includes("--strings")) {
    const kinds = ["string", "concatenated string", "sliced string"];
    const b = strings(join(dir, "before.heapsnapshot"), kinds);
    const a = strings(join(dir, "after.heapsnapshot"), kinds);
    const grown = [...a]
      .map(([v, c]) => [v, (c - (b.get(v) ?? 0)) / n] as const)
      .filter(([, c]) => c >= 0.5)
      .sort((x, y) => y[1] - x[1]);
    console.log("\nstrings per connection (digits as #):");
    for (const [v, c] of grown.slice(0, 30)) console.log(`${c.toFixed(2).padStart(6)}  ${JSON.stringify(v)}`);
  }
  console.log(`snapshots kept in ${dir} (bench/tools/heap-retainers.ts reads them)`);
  await pool.stop();
  await system.stop();
  await redis.stop();
  process.exit(0);
}

void main();

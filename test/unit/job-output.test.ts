/** Log batching at the source (docs/protocol.md, "Channels and authorization"): 100 ms or 100 lines, numbered, progress conflated, retried in order. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { LogLine } from "../../src/contracts/jobs.js";
import {
  BATCH_BYTES,
  BATCH_LINES,
  BATCH_MS,
  JobOutput,
  MAX_LINE_CHARS,
  type OutputSink,
} from "../../src/jobs/job-output.js";

type Published =
  | { kind: "lines"; lines: LogLine[]; at: number }
  | { kind: "progress"; progress: number; at: number }
  | { kind: "state"; at: number };

function recorder(failFirst = 0): OutputSink & { out: Published[]; retries: number } {
  let failures = failFirst;
  const sink = {
    out: [] as Published[],
    retries: 0,
    async lines(lines: LogLine[]) {
      if (failures-- > 0) throw new Error("Connection is closed.");
      sink.out.push({ kind: "lines", lines, at: Date.now() });
    },
    async progress(progress: number) {
      sink.out.push({ kind: "progress", progress, at: Date.now() });
    },
    retrying() {
      sink.retries++;
    },
  };
  return sink;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("job output batching", () => {
  it("a few lines go out together after about 100 ms, numbered after the last line of an earlier attempt", async () => {
    const sink = recorder();
    const output = new JobOutput(sink, 41);
    const start = Date.now();
    output.log("one");
    output.log("two", { stream: "stderr", level: "warn" });
    await sleep(BATCH_MS / 2);
    assert.equal(sink.out.length, 0, "not yet");
    await sleep(BATCH_MS);
    assert.equal(sink.out.length, 1);
    const batch = sink.out[0] as Extract<Published, { kind: "lines" }>;
    assert.deepEqual(
      batch.lines.map((l) => [l.n, l.stream, l.level, l.text]),
      [
        [42, "stdout", undefined, "one"],
        [43, "stderr", "warn", "two"],
      ],
    );
    assert.ok(batch.at - start >= BATCH_MS - 5 && batch.at - start < BATCH_MS + 80, `${batch.at - start} ms`);
    assert.equal(output.linesWritten, 43);
    output.stop();
  });

  it("a burst goes out in batches of at most 100 lines, at once, in order", async () => {
    const sink = recorder();
    const output = new JobOutput(sink, 0);
    for (let i = 1; i <= 250; i++) output.log(`line ${i}`);
    await output.flush();
    const batches = sink.out.filter((p): p is Extract<Published, { kind: "lines" }> => p.kind === "lines");
    assert.deepEqual(
      batches.map((b) => b.lines.length),
      [BATCH_LINES, BATCH_LINES, 50],
    );
    assert.deepEqual(
      batches.flatMap((b) => b.lines.map((l) => l.n)),
      Array.from({ length: 250 }, (_, i) => i + 1),
    );
    output.stop();
  });

  it("batches stay under 64 KiB, and a line over 8 KiB is cut", async () => {
    const sink = recorder();
    const output = new JobOutput(sink, 0);
    for (let i = 0; i < 20; i++) output.log("x".repeat(10_000));
    await output.flush();
    const batches = sink.out.filter((p): p is Extract<Published, { kind: "lines" }> => p.kind === "lines");
    for (const b of batches) assert.ok(b.lines.reduce((n, l) => n + l.text.length, 0) <= BATCH_BYTES);
    assert.equal(batches.flatMap((b) => b.lines).length, 20);
    assert.equal(batches[0]!.lines[0]!.text.length, MAX_LINE_CHARS);
    assert.ok(batches[0]!.lines[0]!.text.endsWith("…"));
    output.stop();
  });

  it("multi-line text is one line per line", async () => {
    const sink = recorder();
    const output = new JobOutput(sink, 0);
    output.log("a\nb\r\nc");
    await output.flush();
    assert.deepEqual(
      (sink.out[0] as Extract<Published, { kind: "lines" }>).lines.map((l) => l.text),
      ["a", "b", "c"],
    );
    output.stop();
  });

  it("progress is conflated: only the newest value between two batches goes out, after the lines", async () => {
    const sink = recorder();
    const output = new JobOutput(sink, 0);
    for (let p = 1; p <= 50; p++) {
      output.log(`at ${p}`);
      output.progress(p);
    }
    output.progress(250);
    await output.flush();
    assert.deepEqual(
      sink.out.map((p) => p.kind),
      ["lines", "progress"],
    );
    assert.equal((sink.out[1] as Extract<Published, { kind: "progress" }>).progress, 100, "clamped");
    output.stop();
  });

  it("progress goes out rounded to 2 decimals (no float noise such as 13.200000000000001) and clamped to 0..100", async () => {
    const sink = recorder();
    const output = new JobOutput(sink, 0);
    const sent: number[] = [];
    // What the sample build computes for line 66 of 500, 2 of 3 and 1 of 7, then out-of-range values.
    for (const value of [(66 / 500) * 100, (2 / 3) * 100, (1 / 7) * 100, -5, 100.004, Number.NaN, 1e-9]) {
      output.progress(value);
      await output.flush();
      sent.push((sink.out.at(-1) as Extract<Published, { kind: "progress" }>).progress);
    }
    assert.equal((66 / 500) * 100, 13.200000000000001, "the noise this is about");
    assert.deepEqual(sent, [13.2, 66.67, 14.29, 0, 100, 0, 0]);
    output.stop();
  });

  it("a state change sent with send() follows the lines logged before it", async () => {
    const sink = recorder();
    const output = new JobOutput(sink, 0);
    output.log("before");
    await output.send(async () => {
      sink.out.push({ kind: "state", at: Date.now() });
    });
    output.log("after");
    await output.flush();
    assert.deepEqual(
      sink.out.map((p) => (p.kind === "lines" ? p.lines[0]!.text : p.kind)),
      ["before", "state", "after"],
    );
    output.stop();
  });

  it("a failed publish is retried with the same lines, in order, nothing lost or repeated", async () => {
    const sink = recorder(3);
    const output = new JobOutput(sink, 0);
    for (let i = 1; i <= 150; i++) output.log(`line ${i}`);
    await output.flush();
    assert.equal(sink.retries, 3);
    assert.deepEqual(
      sink.out.flatMap((p) => (p.kind === "lines" ? p.lines.map((l) => l.n) : [])),
      Array.from({ length: 150 }, (_, i) => i + 1),
    );
    output.stop();
  });

  it("past the retry deadline, flush rejects (the attempt fails) rather than dropping lines silently", async () => {
    const sink = recorder(1_000);
    const output = new JobOutput(sink, 0, 300);
    output.log("lost?");
    await assert.rejects(output.flush(), /Connection is closed/);
    await assert.rejects(output.flush(), /Connection is closed/, "and stays failed");
    output.stop();
  });
});

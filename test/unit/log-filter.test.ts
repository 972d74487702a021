/** Log filters (docs/protocol.md, "Requests"): stream, lowest level, substring; events are never dropped. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ChannelEvent } from "../../src/contracts/events.js";
import type { LogLine } from "../../src/contracts/jobs.js";
import { compileFilter, filterEvent } from "../../src/gateway/log-filter.js";

const line = (n: number, text: string, extra: Partial<LogLine> = {}): LogLine => ({
  n,
  stream: "stdout",
  text,
  ts: 1,
  ...extra,
});
const event = (type: string, data: unknown): ChannelEvent => ({
  channel: "job:j1",
  offset: 7,
  epoch: "e",
  id: "i",
  type,
  ts: 1,
  priority: "normal",
  data,
});

const LINES = [
  line(1, "Compiling api"),
  line(2, "deprecated thing", { stream: "stderr", level: "warn" }),
  line(3, "test failed", { stream: "stderr", level: "error" }),
  line(4, "debug detail", { level: "debug" }),
  line(5, "done"),
];

function kept(filter: Parameters<typeof compileFilter>[0]): number[] {
  const out = filterEvent(event("log", { lines: LINES }), compileFilter(filter));
  return (out.data as { lines: LogLine[] }).lines.map((l) => l.n);
}

describe("log filters", () => {
  it("no filter, or an empty one, is no filter", () => {
    assert.equal(compileFilter(undefined), undefined);
    assert.equal(compileFilter({}), undefined);
  });
  it("by stream", () => {
    assert.deepEqual(kept({ stream: "stderr" }), [2, 3]);
    assert.deepEqual(kept({ stream: "stdout" }), [1, 4, 5]);
  });
  it("by lowest level; a line without a level counts as info", () => {
    assert.deepEqual(kept({ level: "warn" }), [2, 3]);
    assert.deepEqual(kept({ level: "info" }), [1, 2, 3, 5]);
    assert.deepEqual(kept({ level: "trace" }), [1, 2, 3, 4, 5]);
    assert.deepEqual(kept({ level: "fatal" }), []);
  });
  it("by substring, ignoring case", () => {
    assert.deepEqual(kept({ contains: "COMPIL" }), [1]);
    assert.deepEqual(kept({ contains: "e", stream: "stderr", level: "error" }), [3]);
  });
  it("a batch with no matching line stays, empty, with the count of lines filtered (offsets stay contiguous)", () => {
    const out = filterEvent(
      event("log", { lines: LINES, jobId: "j1" }),
      compileFilter({ contains: "nothing matches" }),
    );
    assert.deepEqual(out.data, { lines: [], jobId: "j1", filtered: 5 });
    assert.equal(out.offset, 7);
  });
  it("counts add up over an already filtered batch", () => {
    const once = filterEvent(event("log", { lines: LINES }), compileFilter({ stream: "stderr" }));
    const twice = filterEvent(once, compileFilter({ level: "error" }));
    assert.equal((twice.data as { filtered: number }).filtered, 4);
  });
  it("other event types, and log events without lines, pass unchanged (the same object)", () => {
    const filter = compileFilter({ stream: "stderr" });
    for (const e of [
      event("state", { state: "active" }),
      event("progress", { progress: 5 }),
      event("log", { text: "free-form" }),
      event("log", "x"),
    ]) {
      assert.equal(filterEvent(e, filter), e);
    }
    const all = event("log", { lines: LINES.filter((l) => l.stream === "stderr") });
    assert.equal(filterEvent(all, filter), all, "nothing removed: the same event");
  });
});

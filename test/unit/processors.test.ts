/** Processor modules (ROOMCAST_PROCESSORS) and the sample processors' determinism. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../../src/config/load-config.js";
import { addProcessors, type Processor } from "../../src/jobs/processor.js";
import { sampleEnvStatus, seededRandom } from "../../src/jobs/sample-processors.js";

const noop: Processor = async () => undefined;

describe("processor modules", () => {
  it("take a default export or a `processors` export of job name to function", () => {
    const table = new Map<string, { processor: Processor; from: string }>();
    addProcessors(table, { default: { "a.one": noop } }, "a.mjs");
    addProcessors(table, { processors: { "b.two": noop } }, "b.mjs");
    assert.deepEqual([...table.keys()], ["a.one", "b.two"]);
    assert.equal(table.get("b.two")!.from, "b.mjs");
  });
  for (const [what, exported, mention] of [
    ["no object", { default: 42 }, "must export"],
    ["an array", { default: [noop] }, "must export"],
    ["nothing", {}, "must export"],
    ["a name with a colon", { default: { "a:b": noop } }, "a:b"],
    ["a name of 101 characters", { default: { ["x".repeat(101)]: noop } }, "xxx"],
    ["a value that is no function", { default: { "a.one": "run" } }, "is not a function"],
  ] as const) {
    it(`refuse ${what}, naming the setting`, () => {
      assert.throws(
        () => addProcessors(new Map(), exported, "m.mjs"),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message.startsWith("invalid setting ROOMCAST_PROCESSORS: ") &&
          err.message.includes(mention),
      );
    });
  }
  it("refuse a job name defined twice, naming both modules", () => {
    const table = new Map<string, { processor: Processor; from: string }>();
    addProcessors(table, { default: { "a.one": noop } }, "first.mjs");
    assert.throws(
      () => addProcessors(table, { default: { "a.one": noop } }, "second.mjs"),
      /a\.one is defined by both first\.mjs and second\.mjs/,
    );
  });
});

describe("sample processors", () => {
  it("are deterministic for a seed", () => {
    const a = seededRandom("job-1");
    const b = seededRandom("job-1");
    const c = seededRandom("job-2");
    const xs = Array.from({ length: 5 }, () => a());
    assert.deepEqual(
      Array.from({ length: 5 }, () => b()),
      xs,
    );
    assert.notDeepEqual(
      Array.from({ length: 5 }, () => c()),
      xs,
    );
    assert.ok(xs.every((x) => x >= 0 && x < 1));
  });
  it("simulate an environment's status and metrics", () => {
    const status = sampleEnvStatus("prod", 3) as { status: string; metrics: Record<string, number> };
    assert.ok(["healthy", "degraded"].includes(status.status));
    assert.deepEqual(Object.keys(status.metrics).sort(), [
      "cpu",
      "errorRate",
      "memoryMb",
      "p95Ms",
      "requestsPerSecond",
    ]);
    assert.deepEqual((sampleEnvStatus("prod", 3) as { metrics: unknown }).metrics, status.metrics);
  });
});

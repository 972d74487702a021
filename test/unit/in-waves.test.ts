/** inWaves: bulk calls go in waves within a budget, one wave after another, every result kept in order. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chunks, inWaves } from "../../src/cluster/in-waves.js";

describe("inWaves", () => {
  it("runs at most `budget` units at once, a call over the budget alone, and settles every call in order", async () => {
    let inFlight = 0;
    const waves: number[] = [];
    const call = (weight: number, fail = false) => ({
      weight,
      run: async () => {
        inFlight += weight;
        waves.push(inFlight);
        await new Promise((resolve) => setTimeout(resolve, 5));
        inFlight -= weight;
        if (fail) throw new Error(`failed ${weight}`);
        return weight;
      },
    });
    const results = await inWaves([call(400), call(500), call(300), call(1500), call(100, true), call(1)], 1000);
    assert.deepEqual(
      results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message)),
      [400, 500, 300, 1500, "failed 100", 1],
    );
    // Waves: 400+500, then 300 (400+500+300 is over), then 1500 alone, then 100+1.
    assert.deepEqual(waves, [400, 900, 300, 1500, 100, 101]);
  });
});

describe("chunks", () => {
  it("cuts items into slices of at most `size`, in order, and nothing into nothing", () => {
    assert.deepEqual(chunks([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
    assert.deepEqual(chunks([1, 2], 5), [[1, 2]]);
    assert.deepEqual(chunks([], 3), []);
  });
});

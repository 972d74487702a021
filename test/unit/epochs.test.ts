/** Epochs come from a pool of random bytes refilled as it runs out: they stay distinct across refills. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { newEpoch } from "../../src/channels/channel-store.js";

describe("newEpoch", () => {
  it("gives 12 hex digits, distinct across several refills of the pool", () => {
    // 4096 / 6 bytes: a refill every 682 epochs.
    const epochs = Array.from({ length: 5000 }, () => newEpoch());
    for (const epoch of epochs) assert.match(epoch, /^[0-9a-f]{12}$/);
    assert.equal(new Set(epochs).size, epochs.length);
  });
});

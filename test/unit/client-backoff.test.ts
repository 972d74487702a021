import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelay, tokenExpiry } from "../../src/client/backoff.js";
import { mintToken } from "../../src/auth/mint-token.js";

describe("client backoff and token expiry", () => {
  it("doubles from 1 s to a 16 s cap, with jitter inside the delay", () => {
    const noJitter = (attempt: number) => backoffDelay(attempt, { jitter: 0 });
    assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map(noJitter), [1000, 2000, 4000, 8000, 16000, 16000, 16000]);
    assert.equal(
      backoffDelay(3, {}, () => 0),
      4000,
    );
    assert.equal(
      backoffDelay(3, {}, () => 1),
      8000,
    );
  });

  it("reads exp from a JWT without verifying it", async () => {
    const token = await mintToken({ secret: "s".repeat(32), sub: "x", ttlS: 100 });
    const exp = tokenExpiry(token)!;
    assert.ok(Math.abs(exp - (Date.now() / 1000 + 100)) < 5);
    assert.equal(tokenExpiry("not.a-token"), undefined);
    assert.equal(tokenExpiry("nodots"), undefined);
  });
});

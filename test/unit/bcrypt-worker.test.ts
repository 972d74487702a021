/**
 * The admin login's bcrypt thread (a real worker thread): answers, malformed input as a
 * mismatch, the bounded queue, and a thread that dies mid-check.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import bcrypt from "bcryptjs";
import { pino } from "pino";
import { BcryptBusyError, BcryptWorker } from "../../src/gateway/bcrypt-worker.js";

const log = pino({ level: "silent" });

describe("BcryptWorker", () => {
  const fast = bcrypt.hashSync("secret", 4);
  // ~300 ms a check: long enough to be caught in flight.
  const slow = bcrypt.hashSync("secret", 12);
  const worker = new BcryptWorker(2, log);
  after(() => worker.close());

  it("tells a matching password from a wrong one, and malformed input is a mismatch", async () => {
    assert.equal(await worker.compare("secret", fast), true);
    assert.equal(await worker.compare("wrong", fast), false);
    assert.equal(await worker.compare("secret", "not a hash"), false);
    assert.equal(await worker.compare(42 as unknown as string, fast), false);
  });

  it("refuses a check at once beyond its queue", async () => {
    const queued = [worker.compare("wrong", slow), worker.compare("secret", slow)];
    const start = performance.now();
    await assert.rejects(worker.compare("secret", fast), BcryptBusyError);
    assert.ok(performance.now() - start < 50);
    assert.deepEqual(await Promise.all(queued), [false, true]);
    assert.equal(worker.size, 0);
  });

  it("refuses the checks of a thread that died, and starts a new one for the next", async () => {
    const inFlight = worker.compare("secret", slow);
    await worker.close();
    await assert.rejects(inFlight, /bcrypt worker stopped/);
    assert.equal(worker.size, 0);
    assert.equal(await worker.compare("secret", fast), true);
  });
});

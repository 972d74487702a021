/**
 * LuaScript against a real redis-server: any number of keys per call, EVAL when Redis does not
 * know the script (first use, SCRIPT FLUSH, a restarted Redis), script errors passed on, and no
 * command definitions for ioredis to copy into each pipeline.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { startEmbeddedRedis, type EmbeddedRedis } from "../../src/cluster/embedded-redis.js";
import { LuaScript } from "../../src/cluster/lua-script.js";

describe("LuaScript", () => {
  let server: EmbeddedRedis;
  let redis: Redis;
  const countKeys = new LuaScript("return {#KEYS, ARGV[1]}");

  before(async () => {
    server = await startEmbeddedRedis();
    redis = new Redis(server.url, { lazyConnect: true, enableAutoPipelining: true });
    await redis.connect();
  });

  after(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it("runs with a key count chosen per call, loading the script when Redis does not know it", async () => {
    assert.deepEqual(await countKeys.run(redis, 1, ["a", "x"]), [1, "x"]);
    assert.deepEqual(await countKeys.run(redis, 3, ["a", "b", "c", "y"]), [3, "y"]);
    await redis.script("FLUSH");
    // Several calls in one auto-pipeline, all refused NOSCRIPT, each falls back to EVAL.
    const answers = await Promise.all([1, 2, 5].map((n) => countKeys.run(redis, n, [...range(n), String(n)])));
    assert.deepEqual(answers, [
      [1, "1"],
      [2, "2"],
      [5, "5"],
    ]);
    assert.deepEqual(Object.keys((redis as unknown as { scriptsSet: object }).scriptsSet), []);
  });

  it("passes a script's own error on", async () => {
    const failing = new LuaScript("return redis.error_reply('NOPE it failed')");
    await assert.rejects(failing.run(redis, 0, []), /NOPE it failed/);
  });
});

function range(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `key${i}`);
}

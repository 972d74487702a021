/**
 * ConnectionQuotas against a real redis-server: the per-key branch of acquireAll (the one a
 * Redis Cluster takes; `cluster = true` makes it run on one Redis) is all or nothing even when
 * one of the acquires fails with a Redis error.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { pino } from "pino";
import { ConnectionQuotas } from "../../src/cluster/connection-quotas.js";
import { startEmbeddedRedis, type EmbeddedRedis } from "../../src/cluster/embedded-redis.js";

describe("connection quotas, one acquire per key", () => {
  let server: EmbeddedRedis;
  let redis: Redis;
  let quotas: ConnectionQuotas;

  before(async () => {
    server = await startEmbeddedRedis();
    redis = new Redis(server.url, { lazyConnect: true });
    await redis.connect();
    quotas = new ConnectionQuotas(redis, "rc", 30_000, pino({ level: "silent" }), undefined, true);
  });

  after(async () => {
    quotas?.close();
    redis?.disconnect();
    await server?.stop();
  });

  it("when one acquire fails (a Redis error), the ones that succeeded are released, and no renewal brings them back", async () => {
    const userKey = quotas.key("user", "alice");
    const ipKey = quotas.key("ip", "127.0.0.1");
    // A string where the IP quota's sorted set should be: its acquire fails with WRONGTYPE.
    await redis.set(ipKey, "not a sorted set");
    await assert.rejects(
      quotas.acquireAll(
        [
          { scope: "user", id: "alice", limit: 5 },
          { scope: "ip", id: "127.0.0.1", limit: 5 },
        ],
        "socket-1",
      ),
      /WRONGTYPE/,
    );
    // Same connection as the quotas': these run after its release (ZREM) and renewals.
    await quotas.renew();
    assert.equal(await redis.zcard(userKey), 0, "the user quota's entry is not held");

    // Once the key is sane again, the same member is admitted to both.
    await redis.del(ipKey);
    const admitted = await quotas.acquireAll(
      [
        { scope: "user", id: "alice", limit: 5 },
        { scope: "ip", id: "127.0.0.1", limit: 5 },
      ],
      "socket-2",
    );
    assert.deepEqual(admitted, { keys: [userKey, ipKey] });
    await quotas.renew();
    assert.deepEqual(await redis.zrange(userKey, 0, -1), ["socket-2"]);
    assert.deepEqual(await redis.zrange(ipKey, 0, -1), ["socket-2"]);
  });

  it("when one quota is full, the others are released: its index comes back, nothing stays held", async () => {
    const userKey = quotas.key("user", "bob");
    const ipKey = quotas.key("ip", "10.0.0.1");
    assert.deepEqual(await quotas.acquireAll([{ scope: "ip", id: "10.0.0.1", limit: 1 }], "other"), { keys: [ipKey] });
    const answer = await quotas.acquireAll(
      [
        { scope: "user", id: "bob", limit: 5 },
        { scope: "ip", id: "10.0.0.1", limit: 1 },
      ],
      "socket-3",
    );
    assert.deepEqual(answer, { full: 1 });
    await quotas.renew();
    assert.equal(await redis.zcard(userKey), 0);
    assert.deepEqual(await redis.zrange(ipKey, 0, -1), ["other"]);
  });
});

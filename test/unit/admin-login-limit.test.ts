/**
 * The admin login counter against a real redis-server: shared by the replicas (two
 * instances), one window a minute, and counted locally when Redis cannot be reached.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { pino } from "pino";
import { freePort, startEmbeddedRedis, type EmbeddedRedis } from "../../src/cluster/embedded-redis.js";
import { AdminLoginLimit, adminLoginKey, LOGIN_WINDOW_MS } from "../../src/gateway/admin-login-limit.js";

const log = pino({ level: "silent" });

describe("AdminLoginLimit", () => {
  let redis: EmbeddedRedis;
  const clients: Redis[] = [];

  before(async () => {
    redis = await startEmbeddedRedis();
  });

  after(async () => {
    for (const client of clients) client.disconnect();
    await redis?.stop();
  });

  it("counts the attempts of an IP over all replicas, in a window of a minute", async () => {
    const [one, two] = [new Redis(redis.url), new Redis(redis.url)];
    clients.push(one, two);
    const replicaA = new AdminLoginLimit(one, "t", log);
    const replicaB = new AdminLoginLimit(two, "t", log);
    assert.equal(await replicaA.hit("192.0.2.1"), 1);
    assert.equal(await replicaB.hit("192.0.2.1"), 2);
    assert.equal(await replicaA.hit("192.0.2.1"), 3);
    assert.equal(await replicaB.hit("192.0.2.2"), 1);
    const ttl = await one.pttl(adminLoginKey("t", "192.0.2.1"));
    assert.ok(ttl > LOGIN_WINDOW_MS - 5000 && ttl <= LOGIN_WINDOW_MS, `PTTL ${ttl}`);
    // A counter that lost its expiry gets one back at the next attempt.
    await one.persist(adminLoginKey("t", "192.0.2.1"));
    assert.equal(await replicaA.hit("192.0.2.1"), 4);
    assert.ok((await one.pttl(adminLoginKey("t", "192.0.2.1"))) > 0);
  });

  it("keeps counting on the replica while Redis cannot be reached", async () => {
    // Nothing listens there: every command fails at once.
    const away = new Redis({
      port: await freePort(),
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    clients.push(away);
    const limit = new AdminLoginLimit(away, "t", log);
    for (let i = 1; i <= 12; i++) assert.equal(await limit.hit("192.0.2.3"), i);
  });
});

/**
 * docs/protocol.md, "Limits", connection limits, against real gateway processes on one Redis:
 * per user and per IP at the handshake (cluster-wide, held in Redis with leases), per
 * environment at the first subscribe to one of its channels, per replica at the handshake,
 * and 0 meaning off. All test clients come from 127.0.0.1.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { connect, connectError, request, token, type TestSocket, openAs } from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { runCli, TEST_SECRET, type GatewayProcess } from "../support/gateway-process.js";
import { okAnswer, type Answer, type ErrorBody } from "../support/answers.js";
import { sleep } from "../support/util.js";

const LEASE_S = 3;

/** Asserts a handshake refusal `{ code: 4429, reason: too_many_connections, scope, limit, message }`. */
function assertTooMany(data: Record<string, unknown> | undefined, scope: string, limit: number): void {
  assert.ok(data, "connect_error without data");
  assert.deepEqual(Object.keys(data).sort(), ["code", "limit", "message", "reason", "scope"], JSON.stringify(data));
  assert.equal(data.code, 4429, JSON.stringify(data));
  assert.equal(data.reason, "too_many_connections", JSON.stringify(data));
  assert.equal(data.scope, scope, JSON.stringify(data));
  assert.equal(data.limit, limit, JSON.stringify(data));
  assert.equal(typeof data.message, "string");
}

/** Asserts the subscribe answer `{ ok: false, error: { 4429 too_many_connections, scope environment, limit } }`. */
function assertEnvironmentFull(answer: Answer, limit: number): void {
  assert.equal(answer.ok, false, `expected a refusal, got ${JSON.stringify(answer)}`);
  assert.deepEqual(Object.keys(answer).sort(), ["error", "ok"]);
  const { error } = answer as { ok: false; error: ErrorBody };
  assert.deepEqual(Object.keys(error).sort(), ["code", "limit", "message", "reason", "scope"], JSON.stringify(error));
  assert.equal(error.code, 4429);
  assert.equal(error.reason, "too_many_connections");
  assert.equal(error.scope, "environment");
  assert.equal(error.limit, limit);
}

describe("connection limits", () => {
  let cluster: TestCluster;
  /** Two replicas with a user quota of 2, an environment quota of 2 and a 3 s lease. */
  let a: GatewayProcess;
  let b: GatewayProcess;
  /** Same settings, SIGKILLed by the lease test. */
  let c: GatewayProcess;
  /** Per-IP quota of 3, on its own key prefix so that other tests' connections do not count. */
  let ipLimited: GatewayProcess;
  /** Per-IP quota of 2 behind one trusted proxy (ROOMCAST_TRUST_PROXY=1): the client is the X-Forwarded-For address. */
  let behindProxy: GatewayProcess;
  /** An environment pool of 4 with a share of 2 per user. */
  let shared: GatewayProcess;
  /** Per-replica cap of 3. */
  let nodeLimited: GatewayProcess;
  /** Every limit 0 (off). */
  let unlimited: GatewayProcess;
  const sockets: TestSocket[] = [];

  const open = (url: string, claims: Parameters<typeof token>[0]) => openAs(sockets, url, claims);

  /** Retries a handshake until it is admitted (a release reaches Redis, a lease expires); returns the socket. */
  async function openEventually(
    url: string,
    claims: Parameters<typeof token>[0],
    timeoutMs: number,
  ): Promise<TestSocket> {
    const bearer = await token(claims);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await connect(url, { token: bearer });
        sockets.push(socket);
        return socket;
      } catch (err) {
        const data = (err as { data?: { reason?: string } }).data;
        if (data?.reason !== "too_many_connections" || Date.now() > deadline) throw err;
      }
      await sleep(100);
    }
  }

  function close(socket: TestSocket): void {
    socket.close();
  }

  before(async () => {
    const quotas = {
      ROOMCAST_MAX_CONNECTIONS_PER_USER: "2",
      ROOMCAST_MAX_CONNECTIONS_PER_ENV: "2",
      ROOMCAST_QUOTA_LEASE_S: String(LEASE_S),
    };
    cluster = await startCluster({ replicas: 3, env: quotas });
    [a, b, c] = cluster.gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    [ipLimited, nodeLimited, unlimited, behindProxy, shared] = await Promise.all([
      cluster.addGateway({ ROOMCAST_MAX_CONNECTIONS_PER_IP: "3", ROOMCAST_REDIS_PREFIX: "rc-ip" }),
      cluster.addGateway({ ROOMCAST_MAX_CONNECTIONS_PER_NODE: "3", ROOMCAST_REDIS_PREFIX: "rc-node" }),
      cluster.addGateway({
        ROOMCAST_MAX_CONNECTIONS_PER_USER: "0",
        ROOMCAST_MAX_CONNECTIONS_PER_IP: "0",
        ROOMCAST_MAX_CONNECTIONS_PER_ENV: "0",
        ROOMCAST_MAX_CONNECTIONS_PER_NODE: "0",
        ROOMCAST_REDIS_PREFIX: "rc-zero",
      }),
      cluster.addGateway({
        ROOMCAST_MAX_CONNECTIONS_PER_IP: "2",
        ROOMCAST_TRUST_PROXY: "1",
        ROOMCAST_REDIS_PREFIX: "rc-proxy",
      }),
      cluster.addGateway({
        ROOMCAST_MAX_CONNECTIONS_PER_ENV: "4",
        ROOMCAST_MAX_CONNECTIONS_PER_USER_PER_ENV: "2",
        ROOMCAST_MAX_CONNECTIONS_PER_USER: "0",
        ROOMCAST_REDIS_PREFIX: "rc-shared",
      }),
    ]);
  });

  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
  });

  it("per user, cluster-wide: the third connection on either replica is refused with scope user; a release makes room", async () => {
    const first = await open(a.url, { sub: "quota-user" });
    await open(b.url, { sub: "quota-user" });
    const bearer = await token({ sub: "quota-user" });
    for (const gateway of [a, b]) {
      const refused = await connectError(gateway.url, { token: bearer });
      assertTooMany(refused.data, "user", 2);
    }
    // Other users are not affected.
    const other = await open(a.url, { sub: "quota-other" });
    await open(b.url, { sub: "quota-other" });
    assert.equal(other.connected, true);
    // The refused handshakes left nothing behind: still exactly full.
    assertTooMany((await connectError(b.url, { token: bearer })).data, "user", 2);

    close(first);
    const again = await openEventually(b.url, { sub: "quota-user" }, 5000);
    assert.equal(again.connected, true);
    assertTooMany((await connectError(a.url, { token: bearer })).data, "user", 2);
  });

  it("a SIGKILLed replica's connections stop counting after the lease; live ones keep counting past it", async () => {
    await open(c.url, { sub: "quota-killed" });
    await open(c.url, { sub: "quota-killed" });
    const bearer = await token({ sub: "quota-killed" });
    assertTooMany((await connectError(a.url, { token: bearer })).data, "user", 2);
    // Past one lease, the live replica's renewals keep the quota full.
    await sleep(LEASE_S * 1000 + 1500);
    assertTooMany((await connectError(a.url, { token: bearer })).data, "user", 2);

    await c.kill();
    // The dead replica's entries still count right after it died...
    assertTooMany((await connectError(a.url, { token: bearer })).data, "user", 2);
    // ...and are gone within about one lease: both slots come back.
    const first = await openEventually(a.url, { sub: "quota-killed" }, 10_000);
    const second = await openEventually(b.url, { sub: "quota-killed" }, 5000);
    assert.equal(first.connected && second.connected, true);
    assertTooMany((await connectError(a.url, { token: bearer })).data, "user", 2);
  });

  it("a handshake the client abandons while it is being admitted leaves no quota entry behind", async () => {
    const bearer = await token({ sub: "quota-abandon" });
    // Raw Engine.IO: the CONNECT packet, then the TCP connection dropped at once, while the
    // server is still taking the quota entries in Redis.
    for (let i = 0; i < 4; i++) {
      const ws = new WebSocket(`${a.url.replace("http:", "ws:")}/socket.io/?EIO=4&transport=websocket`);
      await new Promise<void>((resolve, reject) => {
        ws.once("message", () => resolve());
        ws.once("error", reject);
      });
      ws.send(`40${JSON.stringify({ token: bearer })}`);
      ws.terminate();
    }
    await sleep(300);
    // The whole quota of 2 is still there (an entry leaked by a live replica would be renewed forever).
    await openEventually(a.url, { sub: "quota-abandon" }, 5000);
    await openEventually(b.url, { sub: "quota-abandon" }, 5000);
    assertTooMany((await connectError(a.url, { token: bearer })).data, "user", 2);
  });

  it("per IP: the fourth connection from 127.0.0.1 is refused with scope ip, whoever the user; a release makes room", async () => {
    const first = await open(ipLimited.url, { sub: "ip-1" });
    await open(ipLimited.url, { sub: "ip-2" });
    await open(ipLimited.url, { sub: "ip-3" });
    // (ip-4 three times: a refusal at the IP must release the user entry it took first.)
    for (const sub of ["ip-4", "ip-4", "ip-4", "ip-1"]) {
      const refused = await connectError(ipLimited.url, { token: await token({ sub }) });
      assertTooMany(refused.data, "ip", 3);
    }
    close(first);
    const again = await openEventually(ipLimited.url, { sub: "ip-4" }, 5000);
    assert.equal(again.connected, true);
    assertTooMany((await connectError(ipLimited.url, { token: await token({ sub: "ip-5" }) })).data, "ip", 3);
  });

  it("per IP behind a trusted proxy: each client address of X-Forwarded-For has its own quota; what a client puts further left is not trusted", async () => {
    const via = async (forwardedFor: string, sub: string) => {
      const socket = await connect(behindProxy.url, {
        token: await token({ sub }),
        extraHeaders: { "x-forwarded-for": forwardedFor },
      });
      sockets.push(socket);
      return socket;
    };
    await via("203.0.113.1", "xff-1");
    await via("203.0.113.1", "xff-2");
    // A spoofed first hop does not buy a new quota: the proxy appended the real address last.
    const refused = await connectError(behindProxy.url, {
      token: await token({ sub: "xff-3" }),
      extraHeaders: { "x-forwarded-for": "198.51.100.7, 203.0.113.1" },
    });
    assertTooMany(refused.data, "ip", 2);
    await via("203.0.113.2", "xff-4");
    await via("198.51.100.7, 203.0.113.2", "xff-5");
    assertTooMany(
      (
        await connectError(behindProxy.url, {
          token: await token({ sub: "xff-6" }),
          extraHeaders: { "x-forwarded-for": "203.0.113.2" },
        })
      ).data,
      "ip",
      2,
    );
    // Without the header the client is the peer (127.0.0.1), a quota of its own.
    await openAs(sockets, behindProxy.url, { sub: "xff-7" });
    // A replica that trusts no proxy ignores the header: 127.0.0.1's quota there is still full
    // (the test before this one left it at 3 of 3).
    const plain = await connectError(ipLimited.url, {
      token: await token({ sub: "xff-8" }),
      extraHeaders: { "x-forwarded-for": "192.0.2.99" },
    });
    assertTooMany(plain.data, "ip", 3);
  });

  it("per user per environment: one user cannot fill the environment's pool, other users and admins still get in", async () => {
    const claims = (sub: string, scope = "env:read") => ({ sub, envs: ["prod"], scope });
    const hog = await Promise.all([0, 1, 2].map(() => open(shared.url, claims("hog"))));
    okAnswer(await request<Answer>(hog[0]!, "subscribe", { channel: "env:prod:logs" }));
    okAnswer(await request<Answer>(hog[1]!, "subscribe", { channel: "env:prod:status" }));
    const third = await request<Answer>(hog[2]!, "subscribe", { channel: "env:prod:logs" });
    assertEnvironmentFull(third, 2);
    assert.match((third as { error: ErrorBody }).error.message, /this user in environment prod/);
    // Other users share the rest of the pool (4): two more, then it is full for everyone.
    for (const sub of ["viewer-1", "viewer-2"])
      okAnswer(await request<Answer>(await open(shared.url, claims(sub)), "subscribe", { channel: "env:prod:logs" }));
    const late = await open(shared.url, claims("viewer-3"));
    const full = await request<Answer>(late, "subscribe", { channel: "env:prod:logs" });
    assertEnvironmentFull(full, 4);
    assert.match((full as { error: ErrorBody }).error.message, /environment prod reached/);
    // An on-call admin is exempt from both, and takes no slot.
    for (let i = 0; i < 3; i++)
      okAnswer(
        await request<Answer>(await open(shared.url, claims("oncall", "env:read admin")), "subscribe", {
          channel: "env:prod:logs",
        }),
      );
    assertEnvironmentFull(await request<Answer>(late, "subscribe", { channel: "env:prod:logs" }), 4);
    // The hog leaving one channel makes room for one of its own, not more.
    okAnswer(await request<Answer>(hog[0]!, "unsubscribe", { channel: "env:prod:logs" }));
    const deadline = Date.now() + 5000;
    let back = await request<Answer>(hog[2]!, "subscribe", { channel: "env:prod:logs" });
    while (!back.ok && Date.now() < deadline) {
      await sleep(100);
      back = await request<Answer>(hog[2]!, "subscribe", { channel: "env:prod:logs" });
    }
    okAnswer(back);
    // Full both ways now (the pool is checked first).
    assertEnvironmentFull(await request<Answer>(hog[0]!, "subscribe", { channel: "env:prod:logs" }), 4);
  });

  it("per environment, cluster-wide: a third connection's subscribe is refused with scope environment; channels of one env count once; leaving the last one frees the slot", async () => {
    const claims = (sub: string) => ({ sub, envs: ["prod", "staging"], scope: "env:read" });
    const one = await open(a.url, claims("env-1"));
    const two = await open(b.url, claims("env-2"));
    const three = await open(b.url, claims("env-3"));
    const four = await open(a.url, claims("env-4"));

    // One connection on two channels of prod counts once.
    okAnswer(await request<Answer>(one, "subscribe", { channel: "env:prod:logs" }));
    okAnswer(await request<Answer>(one, "subscribe", { channel: "env:prod:status" }));
    okAnswer(await request<Answer>(two, "subscribe", { channel: "env:prod:logs" }));

    assertEnvironmentFull(await request<Answer>(three, "subscribe", { channel: "env:prod:logs" }), 2);
    assertEnvironmentFull(await request<Answer>(three, "subscribe", { channel: "env:prod:events" }), 2);
    // Another environment has its own quota; the connection itself is fine.
    okAnswer(await request<Answer>(three, "subscribe", { channel: "env:staging:logs" }));
    // Subscribing again to a channel one already has is not a new entry.
    okAnswer(await request<Answer>(one, "subscribe", { channel: "env:prod:logs" }));

    // Leaving one of two prod channels keeps the entry.
    okAnswer(await request<Answer>(one, "unsubscribe", { channel: "env:prod:logs" }));
    await sleep(300);
    assertEnvironmentFull(await request<Answer>(three, "subscribe", { channel: "env:prod:logs" }), 2);
    // Leaving the last one frees it (on the other replica, once the release reached Redis).
    okAnswer(await request<Answer>(one, "unsubscribe", { channel: "env:prod:status" }));
    const deadline = Date.now() + 5000;
    let answer = await request<Answer>(three, "subscribe", { channel: "env:prod:logs" });
    while (!answer.ok && Date.now() < deadline) {
      assertEnvironmentFull(answer, 2);
      await sleep(100);
      answer = await request<Answer>(three, "subscribe", { channel: "env:prod:logs" });
    }
    okAnswer(answer);
    // Full again: the connection that left cannot come back.
    assertEnvironmentFull(await request<Answer>(one, "subscribe", { channel: "env:prod:status" }), 2);

    // A disconnect frees the slot too.
    close(two);
    let back = await request<Answer>(four, "subscribe", { channel: "env:prod:status" });
    const deadline2 = Date.now() + 5000;
    while (!back.ok && Date.now() < deadline2) {
      assertEnvironmentFull(back, 2);
      await sleep(100);
      back = await request<Answer>(four, "subscribe", { channel: "env:prod:status" });
    }
    okAnswer(back);
    assertEnvironmentFull(await request<Answer>(one, "subscribe", { channel: "env:prod:logs" }), 2);
  });

  it("per replica: of 10 simultaneous handshakes exactly 3 are admitted, the rest refused with scope node", async () => {
    const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => token({ sub: `node-${i}` })));
    const results = await Promise.allSettled(tokens.map((t) => connect(nodeLimited.url, { token: t })));
    const admitted = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    sockets.push(...admitted);
    const refused = results.flatMap((r) =>
      r.status === "rejected" ? [r.reason as { data?: Record<string, unknown> }] : [],
    );
    assert.equal(admitted.length, 3, `admitted ${admitted.length}: ${JSON.stringify(refused.map((r) => r.data))}`);
    assert.equal(refused.length, 7);
    for (const err of refused) assertTooMany(err.data, "node", 3);

    // Still full for a later one; a disconnect makes room.
    assertTooMany((await connectError(nodeLimited.url, { token: tokens[0] })).data, "node", 3);
    close(admitted[0]!);
    const again = await openEventually(nodeLimited.url, { sub: "node-late" }, 5000);
    assert.equal(again.connected, true);
    assertTooMany((await connectError(nodeLimited.url, { token: tokens[1] })).data, "node", 3);
  });

  it("a quota lease under 3 s is refused at start with one line naming ROOMCAST_QUOTA_LEASE_S", async () => {
    const env = { REDIS_URL: "redis://127.0.0.1:1", ROOMCAST_JWT_SECRET: TEST_SECRET, HOST: "127.0.0.1", PORT: "0" };
    const result = await runCli(["gateway"], { ...env, ROOMCAST_QUOTA_LEASE_S: "2" });
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, /ROOMCAST_QUOTA_LEASE_S/);
  });

  it("a limit set to 0 is off", async () => {
    const claims = { sub: "zero-user", envs: ["prod"], scope: "env:read" };
    const many: TestSocket[] = [];
    // More than any limit elsewhere in this file: one user, one IP, one replica, one environment.
    for (let i = 0; i < 6; i++) many.push(await open(unlimited.url, claims));
    for (const socket of many) okAnswer(await request<Answer>(socket, "subscribe", { channel: "env:prod:logs" }));
    assert.ok(many.every((s) => s.connected));
  });
});

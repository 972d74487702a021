/**
 * docs/protocol.md, "Connecting" (handshake and authentication) and the token lifetime rules of
 * section 3 (`refresh`, `closing 4401 token_expired`), against real gateway processes.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { exportJWK, SignJWT } from "jose";
import { io } from "socket.io-client";
import type { Closing, Unsubscribed, Welcome } from "../../src/contracts/events.js";
import {
  connect,
  connectError,
  httpPublish,
  nextEvent,
  recordEvents,
  request,
  token,
  waitUntil,
  type TestSocket,
  engineHandshake,
} from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { TEST_SECRET, type GatewayProcess } from "../support/gateway-process.js";
import { waitReadyz } from "../support/util.js";

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const nowS = () => Math.floor(Date.now() / 1000);

/** A token signed with any key and algorithm; claims are taken as given (no defaults). */
async function signed(
  claims: Record<string, unknown>,
  alg: string,
  key: KeyObject | Uint8Array,
  kid?: string,
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(kid ? { alg, kid } : { alg }).sign(key);
}

const secretKey = new TextEncoder().encode(TEST_SECRET);

type Refusal = { code: number; reason: string; message: string; [k: string]: unknown };

/** Asserts the exact refusal code and reason of a connect_error; returns its data. */
async function refused(
  url: string,
  options: Parameters<typeof connect>[1],
  code: number,
  reason: string,
): Promise<Refusal> {
  const err = await connectError(url, options);
  const data = err.data as Refusal;
  assert.ok(data, `connect_error without data: ${err.message}`);
  assert.equal(data.code, code, JSON.stringify(data));
  assert.equal(data.reason, reason, JSON.stringify(data));
  assert.equal(typeof data.message, "string");
  return data;
}

async function assertUnauthorized(url: string, options: Parameters<typeof connect>[1]): Promise<Refusal> {
  const data = await refused(url, options, 4401, "unauthorized");
  assert.deepEqual(Object.keys(data).sort(), ["code", "message", "reason"]);
  return data;
}

/** Connects and proves the session works: a subscribe to the user's own channel answers ok. */
async function connectsAs(url: string, options: Parameters<typeof connect>[1], sub: string): Promise<void> {
  const socket = await connect(url, options);
  try {
    const answer = await request(socket, "subscribe", { channel: `user:${sub}` });
    assert.equal(answer.ok, true, JSON.stringify(answer));
  } finally {
    socket.close();
  }
}

describe("handshake and authentication", () => {
  let cluster: TestCluster;
  let hs: GatewayProcess;
  let queryGw: GatewayProcess;
  let tenantGw: GatewayProcess;
  let limitGw: GatewayProcess;
  let rsaGw: GatewayProcess;
  let ecGw: GatewayProcess;
  let edGw: GatewayProcess;
  let jwksGw: GatewayProcess;
  let dir: string;
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const ed = generateKeyPairSync("ed25519");
  const jwksRsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwksEd = generateKeyPairSync("ed25519");
  const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const sockets: TestSocket[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "roomcast-auth-test-"));
    const pem = (key: KeyObject) => key.export({ type: "spki", format: "pem" }) as string;
    writeFileSync(join(dir, "rsa.pem"), pem(rsa.publicKey));
    writeFileSync(join(dir, "ec.pem"), pem(ec.publicKey));
    writeFileSync(join(dir, "ed.pem"), pem(ed.publicKey));
    const jwks = {
      keys: [
        { ...(await exportJWK(jwksRsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
        { ...(await exportJWK(jwksEd.publicKey)), kid: "ed-1", alg: "EdDSA", use: "sig" },
      ],
    };
    writeFileSync(join(dir, "jwks.json"), JSON.stringify(jwks));
    cluster = await startCluster({ replicas: 1 });
    hs = cluster.gateways[0]!;
    const noSecret = { ROOMCAST_JWT_SECRET: "" };
    [queryGw, tenantGw, limitGw, rsaGw, ecGw, edGw, jwksGw] = await Promise.all([
      cluster.addGateway({ ROOMCAST_TOKEN_QUERY: "true" }),
      cluster.addGateway({ ROOMCAST_ALLOWED_TENANTS: "acme, globex" }),
      cluster.addGateway({ ROOMCAST_MAX_CONNECTIONS_PER_NODE: "2" }),
      cluster.addGateway({ ...noSecret, ROOMCAST_JWT_PUBLIC_KEY_FILE: join(dir, "rsa.pem") }),
      cluster.addGateway({ ...noSecret, ROOMCAST_JWT_PUBLIC_KEY_FILE: join(dir, "ec.pem") }),
      cluster.addGateway({ ...noSecret, ROOMCAST_JWT_PUBLIC_KEY_FILE: join(dir, "ed.pem") }),
      cluster.addGateway({ ...noSecret, ROOMCAST_JWKS_FILE: join(dir, "jwks.json") }),
    ]);
  });

  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe("4401 unauthorized", () => {
    it("refuses a connection without a token", async () => {
      const data = await assertUnauthorized(hs.url, {});
      assert.equal(data.message, "token missing");
    });

    it("refuses a malformed token", async () => {
      await assertUnauthorized(hs.url, { token: "not-a-jwt" });
      await assertUnauthorized(hs.url, { token: "a.b.c" });
    });

    it("refuses a token signed with another secret", async () => {
      await assertUnauthorized(hs.url, {
        token: await token({ sub: "alice", secret: "another-secret-that-is-long-enough-too" }),
      });
    });

    it("refuses an expired token", async () => {
      const expired = await signed({ sub: "alice", iat: nowS() - 120, exp: nowS() - 60 }, "HS256", secretKey);
      const data = await assertUnauthorized(hs.url, { token: expired });
      assert.equal(data.message, "token expired");
    });

    it("refuses alg none", async () => {
      const unsigned = `${b64url({ alg: "none", typ: "JWT" })}.${b64url({ sub: "alice", exp: nowS() + 3600 })}.`;
      await assertUnauthorized(hs.url, { token: unsigned });
    });

    it("refuses an algorithm that is not configured (HS512 with the right secret, RS256 on an HS256 gateway)", async () => {
      const claims = { sub: "alice", exp: nowS() + 3600 };
      await assertUnauthorized(hs.url, { token: await signed(claims, "HS512", secretKey) });
      await assertUnauthorized(hs.url, { token: await signed(claims, "RS256", rsa.privateKey) });
    });

    it("refuses a token living longer than ROOMCAST_MAX_TOKEN_LIFETIME_S (30 days): exp 1e300, or 31 days without iat", async () => {
      for (const claims of [
        { sub: "alice", exp: 1e300 },
        { sub: "alice", iat: nowS(), exp: 1e300 },
        { sub: "alice", exp: nowS() + 31 * 86400 },
        { sub: "alice", iat: nowS() - 40 * 86400, exp: nowS() + 3600 },
        // A future iat does not stretch the window.
        { sub: "alice", iat: nowS() + 10 * 86400, exp: nowS() + 35 * 86400 },
      ]) {
        const data = await assertUnauthorized(hs.url, { token: await signed(claims, "HS256", secretKey) });
        assert.match(data.message, /lifetime/, JSON.stringify(claims));
      }
      // 29 days is fine.
      await connectsAs(
        hs.url,
        { token: await signed({ sub: "alice", iat: nowS(), exp: nowS() + 29 * 86400 }, "HS256", secretKey) },
        "alice",
      );
    });

    it("refuses a token without sub or without exp", async () => {
      await assertUnauthorized(hs.url, { token: await signed({ exp: nowS() + 3600 }, "HS256", secretKey) });
      await assertUnauthorized(hs.url, { token: await signed({ sub: "", exp: nowS() + 3600 }, "HS256", secretKey) });
      await assertUnauthorized(hs.url, { token: await signed({ sub: "alice" }, "HS256", secretKey) });
    });
  });

  describe("where the token may come from", () => {
    it("accepts the token in the auth payload", async () => {
      await connectsAs(hs.url, { token: await token({ sub: "alice" }) }, "alice");
    });

    it("accepts Authorization: Bearer (polling, so that headers are sent)", async () => {
      const jwt = await token({ sub: "alice" });
      await connectsAs(hs.url, { transports: ["polling"], extraHeaders: { Authorization: `Bearer ${jwt}` } }, "alice");
      // A bad bearer token is refused like any other.
      await assertUnauthorized(hs.url, {
        transports: ["polling"],
        extraHeaders: { Authorization: "Bearer not-a-jwt" },
      });
    });

    it("refuses ?token= by default and accepts it when ROOMCAST_TOKEN_QUERY=true", async () => {
      const jwt = await token({ sub: "alice" });
      const data = await assertUnauthorized(hs.url, { query: { token: jwt } });
      assert.equal(data.message, "token missing");
      await connectsAs(queryGw.url, { query: { token: jwt } }, "alice");
      await assertUnauthorized(queryGw.url, { query: { token: "garbage" } });
    });
  });

  describe("asymmetric keys", () => {
    const claims = { sub: "alice", exp: nowS() + 3600 };

    it("RS256 with ROOMCAST_JWT_PUBLIC_KEY_FILE", async () => {
      await connectsAs(rsaGw.url, { token: await signed(claims, "RS256", rsa.privateKey) }, "alice");
      await assertUnauthorized(rsaGw.url, { token: await signed(claims, "RS256", stranger.privateKey) });
      // The shared secret means nothing here, nor does the public key used as an HMAC secret.
      await assertUnauthorized(rsaGw.url, { token: await token({ sub: "alice" }) });
      const pemAsSecret = new TextEncoder().encode(rsa.publicKey.export({ type: "spki", format: "pem" }) as string);
      await assertUnauthorized(rsaGw.url, { token: await signed(claims, "HS256", pemAsSecret) });
      await assertUnauthorized(rsaGw.url, { token: `${b64url({ alg: "none" })}.${b64url(claims)}.` });
    });

    it("ES256 with ROOMCAST_JWT_PUBLIC_KEY_FILE", async () => {
      await connectsAs(ecGw.url, { token: await signed(claims, "ES256", ec.privateKey) }, "alice");
      await assertUnauthorized(ecGw.url, {
        token: await signed(claims, "ES256", generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey),
      });
      await assertUnauthorized(ecGw.url, { token: await signed(claims, "RS256", rsa.privateKey) });
    });

    it("EdDSA with ROOMCAST_JWT_PUBLIC_KEY_FILE", async () => {
      await connectsAs(edGw.url, { token: await signed(claims, "EdDSA", ed.privateKey) }, "alice");
      await assertUnauthorized(edGw.url, { token: await signed(claims, "EdDSA", jwksEd.privateKey) });
      await assertUnauthorized(edGw.url, { token: await token({ sub: "alice" }) });
    });

    it("RS256 and EdDSA keys of a ROOMCAST_JWKS_FILE", async () => {
      await connectsAs(jwksGw.url, { token: await signed(claims, "RS256", jwksRsa.privateKey, "rsa-1") }, "alice");
      await connectsAs(jwksGw.url, { token: await signed(claims, "EdDSA", jwksEd.privateKey, "ed-1") }, "alice");
      await assertUnauthorized(jwksGw.url, { token: await signed(claims, "RS256", stranger.privateKey, "rsa-1") });
      await assertUnauthorized(jwksGw.url, { token: await signed(claims, "ES256", ec.privateKey) });
      await assertUnauthorized(jwksGw.url, { token: await token({ sub: "alice" }) });
    });
  });

  describe("admission", () => {
    it("4403 forbidden for a tenant ROOMCAST_ALLOWED_TENANTS does not list", async () => {
      const data = await refused(
        tenantGw.url,
        { token: await token({ sub: "alice", tenant: "initech" }) },
        4403,
        "forbidden",
      );
      assert.deepEqual(Object.keys(data).sort(), ["code", "message", "reason"]);
      await refused(tenantGw.url, { token: await token({ sub: "alice" }) }, 4403, "forbidden");
      await connectsAs(tenantGw.url, { token: await token({ sub: "alice", tenant: "acme" }) }, "alice");
      await connectsAs(tenantGw.url, { token: await token({ sub: "alice", tenant: "globex" }) }, "alice");
      // An invalid token is still 4401, whatever its tenant.
      await assertUnauthorized(tenantGw.url, {
        token: await token({ sub: "alice", tenant: "initech", secret: "another-secret-that-is-long-enough-too" }),
      });
    });

    it("a refresh cannot switch the connection to a tenant the gateway does not allow", async () => {
      const socket = await connect(tenantGw.url, { token: await token({ sub: "alice", tenant: "acme" }) });
      sockets.push(socket);
      assert.equal((await request(socket, "subscribe", { channel: "user:alice" })).ok, true);
      let unsubscribed = 0;
      socket.on("unsubscribed", () => unsubscribed++);
      for (const claims of [{ tenant: "initech" }, {}]) {
        const answer = await request<{ ok: boolean; error: Refusal }>(socket, "refresh", {
          token: await token({ sub: "alice", ttlS: 7200, ...claims }),
        });
        assert.equal(answer.ok, false, JSON.stringify(answer));
        assert.equal(answer.error.code, 4403);
        assert.equal(answer.error.reason, "forbidden");
      }
      // Same tenant (or another allowed one) is fine.
      const ok = await request<{ ok: boolean; exp: number }>(socket, "refresh", {
        token: await token({ sub: "alice", tenant: "globex" }),
      });
      assert.equal(ok.ok, true);
      assert.equal(socket.connected, true);
      assert.equal(unsubscribed, 0);
    });

    it("4429 too_many_connections scope node when ROOMCAST_MAX_CONNECTIONS_PER_NODE is full, and room again after a disconnect", async () => {
      const jwt = await token({ sub: "alice" });
      const first = await connect(limitGw.url, { token: jwt });
      const second = await connect(limitGw.url, { token: await token({ sub: "bob" }) });
      sockets.push(first, second);
      const data = await refused(limitGw.url, { token: jwt }, 4429, "too_many_connections");
      assert.equal(data.scope, "node");
      assert.equal(data.limit, 2);
      first.close();
      // The server learns of the disconnect asynchronously: retry while it still counts it.
      const deadline = Date.now() + 5000;
      let third: TestSocket | undefined;
      while (!third) {
        try {
          third = await connect(limitGw.url, { token: jwt });
        } catch (err) {
          assert.equal((err as { data?: Refusal }).data?.reason, "too_many_connections");
          assert.ok(Date.now() < deadline, "no free slot 5 s after a disconnect");
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      sockets.push(third);
      assert.equal(third.connected, true);
      // Full again.
      await refused(limitGw.url, { token: jwt }, 4429, "too_many_connections");
    });
  });

  it("welcome carries sessionId, node, serverTime and limits", async () => {
    const before = Date.now();
    const socket: TestSocket = io(hs.url, {
      auth: { token: await token({ sub: "alice" }) },
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
    });
    sockets.push(socket);
    const welcome = await nextEvent<Welcome>(socket, "welcome");
    assert.ok(socket.connected);
    assert.deepEqual(Object.keys(welcome).sort(), ["limits", "node", "serverTime", "sessionId"]);
    assert.equal(welcome.sessionId, socket.id);
    assert.equal(welcome.node, hs.nodeId);
    assert.equal(typeof welcome.serverTime, "number");
    assert.ok(
      welcome.serverTime >= before - 5000 && welcome.serverTime <= Date.now() + 5000,
      "serverTime is ms since epoch",
    );
    assert.deepEqual(welcome.limits, {
      maxSubscriptions: 50,
      rateLimit: 10,
      rateBurst: 50,
      maxMessageBytes: 65536,
      pingIntervalMs: 25000,
      pingTimeoutMs: 20000,
    });
    socket.close();
  });
});

describe("HTTP 503 (4503 unavailable) at the Engine.IO handshake when the replica has lost Redis", () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster({ replicas: 1 });
  });
  after(async () => {
    await cluster?.close();
  });

  it("answers /readyz 503 and refuses new sessions with HTTP 503 before any token, so that stock clients retry elsewhere", async () => {
    const gw = cluster.gateways[0]!;
    const jwt = await token({ sub: "alice" });
    await connectsAs(gw.url, { token: jwt }, "alice");
    await cluster.redis.stop();
    await waitReadyz(gw.url, 503, 10_000);
    // Refused before a session exists (a Socket.IO connect_error would stop a stock client for good).
    for (const websocket of [false, true]) {
      const answer = await engineHandshake(gw.url, { websocket });
      assert.equal(answer.status, 503, `${websocket ? "WebSocket" : "polling"} handshake: ${JSON.stringify(answer)}`);
      const error = (answer.body as { error: Refusal }).error;
      assert.equal(error.code, 4503);
      assert.equal(error.reason, "unavailable");
      assert.deepEqual(Object.keys(error).sort(), ["code", "message", "reason"]);
    }
    // A stock client (default reconnection) keeps retrying: its connect_error has no data, and it is not destroyed.
    const socket = io(gw.url, {
      auth: { token: jwt },
      forceNew: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 200,
    });
    try {
      let errors = 0;
      socket.on("connect_error", () => errors++);
      await waitUntil(() => errors >= 2, 5000, "two connect_errors");
      assert.equal(socket.active, true, "the client still tries to reconnect");
    } finally {
      socket.close();
    }
  });
});

describe("token lifetime", { concurrency: true }, () => {
  let cluster: TestCluster;
  let url: string;
  const sockets: TestSocket[] = [];
  let publisher: string;
  before(async () => {
    cluster = await startCluster({ replicas: 1 });
    url = cluster.gateways[0]!.url;
    publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
  });

  async function open(options: Parameters<typeof token>[0]): Promise<TestSocket> {
    const socket = await connect(url, { token: await token(options) });
    sockets.push(socket);
    return socket;
  }

  it("closes an unrefreshed connection with closing 4401 token_expired when the token expires", async () => {
    const socket = await open({ sub: "exp-a", ttlS: 2 });
    const disconnected = nextEvent<string>(socket, "disconnect", 6000);
    const closing = await nextEvent<Closing>(socket, "closing", 6000);
    assert.equal(closing.code, 4401);
    assert.equal(closing.reason, "token_expired");
    assert.equal(typeof closing.retryAfterMs, "number");
    assert.equal(await disconnected, "io server disconnect");
    assert.equal(socket.connected, false);
  });

  it("keeps a connection refreshed before expiry open past the original expiry", async () => {
    const jwt = await token({ sub: "exp-b", ttlS: 2 });
    const originalExp = JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()).exp as number;
    const socket = await connect(url, { token: jwt });
    sockets.push(socket);
    let closed = false;
    socket.on("closing", () => (closed = true));
    const fresh = await token({ sub: "exp-b", ttlS: 600 });
    const answer = await request<{ ok: boolean; exp: number }>(socket, "refresh", { token: fresh });
    assert.deepEqual(Object.keys(answer).sort(), ["exp", "ok"]);
    assert.equal(answer.ok, true);
    assert.ok(answer.exp >= nowS() + 590, `exp ${answer.exp}`);
    // Wait until well past the original expiry.
    await new Promise((r) => setTimeout(r, Math.max(originalExp * 1000 - Date.now(), 0) + 700));
    assert.equal(closed, false);
    assert.equal(socket.connected, true);
    const sub = await request(socket, "subscribe", { channel: "user:exp-b" });
    assert.equal(sub.ok, true);
  });

  it("answers a refresh with an invalid token 4401 unauthorized and keeps the connection and its subscriptions", async () => {
    const socket = await open({ sub: "ref-c" });
    const seen = recordEvents(socket);
    assert.equal((await request(socket, "subscribe", { channel: "user:ref-c" })).ok, true);
    const bad = [
      "not-a-jwt",
      await token({ sub: "ref-c", secret: "another-secret-that-is-long-enough-too" }),
      await signed({ sub: "ref-c", exp: nowS() - 10 }, "HS256", secretKey),
      `${b64url({ alg: "none" })}.${b64url({ sub: "ref-c", exp: nowS() + 3600 })}.`,
    ];
    for (const jwt of bad) {
      const answer = await request<{ ok: boolean; error: Refusal }>(socket, "refresh", { token: jwt });
      assert.equal(answer.ok, false);
      assert.equal(answer.error.code, 4401, JSON.stringify(answer));
      assert.equal(answer.error.reason, "unauthorized");
    }
    assert.equal(socket.connected, true);
    const published = await httpPublish(url, publisher, "user:ref-c", { type: "still", data: 1 });
    assert.equal(published.status, 202);
    await waitUntil(() => (seen.get("user:ref-c")?.length ?? 0) === 1, 5000, "delivery after a refused refresh");
    assert.equal(seen.get("user:ref-c")![0]!.type, "still");
  });

  it("answers a refresh with a token for another sub 4401 and keeps the current grants", async () => {
    const socket = await open({ sub: "ref-d" });
    const answer = await request<{ ok: boolean; error: Refusal }>(socket, "refresh", {
      token: await token({ sub: "mallory" }),
    });
    assert.equal(answer.ok, false);
    assert.equal(answer.error.code, 4401);
    assert.equal(answer.error.reason, "unauthorized");
    // Still ref-d: its own channel works, the other sub's does not.
    assert.equal((await request(socket, "subscribe", { channel: "user:ref-d" })).ok, true);
    const other = await request<{ ok: boolean; error: Refusal }>(socket, "subscribe", { channel: "user:mallory" });
    assert.equal(other.ok, false);
    assert.equal(other.error.code, 4403);
  });

  it("ends a subscription the refreshed token no longer grants with unsubscribed 4403 forbidden", async () => {
    const socket = await open({ sub: "ref-e", envs: ["e1"], scope: "env:read" });
    const seen = recordEvents(socket);
    assert.equal((await request(socket, "subscribe", { channel: "env:e1:logs" })).ok, true);
    assert.equal((await request(socket, "subscribe", { channel: "user:ref-e" })).ok, true);
    const unsubscribed = nextEvent<Unsubscribed>(socket, "unsubscribed");
    const answer = await request(socket, "refresh", {
      token: await token({ sub: "ref-e", envs: ["e2"], scope: "env:read" }),
    });
    assert.equal(answer.ok, true);
    assert.deepEqual(await unsubscribed, { channel: "env:e1:logs", code: 4403, reason: "forbidden" });
    // No more deliveries on the ended channel; the user channel still delivers.
    assert.equal((await httpPublish(url, publisher, "env:e1:logs", { type: "log", data: "x" })).status, 202);
    assert.equal((await httpPublish(url, publisher, "user:ref-e", { type: "marker", data: 1 })).status, 202);
    await waitUntil(() => (seen.get("user:ref-e")?.length ?? 0) === 1, 5000, "the marker");
    assert.equal(seen.get("env:e1:logs"), undefined);
    // And the new grants apply at once.
    const again = await request<{ ok: boolean; error: Refusal }>(socket, "subscribe", { channel: "env:e1:logs" });
    assert.equal(again.ok, false);
    assert.equal(again.error.code, 4403);
    assert.equal((await request(socket, "subscribe", { channel: "env:e2:logs" })).ok, true);
  });
});

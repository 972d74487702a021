/**
 * The HTTP API of docs/protocol.md, "HTTP API": publishing, history, health, errors in the JSON
 * shape, idempotency, and 503 (never 202) when Redis is gone.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { mintToken } from "../../src/auth/mint-token.js";
import type { ChannelEvent, SubscribeOk } from "../../src/contracts/events.js";
import { connect, recordEvents, request, token, waitUntil, type TestSocket } from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { waitReadyz } from "../support/util.js";

const MAX_MESSAGE_BYTES = 4096;

interface HttpAnswer {
  status: number;
  contentType: string;
  body: Record<string, unknown>;
}

interface ErrorShape {
  error: { code: number; reason: string; message: string; [k: string]: unknown };
}

async function call(
  method: "GET" | "POST",
  url: string,
  options: { bearer?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.bearer !== undefined) headers.authorization = `Bearer ${options.bearer}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`${method} ${url} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, contentType: res.headers.get("content-type") ?? "", body: parsed };
}

function eventsUrl(base: string, channel: string): string {
  return `${base}/v1/channels/${encodeURIComponent(channel)}/events`;
}

function historyUrl(base: string, channel: string, query = ""): string {
  return `${base}/v1/channels/${encodeURIComponent(channel)}/history${query}`;
}

/** Asserts the docs/protocol.md error shape with the HTTP status that matches the code. */
function assertError(answer: HttpAnswer, status: number, code: number, reason: string): ErrorShape["error"] {
  assert.equal(answer.status, status, `expected ${status}, got ${answer.status}: ${JSON.stringify(answer.body)}`);
  assert.match(answer.contentType, /application\/json/);
  const error = (answer.body as unknown as ErrorShape).error;
  assert.ok(error && typeof error === "object", `no error object in ${JSON.stringify(answer.body)}`);
  assert.equal(error.code, code);
  assert.equal(error.reason, reason);
  assert.equal(typeof error.message, "string");
  assert.ok(error.message.length > 0);
  return error;
}

describe("HTTP API", () => {
  let cluster: TestCluster;
  let base: string;
  let otherBase: string;
  let publisher: string;
  const sockets: TestSocket[] = [];

  before(async () => {
    cluster = await startCluster({
      replicas: 2,
      env: { ROOMCAST_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES), ROOMCAST_RATE_LIMIT: "0" },
    });
    base = cluster.gateways[0]!.url;
    otherBase = cluster.gateways[1]!.url;
    publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
  });

  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
  });

  describe("POST /v1/channels/:channel/events", () => {
    it("answers 202 {offset, epoch, id} and the event reaches subscribers with its priority", async () => {
      const socket = await connect(otherBase, { token: await token({ sub: "prio" }) });
      sockets.push(socket);
      const seen = recordEvents(socket);
      const sub = await request<SubscribeOk & { ok: boolean }>(socket, "subscribe", { channel: "user:prio" });
      assert.equal(sub.ok, true);

      const first = await call("POST", eventsUrl(base, "user:prio"), {
        bearer: publisher,
        body: { type: "alert", data: { text: "disk full" }, priority: "critical" },
      });
      assert.equal(first.status, 202, JSON.stringify(first.body));
      assert.match(first.contentType, /application\/json/);
      assert.deepEqual(Object.keys(first.body).sort(), ["epoch", "id", "offset"]);
      assert.equal(first.body.offset, 1);
      assert.equal(typeof first.body.epoch, "string");
      assert.equal(typeof first.body.id, "string");
      assert.equal(first.body.epoch, sub.epoch);

      const second = await call("POST", eventsUrl(base, "user:prio"), {
        bearer: publisher,
        body: { type: "note", data: null, priority: "low" },
      });
      assert.equal(second.status, 202);
      assert.equal(second.body.offset, 2);
      assert.notEqual(second.body.id, first.body.id);
      const third = await call("POST", eventsUrl(base, "user:prio"), {
        bearer: publisher,
        body: { type: "note", data: [1, 2] },
      });
      assert.equal(third.status, 202);

      await waitUntil(() => (seen.get("user:prio")?.length ?? 0) >= 3, 5000, "3 deliveries");
      const [a, b, c] = seen.get("user:prio")!;
      assert.deepEqual(
        { ...a!, ts: 0 },
        {
          channel: "user:prio",
          offset: 1,
          epoch: first.body.epoch,
          id: first.body.id,
          type: "alert",
          ts: 0,
          priority: "critical",
          data: { text: "disk full" },
        },
      );
      assert.ok(Math.abs(a!.ts - Date.now()) < 60_000, "ts is the publish time in ms");
      assert.equal(b!.priority, "low");
      assert.equal(b!.data, null);
      assert.equal(c!.priority, "normal", "priority defaults to normal");
      assert.deepEqual(c!.data, [1, 2]);
    });

    it("accepts the longest channel names docs/protocol.md allows", async () => {
      const id = "A1_.:@-".repeat(29).slice(0, 200);
      const channel = `${"n".repeat(32)}:${id}`;
      assert.equal(channel.length, 233);
      // Not a configured namespace: past the router, the answer is the gateway's 404.
      assertError(
        await call("POST", eventsUrl(base, channel), { bearer: publisher, body: { type: "x", data: 1 } }),
        404,
        4404,
        "not_found",
      );
      const userChannel = `user:${id}`;
      const published = await call("POST", eventsUrl(base, userChannel), {
        bearer: publisher,
        body: { type: "x", data: 1 },
      });
      assert.equal(published.status, 202, JSON.stringify(published.body));
      const history = await call("GET", historyUrl(otherBase, userChannel), { bearer: await token({ sub: id }) });
      assert.equal(history.status, 200, JSON.stringify(history.body));
      assert.deepEqual(
        (history.body.events as ChannelEvent[]).map((e) => [e.channel, e.id]),
        [[userChannel, published.body.id]],
      );
    });

    it("refuses a missing or invalid bearer with 401 unauthorized", async () => {
      const body = { type: "x", data: {} };
      const url = eventsUrl(base, "user:auth");
      assertError(await call("POST", url, { body }), 401, 4401, "unauthorized");
      assertError(await call("POST", url, { body, bearer: "not-a-jwt" }), 401, 4401, "unauthorized");
      assertError(
        await call("POST", url, { body, headers: { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` } }),
        401,
        4401,
        "unauthorized",
      );
      const wrongSecret = await mintToken({
        secret: "another-secret-that-is-long-enough-for-hs256",
        sub: "backend",
        scope: "publish",
      });
      assertError(await call("POST", url, { body, bearer: wrongSecret }), 401, 4401, "unauthorized");
      const expired = await token({ sub: "backend", scope: "publish", ttlS: -60 });
      assertError(await call("POST", url, { body, bearer: expired }), 401, 4401, "unauthorized");
      // The token is checked before the body: a bad or oversized body without a token is still 401.
      assertError(await call("POST", url, { body: "{not json" }), 401, 4401, "unauthorized");
      assertError(
        await call("POST", url, { body: { type: "x", data: "y".repeat(MAX_MESSAGE_BYTES * 2) } }),
        401,
        4401,
        "unauthorized",
      );
      // Nothing was published.
      const history = await call("GET", historyUrl(base, "user:auth"), { bearer: await token({ sub: "auth" }) });
      assert.equal(history.status, 200);
      assert.equal(history.body.offset, 0);
    });

    it("refuses a token without scope publish with 403 forbidden", async () => {
      const reader = await token({ sub: "backend", scope: "jobs:read jobs:write" });
      assertError(
        await call("POST", eventsUrl(base, "user:noscope"), { bearer: reader, body: { type: "x", data: 1 } }),
        403,
        4403,
        "forbidden",
      );
      const noScope = await token({ sub: "noscope" });
      assertError(
        await call("POST", eventsUrl(base, "user:noscope"), { bearer: noScope, body: { type: "x", data: 1 } }),
        403,
        4403,
        "forbidden",
      );
    });

    it("refuses a bad channel name with 400 and an unknown namespace with 404", async () => {
      const body = { type: "x", data: 1 };
      for (const bad of ["nocolon", "Upper:case", "user:", "user:has space", `user:${"x".repeat(201)}`]) {
        const error = assertError(
          await call("POST", eventsUrl(base, bad), { bearer: publisher, body }),
          400,
          4400,
          "bad_request",
        );
        assert.match(error.message, /channel/);
      }
      // Router-level refusals use the same shape: a path parameter far too long, a malformed URL.
      assertError(
        await call("POST", eventsUrl(base, `user:${"x".repeat(2000)}`), { bearer: publisher, body }),
        400,
        4400,
        "bad_request",
      );
      assertError(
        await call("POST", `${base}/v1/channels/user%3A%E0%A4%A/events`, { bearer: publisher, body }),
        400,
        4400,
        "bad_request",
      );
      const unknown = assertError(
        await call("POST", eventsUrl(base, "nope:thing"), { bearer: publisher, body }),
        404,
        4404,
        "not_found",
      );
      assert.match(unknown.message, /nope/);
      assertError(
        await call("POST", eventsUrl(base, "env:e1:nostream"), { bearer: publisher, body }),
        404,
        4404,
        "not_found",
      );
    });

    it("refuses invalid JSON and bodies failing validation with 400 naming the field", async () => {
      const url = eventsUrl(base, "user:validation");
      const invalidJson = assertError(
        await call("POST", url, { bearer: publisher, body: '{"type": "x", "data": ' }),
        400,
        4400,
        "bad_request",
      );
      assert.match(invalidJson.message, /body|JSON/i);

      const missingType = assertError(
        await call("POST", url, { bearer: publisher, body: { data: 1 } }),
        400,
        4400,
        "bad_request",
      );
      assert.match(missingType.message, /\btype\b/);
      const badType = assertError(
        await call("POST", url, { bearer: publisher, body: { type: "has space", data: 1 } }),
        400,
        4400,
        "bad_request",
      );
      assert.match(badType.message, /\btype\b/);
      const missingData = assertError(
        await call("POST", url, { bearer: publisher, body: { type: "x" } }),
        400,
        4400,
        "bad_request",
      );
      assert.match(missingData.message, /\bdata\b/);
      const unknownField = assertError(
        await call("POST", url, { bearer: publisher, body: { type: "x", data: 1, colour: "red" } }),
        400,
        4400,
        "bad_request",
      );
      assert.match(unknownField.message, /colour/);
      const badPriority = assertError(
        await call("POST", url, { bearer: publisher, body: { type: "x", data: 1, priority: "urgent" } }),
        400,
        4400,
        "bad_request",
      );
      assert.match(badPriority.message, /priority/);
      const notObject = assertError(
        await call("POST", url, { bearer: publisher, body: "[1,2]" }),
        400,
        4400,
        "bad_request",
      );
      assert.match(notObject.message, /body/);

      const history = await call("GET", historyUrl(base, "user:validation"), {
        bearer: await token({ sub: "validation" }),
      });
      assert.equal(history.body.offset, 0, "a refused body published something");
    });

    it("refuses a body over ROOMCAST_MAX_MESSAGE_BYTES with 413 too_large", async () => {
      const url = eventsUrl(base, "user:big");
      const big = { type: "x", data: { blob: "a".repeat(MAX_MESSAGE_BYTES + 100) } };
      assertError(await call("POST", url, { bearer: publisher, body: big }), 413, 4413, "too_large");
      const fits = await call("POST", url, {
        bearer: publisher,
        body: { type: "x", data: { blob: "a".repeat(MAX_MESSAGE_BYTES - 200) } },
      });
      assert.equal(fits.status, 202, JSON.stringify(fits.body));
      assert.equal(fits.body.offset, 1, "the oversized body was published");
    });

    it("publishes once per idempotencyKey and returns the first answer on a repeat", async () => {
      const channel = "user:idem";
      const socket = await connect(otherBase, { token: await token({ sub: "idem" }) });
      sockets.push(socket);
      const seen = recordEvents(socket);
      assert.equal((await request<{ ok: boolean }>(socket, "subscribe", { channel })).ok, true);

      const url = eventsUrl(base, channel);
      const first = await call("POST", url, {
        bearer: publisher,
        body: { type: "order", data: { n: 1 }, idempotencyKey: "order-17" },
      });
      assert.equal(first.status, 202);
      // The repeat goes to the other replica, with a different body: still the first answer.
      const repeat = await call("POST", eventsUrl(otherBase, channel), {
        bearer: publisher,
        body: { type: "order", data: { n: 2 }, idempotencyKey: "order-17" },
      });
      assert.equal(repeat.status, 202);
      assert.deepEqual(repeat.body, first.body);
      const concurrent = await Promise.all(
        Array.from({ length: 5 }, () =>
          call("POST", url, { bearer: publisher, body: { type: "order", data: { n: 3 }, idempotencyKey: "order-17" } }),
        ),
      );
      for (const answer of concurrent) assert.deepEqual(answer.body, first.body);

      const different = await call("POST", url, {
        bearer: publisher,
        body: { type: "order", data: { n: 4 }, idempotencyKey: "order-18" },
      });
      assert.equal(different.status, 202);
      assert.equal(different.body.offset, (first.body.offset as number) + 1);
      assert.notEqual(different.body.id, first.body.id);
      const again = await call("POST", url, {
        bearer: publisher,
        body: { type: "order", data: { n: 5 }, idempotencyKey: "order-18" },
      });
      assert.deepEqual(again.body, different.body);

      // Delivery is in order, so once the second key's event is here a repeat would have been too.
      await waitUntil(() => (seen.get(channel)?.length ?? 0) >= 2, 5000, "2 deliveries");
      await new Promise((r) => setTimeout(r, 100));
      const delivered = seen.get(channel)!;
      assert.deepEqual(
        delivered.map((e) => [e.offset, e.id, e.data]),
        [
          [1, first.body.id, { n: 1 }],
          [2, different.body.id, { n: 4 }],
        ],
      );
      const history = await call("GET", historyUrl(base, channel), { bearer: await token({ sub: "idem" }) });
      assert.equal(history.status, 200);
      assert.equal(history.body.offset, 2);
      assert.deepEqual(
        (history.body.events as ChannelEvent[]).map((e) => e.id),
        [first.body.id, different.body.id],
      );
    });
  });

  describe("GET /v1/channels/:channel/history", () => {
    const channel = "user:reader";
    const published: { offset: number; epoch: string; id: string }[] = [];

    before(async () => {
      for (let n = 1; n <= 12; n++) {
        const res = await call("POST", eventsUrl(base, channel), {
          bearer: publisher,
          body: { type: "n", data: { n } },
        });
        assert.equal(res.status, 202);
        published.push(res.body as { offset: number; epoch: string; id: string });
      }
    });

    it("answers {offset, epoch, events}, the last events by default, with since and limit", async () => {
      const reader = await token({ sub: "reader" });
      const epoch = published[0]!.epoch;
      const all = await call("GET", historyUrl(otherBase, channel), { bearer: reader });
      assert.equal(all.status, 200, JSON.stringify(all.body));
      assert.deepEqual(Object.keys(all.body).sort(), ["epoch", "events", "offset"]);
      assert.equal(all.body.offset, 12);
      assert.equal(all.body.epoch, epoch);
      const events = all.body.events as ChannelEvent[];
      assert.deepEqual(
        events.map((e) => e.offset),
        Array.from({ length: 12 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        events.map((e) => e.id),
        published.map((p) => p.id),
      );
      assert.equal(events[0]!.channel, channel);
      assert.equal(events[0]!.type, "n");
      assert.deepEqual(events[0]!.data, { n: 1 });

      const since = await call("GET", historyUrl(base, channel, "?since=9"), { bearer: reader });
      assert.equal(since.status, 200);
      assert.deepEqual(
        (since.body.events as ChannelEvent[]).map((e) => e.offset),
        [10, 11, 12],
      );
      assert.equal(since.body.offset, 12);

      const sinceLimit = await call("GET", historyUrl(base, channel, "?since=3&limit=4"), { bearer: reader });
      assert.deepEqual(
        (sinceLimit.body.events as ChannelEvent[]).map((e) => e.offset),
        [4, 5, 6, 7],
      );
      assert.equal(sinceLimit.body.offset, 12);

      const lastTwo = await call("GET", historyUrl(base, channel, "?limit=2"), { bearer: reader });
      assert.deepEqual(
        (lastTwo.body.events as ChannelEvent[]).map((e) => e.offset),
        [11, 12],
      );

      const atTop = await call("GET", historyUrl(base, channel, "?since=12"), { bearer: reader });
      assert.deepEqual(atTop.body.events, []);

      for (const query of ["?limit=0", "?limit=abc", "?since=-1", "?sort=desc"]) {
        assertError(await call("GET", historyUrl(base, channel, query), { bearer: reader }), 400, 4400, "bad_request");
      }
    });

    it("needs the same grant as subscribe, or scope admin", async () => {
      assertError(await call("GET", historyUrl(base, channel)), 401, 4401, "unauthorized");
      assertError(await call("GET", historyUrl(base, channel), { bearer: "garbage" }), 401, 4401, "unauthorized");
      // Another user's channel, even with scope publish.
      assertError(
        await call("GET", historyUrl(base, channel), { bearer: await token({ sub: "mallory", scope: "publish" }) }),
        403,
        4403,
        "forbidden",
      );
      const admin = await call("GET", historyUrl(base, channel), {
        bearer: await token({ sub: "ops", scope: "admin" }),
      });
      assert.equal(admin.status, 200);
      assert.equal(admin.body.offset, 12);

      // Environment channels: envs and scope env:read, as for subscribe.
      const envChannel = "env:hist-env:logs";
      assert.equal(
        (
          await call("POST", eventsUrl(base, envChannel), {
            bearer: publisher,
            body: { type: "log", data: { line: "hi" } },
          })
        ).status,
        202,
      );
      const granted = await call("GET", historyUrl(base, envChannel), {
        bearer: await token({ sub: "dev", envs: ["hist-env"], scope: "env:read" }),
      });
      assert.equal(granted.status, 200);
      assert.equal((granted.body.events as ChannelEvent[]).length, 1);
      assertError(
        await call("GET", historyUrl(base, envChannel), {
          bearer: await token({ sub: "dev", envs: ["other"], scope: "env:read" }),
        }),
        403,
        4403,
        "forbidden",
      );
      assertError(
        await call("GET", historyUrl(base, envChannel), { bearer: await token({ sub: "dev", envs: ["hist-env"] }) }),
        403,
        4403,
        "forbidden",
      );
      assertError(
        await call("GET", historyUrl(base, "nope:x"), { bearer: await token({ sub: "ops", scope: "admin" }) }),
        404,
        4404,
        "not_found",
      );
    });
  });

  describe("health and unknown routes", () => {
    it("answers /healthz and /readyz with 200", async () => {
      const health = await call("GET", `${base}/healthz`);
      assert.equal(health.status, 200);
      const ready = await call("GET", `${base}/readyz`);
      assert.equal(ready.status, 200);
    });

    it("answers an unknown route with 404 in the JSON error shape", async () => {
      const error = assertError(await call("GET", `${base}/v1/nothing-here`), 404, 4404, "not_found");
      assert.match(error.message, /nothing-here/);
      assertError(await call("POST", `${base}/nope`, { body: {} }), 404, 4404, "not_found");
      assertError(
        await call("GET", `${base}/v1/channels/user:x/events`, { bearer: publisher }),
        404,
        4404,
        "not_found",
      );
    });
  });
});

describe("HTTP API without Redis", () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startCluster({ replicas: 1 });
  });

  after(async () => {
    await cluster?.close();
  });

  it("answers POST with 503 unavailable (never 202) and /readyz with 503 once Redis is gone", async () => {
    const base = cluster.gateways[0]!.url;
    const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
    const body = { type: "x", data: { n: 1 } };
    const ok = await call("POST", eventsUrl(base, "user:gone"), { bearer: publisher, body });
    assert.equal(ok.status, 202);

    // Stop Redis last: this cluster is this test's alone.
    await cluster.redis.stop();
    // Right away, and again once the replica has noticed.
    const immediate = await call("POST", eventsUrl(base, "user:gone"), { bearer: publisher, body });
    assertError(immediate, 503, 4503, "unavailable");
    await waitReadyz(base, 503, 10_000);
    const ready = await call("GET", `${base}/readyz`);
    assert.equal(ready.status, 503);

    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        call("POST", eventsUrl(base, `user:gone-${i}`), {
          bearer: publisher,
          body: { ...body, idempotencyKey: `k${i}` },
        }),
      ),
    );
    for (const answer of answers) {
      const error = assertError(answer, 503, 4503, "unavailable");
      assert.doesNotMatch(error.message, /ECONNREFUSED|ioredis|127\.0\.0\.1/, "the message leaks internals");
    }
    const history = await call("GET", historyUrl(base, "user:gone"), { bearer: await token({ sub: "gone" }) });
    assertError(history, 503, 4503, "unavailable");
    // The process itself is alive.
    assert.equal((await call("GET", `${base}/healthz`)).status, 200);
  });
});

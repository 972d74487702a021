/**
 * docs/protocol.md "Requests", "HTTP API" and "Limits": request limits, against real gateway processes: the
 * per-connection token bucket (4429 rate_limited with retryAfterMs, `failure` without ack,
 * `closing 4429` for sustained abuse), the message size limit (4413 too_large), the
 * cluster-wide HTTP rate limit per token (429) and the HTTP security headers.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ChannelEvent, Closing, FailureEvent } from "../../src/contracts/events.js";
import {
  httpPublish,
  nextEvent,
  recordEvents,
  request,
  token,
  waitUntil,
  type TestSocket,
  openAs,
} from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import type { GatewayProcess } from "../support/gateway-process.js";
import { okAnswer, refusedWith, type Answer, type ErrorBody } from "../support/answers.js";
import { sleep, writeChatConfig } from "../support/util.js";

const RATE = 5;
const BURST = 10;
const MAX_BYTES = 2048;
const HTTP_RATE = 5;

/** Asserts a 4429 rate_limited error with a positive retryAfterMs of at most one token's refill time. */
function assertRateLimited(error: ErrorBody): void {
  assert.equal(error.code, 4429, JSON.stringify(error));
  assert.equal(error.reason, "rate_limited", JSON.stringify(error));
  assert.equal(typeof error.retryAfterMs, "number");
  const retryAfterMs = error.retryAfterMs as number;
  assert.ok(retryAfterMs > 0 && retryAfterMs <= Math.ceil(1000 / RATE), `retryAfterMs ${retryAfterMs}`);
}

interface HttpAnswer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function post(baseUrl: string, bearer: string, channel: string, body: unknown): Promise<HttpAnswer> {
  const res = await fetch(`${baseUrl}/v1/channels/${encodeURIComponent(channel)}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

/** Asserts an HTTP 429 with the docs/protocol.md body `{ error: { code 4429, reason rate_limited, message, retryAfterMs } }`. */
function assertHttpRateLimited(answer: HttpAnswer): void {
  assert.equal(answer.status, 429, JSON.stringify(answer.body));
  assert.deepEqual(Object.keys(answer.body), ["error"]);
  const error = answer.body.error as ErrorBody;
  assert.deepEqual(Object.keys(error).sort(), ["code", "message", "reason", "retryAfterMs"], JSON.stringify(error));
  assert.equal(error.code, 4429);
  assert.equal(error.reason, "rate_limited");
  assert.equal(typeof error.retryAfterMs, "number");
  assert.ok((error.retryAfterMs as number) > 0 && (error.retryAfterMs as number) <= 1000, JSON.stringify(error));
  assert.match(answer.headers.get("content-type") ?? "", /^application\/json/);
}

describe("request limits", () => {
  let cluster: TestCluster;
  /** ROOMCAST_RATE_LIMIT=5, ROOMCAST_RATE_BURST=10. */
  let rated: GatewayProcess;
  /** ROOMCAST_MAX_MESSAGE_BYTES=2048. */
  let sized: GatewayProcess;
  /** Two replicas with ROOMCAST_HTTP_RATE_LIMIT=5 that count publishers' successes too. */
  let httpA: GatewayProcess;
  let httpB: GatewayProcess;
  let dir: string;
  let publisher: string;
  const sockets: TestSocket[] = [];

  const open = (url: string, claims: Parameters<typeof token>[0]) => openAs(sockets, url, claims);

  async function publish(gateway: GatewayProcess, channel: string, type: string, data: unknown = {}): Promise<number> {
    const res = await httpPublish(gateway.url, publisher, channel, { type, data });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.offset as number;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "roomcast-rate-limits-test-"));
    const configFile = writeChatConfig(dir);
    cluster = await startCluster({ replicas: 0, env: { ROOMCAST_CONFIG: configFile } });
    [rated, sized, httpA, httpB] = await Promise.all([
      cluster.addGateway({ ROOMCAST_RATE_LIMIT: String(RATE), ROOMCAST_RATE_BURST: String(BURST) }),
      cluster.addGateway({ ROOMCAST_MAX_MESSAGE_BYTES: String(MAX_BYTES) }),
      // Publish-scoped tokens' successes count here (the operator's choice; off by default).
      cluster.addGateway({ ROOMCAST_HTTP_RATE_LIMIT: String(HTTP_RATE), ROOMCAST_HTTP_RATE_LIMIT_PUBLISHERS: "true" }),
      cluster.addGateway({ ROOMCAST_HTTP_RATE_LIMIT: String(HTTP_RATE), ROOMCAST_HTTP_RATE_LIMIT_PUBLISHERS: "true" }),
    ]);
    publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
  });

  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe("per-connection token bucket", () => {
    it("admits a burst of 10, refuses the rest with 4429 rate_limited and retryAfterMs, and admits again after it", async () => {
      const socket = await open(rated.url, { sub: "bucket" });
      const seen = recordEvents(socket);
      // Sent back to back, in one go: 10 subscribes (the burst), then unsubscribes over the limit.
      const answers = await Promise.all(
        Array.from({ length: 14 }, (_, i) =>
          request<Answer>(socket, i < BURST ? "subscribe" : "unsubscribe", { channel: "user:bucket" }),
        ),
      );
      for (const answer of answers.slice(0, BURST)) okAnswer(answer);
      for (const answer of answers.slice(BURST))
        assertRateLimited(refusedWith(answer, 4429, "rate_limited", ["retryAfterMs"]));

      const last = (answers[answers.length - 1] as { error: ErrorBody }).error;
      await sleep(last.retryAfterMs as number);
      okAnswer(await request<Answer>(socket, "subscribe", { channel: "user:bucket" }));

      // Without an ack, the refusal arrives as a `failure` event with the request's channel.
      const failure = nextEvent<FailureEvent>(socket, "failure");
      for (let i = 0; i < 3; i++) socket.emit("subscribe", { channel: "user:bucket" });
      const got = await failure;
      assert.deepEqual(Object.keys(got).sort(), ["channel", "error", "event"]);
      assert.equal(got.event, "subscribe");
      assert.equal(got.channel, "user:bucket");
      assertRateLimited(got.error);

      // The refused unsubscribes had no effect: the subscription still delivers.
      const offset = await publish(rated, "user:bucket", "still-subscribed");
      await waitUntil(() => (seen.get("user:bucket")?.length ?? 0) === 1, 5000, "delivery");
      assert.equal(seen.get("user:bucket")![0]!.offset, offset);
      assert.equal(socket.connected, true);
    });

    it("closes a connection that keeps flooding with closing 4429 rate_limited, while a quiet client on the replica gets every event once, in order", async () => {
      const quiet = await open(rated.url, { sub: "quiet" });
      const seen = recordEvents(quiet);
      let quietFailures = 0;
      quiet.on("failure", () => quietFailures++);
      let quietClosing = 0;
      quiet.on("closing", () => quietClosing++);
      const first = okAnswer(await request<Answer>(quiet, "subscribe", { channel: "user:quiet" }));

      const abuser = await open(rated.url, { sub: "abuser" });
      const order: string[] = [];
      let closing: Closing | undefined;
      abuser.on("closing", (c) => {
        closing = c;
        order.push("closing");
      });
      let disconnectReason: string | undefined;
      abuser.on("disconnect", (reason) => {
        disconnectReason = reason;
        order.push("disconnect");
      });
      let refusals = 0;

      // Events published before, during and after the flood.
      let published = 0;
      const publishing = (async () => {
        for (let i = 0; i < 40; i++) {
          await publish(rated, "user:quiet", `e${i}`, { i });
          published++;
          await sleep(10);
        }
      })();
      await waitUntil(() => published >= 5, 5000, "publishes before the flood");
      const raw = abuser as unknown as { emit(event: string, payload: unknown, ack: (answer: Answer) => void): void };
      for (let round = 0; round < 20 && abuser.connected; round++) {
        for (let i = 0; i < 10; i++) {
          raw.emit("subscribe", { channel: "user:abuser" }, (answer) => {
            if (!answer.ok) {
              assertRateLimited(answer.error);
              refusals++;
            }
          });
        }
        await sleep(20);
      }
      await waitUntil(() => disconnectReason !== undefined, 5000, "the abuser's disconnect");
      await publishing;

      assert.deepEqual(order, ["closing", "disconnect"]);
      assert.ok(closing);
      assert.deepEqual(Object.keys(closing).sort(), ["code", "reason", "retryAfterMs"]);
      assert.equal(closing.code, 4429);
      assert.equal(closing.reason, "rate_limited");
      assert.ok(typeof closing.retryAfterMs === "number" && closing.retryAfterMs > 0, JSON.stringify(closing));
      // Moved off at the transport level: a stock client reconnects by itself (after retryAfterMs, if it honours it).
      assert.equal(disconnectReason, "transport close");
      assert.ok(refusals > 0, "refusals before the close");

      await waitUntil(() => (seen.get("user:quiet")?.length ?? 0) >= 40, 5000, "every event at the quiet client");
      await sleep(200);
      const events = seen.get("user:quiet") as ChannelEvent[];
      assert.deepEqual(
        events.map((e) => e.offset),
        Array.from({ length: 40 }, (_, i) => (first.offset as number) + 1 + i),
      );
      assert.deepEqual(
        events.map((e) => e.type),
        Array.from({ length: 40 }, (_, i) => `e${i}`),
      );
      assert.equal(quiet.connected, true);
      assert.equal(quietFailures, 0);
      assert.equal(quietClosing, 0);
      okAnswer(await request<Answer>(quiet, "subscribe", { channel: "user:quiet" }));
    });
  });

  describe("message size", () => {
    it("answers an oversized publish 4413 too_large with the limit, far over it too, and the connection stays usable", async () => {
      const writer = await open(sized.url, { sub: "big-writer", scope: "chat:write" });
      const reader = await open(sized.url, { sub: "big-reader" });
      const seen = recordEvents(reader);
      const written = recordEvents(writer);
      okAnswer(await request<Answer>(reader, "subscribe", { channel: "chat:big" }));
      okAnswer(await request<Answer>(writer, "subscribe", { channel: "chat:big" }));

      const publishOf = (text: string) => ({ channel: "chat:big", type: "msg", data: { text } });
      // The request's size is its JSON: `[payload]` (the ack is not part of it).
      const overhead = JSON.stringify([publishOf("")]).length;
      const fits = okAnswer(await request<Answer>(writer, "publish", publishOf("a".repeat(MAX_BYTES - overhead))));

      for (const size of [MAX_BYTES - overhead + 1, 3000, 10 * MAX_BYTES, 900_000]) {
        const error = refusedWith(
          await request<Answer>(writer, "publish", publishOf("x".repeat(size))),
          4413,
          "too_large",
          ["limit"],
        );
        assert.equal(error.limit, MAX_BYTES, `${size}: ${JSON.stringify(error)}`);
        assert.equal(writer.connected, true, `disconnected after ${size} bytes`);
      }
      // Size is bytes: two-byte characters count twice.
      const wide = refusedWith(
        await request<Answer>(writer, "publish", publishOf("é".repeat(MAX_BYTES / 2))),
        4413,
        "too_large",
        ["limit"],
      );
      assert.equal(wide.limit, MAX_BYTES);

      // Without an ack, a `failure` event.
      const failure = nextEvent<FailureEvent>(writer, "failure");
      writer.emit("publish", publishOf("y".repeat(3 * MAX_BYTES)));
      const got = await failure;
      assert.equal(got.event, "publish");
      assert.equal(got.channel, "chat:big");
      assert.equal(got.error.code, 4413);
      assert.equal(got.error.reason, "too_large");
      assert.equal(got.error.limit, MAX_BYTES);

      // Still usable: a normal publish goes through and is delivered; nothing oversized was.
      const normal = okAnswer(await request<Answer>(writer, "publish", publishOf("small")));
      assert.equal(normal.offset, (fits.offset as number) + 1);
      await waitUntil(
        () => (seen.get("chat:big")?.length ?? 0) >= 2 && (written.get("chat:big")?.length ?? 0) >= 2,
        5000,
        "deliveries",
      );
      const last = await publish(sized, "chat:big", "marker");
      await waitUntil(() => seen.get("chat:big")!.some((e) => e.offset === last), 5000, "marker");
      assert.deepEqual(
        seen.get("chat:big")!.map((e) => e.offset),
        [fits.offset, normal.offset, last],
      );
      assert.equal((seen.get("chat:big")![1]!.data as { text: string }).text, "small");
      assert.equal(writer.connected, true);
      assert.equal(reader.connected, true);
    });

    it("applies the limit to HTTP bodies too: 413 too_large", async () => {
      const res = await post(sized.url, publisher, "chat:big-http", {
        type: "msg",
        data: { text: "x".repeat(MAX_BYTES) },
      });
      assert.equal(res.status, 413, JSON.stringify(res.body));
      const error = res.body.error as ErrorBody;
      assert.equal(error.code, 4413);
      assert.equal(error.reason, "too_large");
      const ok = await post(sized.url, publisher, "chat:big-http", {
        type: "msg",
        data: { text: "x".repeat(MAX_BYTES / 2) },
      });
      assert.equal(ok.status, 202, JSON.stringify(ok.body));
    });
  });

  describe("HTTP rate limit per token", () => {
    it("answers the excess of a burst 429 with retryAfterMs, per token", async () => {
      const limited = await token({ sub: "http-burst", scope: "publish" });
      const other = await token({ sub: "http-other", scope: "publish" });
      // Within one window (1 s from the first request), exactly 5 pass; if the burst
      // straddled two windows, try again with a fresh token.
      for (let attempt = 1; ; attempt++) {
        const bearer = attempt === 1 ? limited : await token({ sub: `http-burst-${attempt}`, scope: "publish" });
        const started = Date.now();
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) => post(httpA.url, bearer, "chat:http-burst", { type: "n", data: i })),
        );
        // Another token is not affected, in the same window.
        const otherAnswer = await post(httpA.url, other, "chat:http-burst", { type: "other", data: 0 });
        const elapsed = Date.now() - started;
        const passed = answers.filter((a) => a.status === 202);
        const refused = answers.filter((a) => a.status !== 202);
        for (const answer of refused) assertHttpRateLimited(answer);
        assert.equal(otherAnswer.status, 202, JSON.stringify(otherAnswer.body));
        if (elapsed < 900 || attempt === 3) {
          assert.ok(passed.length >= HTTP_RATE, `only ${passed.length} passed`);
          if (elapsed < 900) assert.equal(passed.length, HTTP_RATE, `${passed.length} passed in ${elapsed} ms`);
          else
            assert.ok(
              passed.length <= HTTP_RATE * Math.ceil(elapsed / 1000 + 1),
              `${passed.length} passed in ${elapsed} ms`,
            );
          // The limiter's own headers, and a retry-after in seconds.
          assert.equal(refused[0]!.headers.get("x-ratelimit-limit"), String(HTTP_RATE));
          assert.equal(refused[0]!.headers.get("x-ratelimit-remaining"), "0");
          assert.ok(
            Number(refused[0]!.headers.get("retry-after")) >= 1,
            `retry-after ${refused[0]!.headers.get("retry-after")}`,
          );
          break;
        }
      }
    });

    it("counts requests without a valid token per IP, so unauthenticated floods are limited too", async () => {
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => post(httpA.url, "not-a-token", "chat:http-anon", { type: "n", data: 0 })),
      );
      const statuses = answers.map((a) => a.status);
      assert.ok(
        statuses.every((status) => status === 401 || status === 429),
        statuses.join(","),
      );
      assert.ok(statuses.filter((status) => status === 429).length >= 20 - 2 * HTTP_RATE, statuses.join(","));
      for (const answer of answers.filter((a) => a.status === 429)) assertHttpRateLimited(answer);
    });

    it("is cluster-wide: 5 on one replica, then the next on the other is 429; /healthz is not limited", async () => {
      for (let attempt = 1; ; attempt++) {
        const bearer = await token({ sub: `http-cluster-${attempt}`, scope: "publish" });
        const started = Date.now();
        const onA: HttpAnswer[] = [];
        for (let i = 0; i < HTTP_RATE; i++)
          onA.push(await post(httpA.url, bearer, "chat:http-cluster", { type: "n", data: i }));
        const onB = await post(httpB.url, bearer, "chat:http-cluster", { type: "n", data: "b" });
        // And both at once: a burst on each replica together gets no more than the limit.
        const bursts = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            post(i % 2 === 0 ? httpA.url : httpB.url, bearer, "chat:http-cluster", { type: "burst", data: i }),
          ),
        );
        const elapsed = Date.now() - started;
        for (const answer of onA) assert.equal(answer.status, 202, JSON.stringify(answer.body));
        if (elapsed < 900) {
          assertHttpRateLimited(onB);
          for (const answer of bursts) assertHttpRateLimited(answer);
          break;
        }
        // Crossed a window: a fresh window allows at most the limit again, never a limit per replica.
        const passed = [onB, ...bursts].filter((a) => a.status === 202).length;
        assert.ok(passed <= HTTP_RATE * Math.ceil(elapsed / 1000), `${passed} passed in ${elapsed} ms`);
        if (attempt === 3) break;
      }
      // Burst a fresh window on both replicas concurrently: exactly the limit passes in total.
      for (let attempt = 1; ; attempt++) {
        const bearer = await token({ sub: `http-both-${attempt}`, scope: "publish" });
        const started = Date.now();
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            post(i % 2 === 0 ? httpA.url : httpB.url, bearer, "chat:http-both", { type: "n", data: i }),
          ),
        );
        const elapsed = Date.now() - started;
        const passed = answers.filter((a) => a.status === 202).length;
        for (const answer of answers.filter((a) => a.status !== 202)) assertHttpRateLimited(answer);
        if (elapsed < 900) {
          assert.equal(passed, HTTP_RATE, `${passed} passed across two replicas in ${elapsed} ms`);
          break;
        }
        assert.ok(passed <= HTTP_RATE * Math.ceil(elapsed / 1000 + 1), `${passed} passed in ${elapsed} ms`);
        if (attempt === 3) break;
      }

      // The token is spent for this window; health and readiness answer regardless, with or without it.
      const spent = await token({ sub: "http-spent", scope: "publish" });
      await Promise.all(
        Array.from({ length: HTTP_RATE + 2 }, () => post(httpA.url, spent, "chat:http-spent", { type: "n", data: 0 })),
      );
      const health = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          fetch(`${(i % 2 === 0 ? httpA : httpB).url}/${i % 3 === 0 ? "readyz" : "healthz"}`, {
            headers: i % 4 < 2 ? { authorization: `Bearer ${spent}` } : {},
          }),
        ),
      );
      assert.deepEqual(
        health.map((r) => r.status),
        health.map(() => 200),
      );
    });
  });

  describe("security headers", () => {
    it("sends helmet's headers on API answers, errors and rate-limit refusals included", async () => {
      const bearer = await token({ sub: "headers", scope: "publish" });
      // The tests above spent this address's budget for callers without a valid token: a new window.
      await sleep(1100);
      const accepted = await post(httpA.url, bearer, "chat:headers", { type: "n", data: 0 });
      assert.equal(accepted.status, 202);
      const unauthorized = await fetch(`${httpA.url}/v1/channels/chat%3Aheaders/events`, { method: "POST" });
      assert.equal(unauthorized.status, 401);
      const notFound = await fetch(`${httpA.url}/v1/nope`);
      assert.equal(notFound.status, 404);
      const health = await fetch(`${httpA.url}/healthz`);
      let limited: HttpAnswer | undefined;
      for (let i = 0; i < 3 * HTTP_RATE && !limited; i++) {
        const answer = await post(httpA.url, bearer, "chat:headers", { type: "n", data: i });
        if (answer.status === 429) limited = answer;
      }
      assert.ok(limited, "no 429");
      for (const [what, headers] of [
        ["202", accepted.headers],
        ["401", unauthorized.headers],
        ["404", notFound.headers],
        ["healthz", health.headers],
        ["429", limited.headers],
      ] as const) {
        assert.equal(headers.get("x-content-type-options"), "nosniff", what);
        assert.match(headers.get("strict-transport-security") ?? "", /max-age=\d+/, what);
        assert.equal(headers.get("x-frame-options"), "SAMEORIGIN", what);
        assert.equal(headers.get("referrer-policy"), "no-referrer", what);
        assert.equal(headers.get("cross-origin-resource-policy"), "same-origin", what);
        assert.equal(headers.get("x-dns-prefetch-control"), "off", what);
        assert.equal(headers.get("x-powered-by"), null, what);
        // An API of JSON answers: no CSP (turned off on purpose).
        assert.equal(headers.get("content-security-policy"), null, what);
      }
    });
  });
});

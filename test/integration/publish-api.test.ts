/**
 * Publishing over HTTP at backend rates (docs/protocol.md, "HTTP API"), against real gateway
 * processes: the batch endpoint POST /v1/publish (results in order, one channel's events in
 * order, per-event errors, idempotency keys), publishing confined to the token's `envs` and
 * tenant, and the HTTP rate limit's defaults (a publishing backend is never throttled on its
 * successes; its failures, other tokens and callers without a valid token are).
 */
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { after, before, describe, it } from "node:test";
import type { ChannelEvent } from "../../src/contracts/events.js";
import {
  connect,
  httpGet,
  httpPublish,
  recordEvents,
  request,
  token,
  waitUntil,
  type TestSocket,
} from "../support/clients.js";
import { redisCommand, startCluster, type TestCluster } from "../support/cluster.js";
import type { GatewayProcess } from "../support/gateway-process.js";
import { range } from "../support/util.js";

interface ErrorBody {
  code: number;
  reason: string;
  message: string;
  [detail: string]: unknown;
}
type BatchResult = { offset: number; epoch: string; id: string } | { error: ErrorBody };

async function batch(
  baseUrl: string,
  bearer: string,
  body: unknown,
): Promise<{ status: number; body: { results?: BatchResult[]; error?: ErrorBody } }> {
  const res = await fetch(`${baseUrl}/v1/publish`, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { results?: BatchResult[]; error?: ErrorBody } };
}

function ok(result: BatchResult | undefined): { offset: number; epoch: string; id: string } {
  assert.ok(result && !("error" in result), `expected a published event: ${JSON.stringify(result)}`);
  return result;
}

function failed(result: BatchResult | undefined, code: number, reason: string): ErrorBody {
  assert.ok(result && "error" in result, `expected an error: ${JSON.stringify(result)}`);
  assert.equal(result.error.code, code, JSON.stringify(result.error));
  assert.equal(result.error.reason, reason, JSON.stringify(result.error));
  assert.equal(typeof result.error.message, "string");
  return result.error;
}

describe("HTTP publishing", () => {
  let cluster: TestCluster;
  /** Default settings. */
  let a: GatewayProcess;
  let b: GatewayProcess;
  /** ROOMCAST_HTTP_RATE_LIMIT=5, ROOMCAST_MAX_MESSAGE_BYTES=2048, ROOMCAST_MAX_BATCH_EVENTS=50, ROOMCAST_MAX_BATCH_BYTES=65536. */
  let tight: GatewayProcess;
  /** ROOMCAST_ALLOWED_TENANTS=acme. */
  let tenanted: GatewayProcess;
  let backend: string;
  const sockets: TestSocket[] = [];

  before(async () => {
    cluster = await startCluster({ replicas: 2 });
    [a, b] = cluster.gateways as [GatewayProcess, GatewayProcess];
    [tight, tenanted] = await Promise.all([
      cluster.addGateway({
        ROOMCAST_HTTP_RATE_LIMIT: "5",
        ROOMCAST_MAX_MESSAGE_BYTES: "2048",
        ROOMCAST_MAX_BATCH_EVENTS: "50",
        ROOMCAST_MAX_BATCH_BYTES: "65536",
      }),
      cluster.addGateway({ ROOMCAST_ALLOWED_TENANTS: "acme" }),
    ]);
    backend = await token({ sub: "backend", scope: "publish", envs: ["*"] });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
  });

  describe("POST /v1/publish", () => {
    it("publishes a batch: 202, one result per event in order, each channel's events in order and live to subscribers", async () => {
      const watcher = await connect(b.url, { token: await token({ sub: "u1", envs: ["dev"], scope: "env:read" }) });
      sockets.push(watcher);
      const seen = recordEvents(watcher);
      for (const channel of ["user:u1", "env:dev:logs"])
        assert.equal((await request(watcher, "subscribe", { channel })).ok, true);
      const events = Array.from({ length: 60 }, (_, i) => ({
        channel: i % 3 === 0 ? "env:dev:logs" : "user:u1",
        type: "n",
        data: { i },
        ...(i % 7 === 0 ? { priority: "high" } : {}),
      }));
      const answer = await batch(a.url, backend, { events });
      assert.equal(answer.status, 202, JSON.stringify(answer.body));
      const results = answer.body.results!;
      assert.equal(results.length, events.length);
      const byChannel = new Map<string, number[]>();
      results.forEach((r, i) =>
        byChannel.set(events[i]!.channel, [...(byChannel.get(events[i]!.channel) ?? []), ok(r).offset]),
      );
      assert.deepEqual(byChannel.get("env:dev:logs"), range(1, 20));
      assert.deepEqual(byChannel.get("user:u1"), range(1, 40));
      await waitUntil(
        () => (seen.get("user:u1")?.length ?? 0) === 40 && (seen.get("env:dev:logs")?.length ?? 0) === 20,
        5000,
        "the live events",
      );
      assert.deepEqual(
        seen.get("user:u1")!.map((e) => (e.data as { i: number }).i),
        events.flatMap((e) => (e.channel === "user:u1" ? [e.data.i] : [])),
      );
      const high = seen
        .get("env:dev:logs")!
        .filter((e) => e.priority === "high")
        .map((e) => (e.data as { i: number }).i);
      assert.deepEqual(high, [0, 21, 42]);
      const ids = results.map((r) => ok(r).id);
      assert.equal(new Set(ids).size, ids.length, "unique ids");
    });

    it("answers each bad event on its own (4400, 4404, 4403, 4413) and publishes the others", async () => {
      const dev = await token({ sub: "dev-backend", scope: "publish", envs: ["dev"] });
      const events: unknown[] = [
        { channel: "user:bad1", type: "ok", data: 1 },
        { channel: "no colon", type: "n", data: 1 },
        { channel: "nope:x", type: "n", data: 1 },
        { channel: "env:prod:status", type: "n", data: 1 },
        { channel: "user:bad1", type: "has space", data: 1 },
        { channel: "user:bad1", type: "n" },
        { channel: "user:bad1", type: "n", data: 1, extra: true },
        "not an object",
        { channel: "user:bad1", type: "big", data: "x".repeat(3000) },
        { channel: "env:dev:status", type: "ok", data: { fine: true } },
        { channel: "user:bad1", type: "ok", data: 2 },
      ];
      const answer = await batch(tight.url, dev, { events });
      assert.equal(answer.status, 202, JSON.stringify(answer.body));
      const r = answer.body.results!;
      assert.equal(r.length, events.length);
      assert.equal(ok(r[0]).offset, 1);
      failed(r[1], 4400, "bad_request");
      failed(r[2], 4404, "not_found");
      failed(r[3], 4403, "forbidden");
      assert.match(failed(r[4], 4400, "bad_request").message, /events\.4\.type/);
      assert.match(failed(r[5], 4400, "bad_request").message, /data/);
      failed(r[6], 4400, "bad_request");
      failed(r[7], 4400, "bad_request");
      assert.equal(failed(r[8], 4413, "too_large").limit, 2048);
      assert.equal(ok(r[9]).offset, 1);
      assert.equal(ok(r[10]).offset, 2, "events after refused ones still publish, in order");
    });

    it("refuses a malformed or oversized batch as a whole (400, 413), and needs scope publish (403)", async () => {
      for (const body of [
        {},
        { events: [] },
        { events: {} },
        [],
        { events: [{ channel: "user:x", type: "n", data: 1 }], more: 1 },
        "null",
      ]) {
        const answer = await batch(a.url, backend, body);
        assert.equal(answer.status, 400, JSON.stringify({ body, answer }));
        assert.equal(answer.body.error!.code, 4400);
      }
      // (On the gateway limited to 5 requests a second, each with a token of its own: refusals count.)
      const tooMany = await batch(tight.url, await token({ sub: "many", scope: "publish" }), {
        events: Array.from({ length: 51 }, (_, i) => ({ channel: "user:x", type: "n", data: i })),
      });
      assert.equal(tooMany.status, 400);
      assert.equal(tooMany.body.error!.limit, 50);
      const tooBig = await batch(tight.url, await token({ sub: "big", scope: "publish" }), {
        events: Array.from({ length: 40 }, (_, i) => ({ channel: "user:x", type: "n", data: "y".repeat(2000), i })),
      });
      assert.equal(tooBig.status, 413, JSON.stringify(tooBig.body));
      assert.equal(tooBig.body.error!.code, 4413);
      const reader = await batch(a.url, await token({ sub: "reader", scope: "env:read", envs: ["*"] }), {
        events: [{ channel: "user:x", type: "n", data: 1 }],
      });
      assert.equal(reader.status, 403);
      assert.equal(reader.body.error!.code, 4403);
      const anonymous = await fetch(`${a.url}/v1/publish`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      assert.equal(anonymous.status, 401);
    });

    it("honours idempotency keys per event: a repeated batch returns the first answers and publishes nothing twice", async () => {
      const events = Array.from({ length: 10 }, (_, i) => ({
        channel: "user:idem",
        type: "n",
        data: { i },
        idempotencyKey: `k${i}`,
      }));
      const first = await batch(a.url, backend, { events });
      const again = await batch(b.url, backend, {
        events: [...events, { channel: "user:idem", type: "n", data: { i: 10 } }],
      });
      assert.equal(first.status, 202);
      assert.equal(again.status, 202);
      assert.deepEqual(again.body.results!.slice(0, 10), first.body.results);
      assert.equal(ok(again.body.results![10]).offset, 11);
      const history = await httpGet(`${a.url}/v1/channels/user:idem/history?limit=100`, await token({ sub: "idem" }));
      assert.deepEqual(
        (history.body.events as ChannelEvent[]).map((e) => e.offset),
        range(1, 11),
      );
    });
  });

  describe("grants", () => {
    it("publishing to env: and job: channels needs the environment in the token's envs (* for all), single or batch", async () => {
      const devOnly = await token({ sub: "dev-only", scope: "publish", envs: ["dev"] });
      for (const [channel, status] of [
        ["env:prod:status", 403],
        ["env:dev:status", 202],
        ["user:anyone", 202],
      ] as const) {
        const res = await httpPublish(a.url, devOnly, channel, { type: "s", data: 1 });
        assert.equal(res.status, status, `${channel}: ${JSON.stringify(res.body)}`);
        if (status === 403) assert.equal((res.body.error as ErrorBody).code, 4403);
      }
      // Jobs: by the job's environment (a job record as the job API writes it); none: only "*".
      redisCommand(
        cluster.redis,
        "HSET",
        "rc:{job:jprodjob}:owner",
        "owner",
        "someone",
        "name",
        "sample.build",
        "envId",
        "prod",
      );
      redisCommand(
        cluster.redis,
        "HSET",
        "rc:{job:jdevjob}:owner",
        "owner",
        "someone",
        "name",
        "sample.build",
        "envId",
        "dev",
      );
      redisCommand(cluster.redis, "HSET", "rc:{job:jnoenvjob}:owner", "owner", "someone", "name", "sample.build");
      const answer = await batch(a.url, devOnly, {
        events: ["job:jprodjob", "job:jdevjob", "job:jnoenvjob", "job:jmissing"].map((channel) => ({
          channel,
          type: "log",
          data: {},
        })),
      });
      assert.equal(answer.status, 202);
      const r = answer.body.results!;
      failed(r[0], 4403, "forbidden");
      ok(r[1]);
      failed(r[2], 4403, "forbidden");
      failed(r[3], 4404, "not_found");
      const all = await batch(a.url, backend, {
        events: ["job:jprodjob", "job:jnoenvjob", "env:prod:status"].map((channel) => ({
          channel,
          type: "log",
          data: {},
        })),
      });
      for (const result of all.body.results!) ok(result);
    });

    it("checks the token's tenant on every /v1 route, as the socket handshake does", async () => {
      const other = { tenant: "globex" };
      const refusals = [
        await httpPublish(tenanted.url, await token({ sub: "p", scope: "publish", envs: ["*"], ...other }), "user:x", {
          type: "n",
          data: 1,
        }),
        await batch(tenanted.url, await token({ sub: "p", scope: "publish", envs: ["*"], ...other }), {
          events: [{ channel: "user:x", type: "n", data: 1 }],
        }),
        await httpGet(`${tenanted.url}/v1/stats`, await token({ sub: "ops", scope: "admin", ...other })),
        await httpGet(`${tenanted.url}/v1/channels/user:x/history`, await token({ sub: "x", ...other })),
        await (async () => {
          const res = await fetch(`${tenanted.url}/v1/users/victim/disconnect`, {
            method: "POST",
            headers: { authorization: `Bearer ${await token({ sub: "ops", scope: "admin", ...other })}` },
          });
          return { status: res.status, body: (await res.json()) as Record<string, unknown> };
        })(),
        await httpGet(`${tenanted.url}/v1/jobs/stats`, await token({ sub: "x", scope: "jobs:read" })),
      ];
      for (const [i, res] of refusals.entries()) {
        assert.equal(res.status, 403, `route ${i}: ${JSON.stringify(res.body)}`);
        assert.equal((res.body as { error: ErrorBody }).error.code, 4403);
      }
      const acme = await httpPublish(
        tenanted.url,
        await token({ sub: "p", scope: "publish", envs: ["*"], tenant: "acme" }),
        "user:x",
        { type: "n", data: 1 },
      );
      assert.equal(acme.status, 202);
      assert.equal(
        (await httpGet(`${tenanted.url}/v1/stats`, await token({ sub: "ops", scope: "admin", tenant: "acme" }))).status,
        200,
      );
    });
  });

  describe("HTTP rate limit defaults", () => {
    it("never throttles a publishing backend's successes: 5,000 events in batches and 5,000 as 32 concurrent single requests, all 2xx, in order", async () => {
      const service = await token({ sub: "log-shipper", scope: "publish", envs: ["*"] });
      const channels = ["env:ci:logs", "user:shipper"];
      let started = performance.now();
      for (let round = 0; round < 5; round++) {
        const events = Array.from({ length: 1000 }, (_, i) => ({
          channel: channels[i % 2]!,
          type: "line",
          data: { n: round * 1000 + i },
        }));
        const answer = await batch(round % 2 === 0 ? a.url : b.url, service, { events });
        assert.equal(answer.status, 202, JSON.stringify(answer.body).slice(0, 300));
        for (const r of answer.body.results!) ok(r);
      }
      const batchMs = performance.now() - started;
      started = performance.now();
      const single = "user:shipper-single";
      const statuses: number[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 32 }, async (_, worker) => {
          while (next < 5000) {
            const n = next++;
            const res = await httpPublish(worker % 2 === 0 ? a.url : b.url, service, single, {
              type: "line",
              data: { n },
            });
            statuses.push(res.status);
          }
        }),
      );
      const singleMs = performance.now() - started;
      console.log(
        `# 5,000 events in 5 batches: ${batchMs.toFixed(0)} ms (${((5000 / batchMs) * 1000).toFixed(0)}/s); 5,000 single requests, 32 in flight: ${singleMs.toFixed(0)} ms (${((5000 / singleMs) * 1000).toFixed(0)}/s)`,
      );
      assert.equal(statuses.length, 5000);
      assert.deepEqual([...new Set(statuses)], [202], "every single request accepted");
      const reader = await token({ sub: "shipper", envs: ["ci"], scope: "env:read" });
      for (const channel of channels) {
        const history = await httpGet(`${a.url}/v1/channels/${channel}/history?limit=1000`, reader);
        const events = history.body.events as ChannelEvent[];
        assert.equal(events.length, 1000);
        assert.equal(history.body.offset, 2500);
        // Each channel's events in publish order: n grows with the offset.
        const ns = events.map((e) => (e.data as { n: number }).n);
        assert.deepEqual(
          ns,
          [...ns].sort((x, y) => x - y),
        );
      }
      const singles = await httpGet(
        `${a.url}/v1/channels/${single}/history?limit=1`,
        await token({ sub: "shipper-single" }),
      );
      assert.equal(singles.body.offset, 5000);
    });

    it("counts a publishing backend's failures: a broken one is answered 429 once over the limit", async () => {
      const broken = await token({ sub: "broken-backend", scope: "publish", envs: ["dev"] });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++)
        statuses.push((await httpPublish(tight.url, broken, "env:prod:status", { type: "n", data: i })).status);
      assert.ok(
        statuses.slice(0, 5).every((s) => s === 403),
        statuses.join(","),
      );
      assert.ok(statuses.includes(429), `no 429 after its failures: ${statuses.join(",")}`);
      // Its successes still pass once the window is over.
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await httpPublish(tight.url, broken, "env:dev:status", { type: "n", data: 0 })).status, 202);
    });

    it("limits other tokens per token, and callers without a valid token (junk tokens included) per IP", async () => {
      const reader = await token({ sub: "hist-reader" });
      const reads = await Promise.all(
        Array.from({ length: 15 }, () => httpGet(`${tight.url}/v1/channels/user:hist-reader/history`, reader)),
      );
      const statuses = reads.map((r) => r.status);
      assert.ok(statuses.filter((s) => s === 200).length <= 10, statuses.join(","));
      assert.ok(statuses.includes(429), statuses.join(","));
      await new Promise((r) => setTimeout(r, 1100));
      const junk = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          httpPublish(tight.url, `junk-${i}-${Math.random()}`, "user:x", { type: "n", data: 0 }),
        ),
      );
      const junkStatuses = junk.map((r) => r.status);
      assert.ok(
        junkStatuses.every((s) => s === 401 || s === 429),
        junkStatuses.join(","),
      );
      assert.ok(
        junkStatuses.filter((s) => s === 429).length >= 20,
        `random junk tokens escaped the per-IP limit: ${junkStatuses.join(",")}`,
      );
    });
  });
});

/**
 * No request can make Redis or a replica carry a channel's whole history at once
 * (docs/protocol.md, "Limits"): a `since` in another epoch reads nothing (checked in Redis
 * first); a recovery larger than ROOMCAST_MAX_READ_BYTES is answered in part and the rest
 * follows as events, at the client's pace, every event once and in order; an HTTP history page
 * is bounded the same way; and a client that asks for history again and again while reading
 * nothing is cut as a slow consumer, with the replica's memory bounded.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import type { ChannelEvent, SubscribeOk } from "../../src/contracts/events.js";
import {
  connect,
  httpGet,
  recordEvents,
  request,
  token,
  waitUntil,
  type TestSocket,
  type SubscribeAnswer,
} from "../support/clients.js";
import { LIMITS_OFF, startCluster, type TestCluster } from "../support/cluster.js";
import type { GatewayProcess } from "../support/gateway-process.js";
import { RawClient } from "../support/raw-client.js";
import { metric, range } from "../support/util.js";

const CHANNEL = "env:big:logs";
const EVENTS = 1000;
const PAD = "p".repeat(3000);
const MAX_READ_BYTES = 524288;

/** Bytes every Redis process of the topology has sent to its clients so far. */
function redisOutputBytes(cluster: TestCluster): number {
  let total = 0;
  for (const port of cluster.redis.ports) {
    const info = spawnSync("redis-cli", ["-p", String(port), "INFO", "stats"], { encoding: "utf8" }).stdout;
    total += Number(/total_net_output_bytes:(\d+)/.exec(info)?.[1] ?? 0);
  }
  return total;
}

describe("bounded history reads", () => {
  let cluster: TestCluster;
  let gateway: GatewayProcess;
  let reader: string;
  let epoch: string;
  const sockets: TestSocket[] = [];
  const raws: RawClient[] = [];

  before(async () => {
    cluster = await startCluster({ replicas: 1, env: LIMITS_OFF });
    gateway = cluster.gateways[0]!;
    reader = await token({ sub: "reader", envs: ["big"], scope: "env:read" });
    const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
    // About 3 MB of history, in one batch.
    const res = await fetch(`${gateway.url}/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${publisher}`, "content-type": "application/json" },
      body: JSON.stringify({
        events: range(1, EVENTS).map((n) => ({ channel: CHANNEL, type: "line", data: { n, pad: PAD } })),
      }),
    });
    const body = (await res.json()) as { results: { offset: number; epoch: string }[] };
    assert.equal(res.status, 202);
    epoch = body.results[0]!.epoch;
  });
  after(async () => {
    for (const s of sockets) s.close();
    for (const r of raws) r.close();
    await cluster?.close();
  });

  it("a since in another epoch reads nothing from history: the answer is recovered: false, and Redis sent next to nothing", async () => {
    const socket = await connect(gateway.url, { token: reader });
    sockets.push(socket);
    const before = redisOutputBytes(cluster);
    for (let i = 0; i < 5; i++) {
      const answer = await request<SubscribeAnswer>(socket, "subscribe", {
        channel: CHANNEL,
        since: { offset: 1, epoch: "0123456789ab" },
      });
      assert.ok(answer.ok);
      assert.equal(answer.recovered, false);
      assert.deepEqual(answer.events, []);
      assert.equal(answer.offset, EVENTS);
      assert.equal((await request<{ ok: boolean }>(socket, "unsubscribe", { channel: CHANNEL })).ok, true);
    }
    const sent = redisOutputBytes(cluster) - before;
    console.log(
      `# 5 subscribes with a mismatched epoch: Redis sent ${sent} bytes (the history is ${EVENTS * PAD.length} bytes)`,
    );
    assert.ok(sent < 64 * 1024, `Redis sent ${sent} bytes for reads that must read nothing`);
  });

  it("a recovery larger than ROOMCAST_MAX_READ_BYTES: part in the answer, the rest as events, every event once, in order", async () => {
    const socket = await connect(gateway.url, { token: reader });
    sockets.push(socket);
    const seen = recordEvents(socket);
    let answer: (SubscribeOk & { ok: true }) | undefined;
    await new Promise<void>((resolve, reject) => {
      socket.emit(
        "subscribe",
        { channel: CHANNEL, since: { offset: 0, epoch } } as never,
        ((a: SubscribeAnswer) => {
          if (!a.ok) return reject(new Error(JSON.stringify(a)));
          answer = a;
          // The answer's events come before any later event: recorded in wire order.
          seen.set(CHANNEL, [...a.events, ...(seen.get(CHANNEL) ?? [])]);
          resolve();
        }) as never,
      );
    });
    assert.ok(answer);
    assert.equal(answer.recovered, true);
    const answerBytes = JSON.stringify(answer.events).length;
    assert.ok(
      answer.events.length > 0 && answer.events.length < EVENTS,
      `${answer.events.length} events in the answer`,
    );
    assert.ok(answerBytes <= MAX_READ_BYTES + 4096, `answer of ${answerBytes} bytes`);
    assert.equal(answer.offset, answer.events.at(-1)!.offset, "the answer's offset is where the events continue");
    await waitUntil(() => (seen.get(CHANNEL)?.length ?? 0) >= EVENTS, 10_000, "the rest of the recovery");
    assert.deepEqual(
      seen.get(CHANNEL)!.map((e: ChannelEvent) => e.offset),
      range(1, EVENTS),
    );
    console.log(
      `# recovery of ${EVENTS} events: ${answer.events.length} in the answer (${answerBytes} bytes), the rest as events`,
    );
  });

  it("an HTTP history page is bounded in bytes too", async () => {
    const page = await httpGet(`${gateway.url}/v1/channels/${CHANNEL}/history?since=0&limit=1000`, reader);
    assert.equal(page.status, 200);
    const events = page.body.events as ChannelEvent[];
    assert.ok(events.length > 0 && events.length < EVENTS, `${events.length} events`);
    assert.deepEqual(
      events.map((e) => e.offset),
      range(1, events.length),
    );
    assert.ok(JSON.stringify(events).length <= MAX_READ_BYTES + 4096);
  });

  it("a client that keeps asking for history and reads nothing is cut as a slow consumer; the replica's memory stays bounded", async () => {
    const rssBefore = await metric(gateway.url, "roomcast_process_resident_memory_bytes");
    const cutsBefore = await metric(gateway.url, "roomcast_slow_consumer_disconnects_total");
    const raw = await RawClient.open(gateway.url, reader);
    raws.push(raw);
    raw.pause();
    for (let i = 0; i < 30; i++)
      raw.ws.send(`42${i + 1}${JSON.stringify(["subscribe", { channel: CHANNEL, history: 1000 }])}`);
    const deadline = Date.now() + 30_000;
    while ((await metric(gateway.url, "roomcast_slow_consumer_disconnects_total")) === cutsBefore) {
      assert.ok(Date.now() < deadline, "the non-reading client was not cut");
      await new Promise((r) => setTimeout(r, 250));
    }
    const rssAfter = await metric(gateway.url, "roomcast_process_resident_memory_bytes");
    console.log(
      `# 30 history requests of about 3 MB each, never read: cut as a slow consumer; RSS ${(rssBefore / 2 ** 20).toFixed(1)} -> ${(rssAfter / 2 ** 20).toFixed(1)} MiB`,
    );
    assert.ok(rssAfter - rssBefore < 150 * 2 ** 20, "memory grew by more than 150 MiB");
    // Others are still served.
    const other = await connect(gateway.url, { token: reader });
    sockets.push(other);
    const answer = await request<SubscribeAnswer>(other, "subscribe", { channel: CHANNEL, history: 5 });
    assert.ok(answer.ok);
    assert.deepEqual(
      answer.events.map((e) => e.offset),
      range(EVENTS - 4, EVENTS),
    );
  });
});

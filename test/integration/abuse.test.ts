/**
 * A bounded abuse run: one client floods requests (reconnecting each time it is closed)
 * while quiet clients receive a steady event stream. The flooder is refused (4429) and
 * closed (`closing 4429`); the quiet clients lose nothing. Prints the quiet clients'
 * delivery latency without and with the flood (printed, never asserted).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";
import type { ChannelEvent } from "../../src/contracts/events.js";
import { connect, httpPublish, request, token, waitUntil, type TestSocket } from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";

const PHASE_MS = 2500;
const EVENTS_PER_SECOND = 40;
const FLOOD_FRAMES_PER_CONNECTION = 3000;

interface Received {
  event: ChannelEvent;
  at: number;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** One flooding connection: handshake, then requests as fast as the socket takes them, until closed. */
function floodOnce(
  url: string,
  bearer: string,
  stats: { frames: number; refusals: number; closings: number },
): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
    const done = () => resolve();
    ws.on("error", done);
    ws.on("close", done);
    ws.on("message", (raw) => {
      const text = raw.toString();
      if (text.startsWith("0")) ws.send(`40${JSON.stringify({ token: bearer })}`);
      else if (text.startsWith("40")) {
        for (let i = 0; i < FLOOD_FRAMES_PER_CONNECTION && ws.readyState === WebSocket.OPEN; i++) {
          ws.send(`42${i % 1000}${JSON.stringify(["subscribe", { channel: `user:flooder-${i}` }])}`);
          stats.frames++;
        }
      } else if (text.startsWith("43") && text.includes('"rate_limited"')) stats.refusals++;
      else if (text.startsWith('42["closing"')) {
        assert.match(text, /"code":4429,"reason":"rate_limited"/);
        stats.closings++;
      } else if (text === "2") ws.send("3");
    });
  });
}

describe("abuse: a request flood costs quiet clients nothing", () => {
  let cluster: TestCluster;
  const sockets: TestSocket[] = [];
  before(async () => {
    cluster = await startCluster({
      replicas: 1,
      env: { ROOMCAST_HTTP_RATE_LIMIT: "0", ROOMCAST_MAX_CONNECTIONS_PER_IP: "0" },
    });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
  });

  it("refuses and closes the flooder while quiet clients get every event", async () => {
    const url = cluster.gateways[0]!.url;
    const received: Received[][] = [];
    for (let i = 0; i < 5; i++) {
      const socket = await connect(url, { token: await token({ sub: "quiet" }) });
      sockets.push(socket);
      const list: Received[] = [];
      received.push(list);
      socket.on("event", (event) => list.push({ event, at: Date.now() }));
      assert.equal((await request(socket, "subscribe", { channel: "user:quiet" })).ok, true);
    }
    const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
    let published = 0;
    const publishFor = async (ms: number, phase: string) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const res = await httpPublish(url, publisher, "user:quiet", { type: phase, data: { n: ++published } });
        assert.equal(res.status, 202);
        await new Promise((r) => setTimeout(r, 1000 / EVENTS_PER_SECOND));
      }
    };

    await publishFor(PHASE_MS, "calm");
    const stats = { frames: 0, refusals: 0, closings: 0, connections: 0 };
    const flooder = await token({ sub: "flooder" });
    let flooding = true;
    const flood = (async () => {
      while (flooding) {
        stats.connections++;
        await floodOnce(url, flooder, stats);
      }
    })();
    await publishFor(PHASE_MS, "flood");
    flooding = false;
    await flood;

    await waitUntil(
      () => received.every((list) => list.length === published),
      10_000,
      "every quiet client to get every event",
    );
    for (const list of received) {
      assert.deepEqual(
        list.map((r) => r.event.offset),
        Array.from({ length: published }, (_, i) => i + 1),
      );
    }
    const latency = (phase: string) =>
      received.flatMap((list) => list.filter((r) => r.event.type === phase).map((r) => r.at - r.event.ts));
    const calm = latency("calm");
    const flooded = latency("flood");
    console.log(
      `abuse: quiet clients' delivery latency p50/p99/max: calm ${percentile(calm, 50)}/${percentile(calm, 99)}/${Math.max(...calm)} ms, ` +
        `under flood ${percentile(flooded, 50)}/${percentile(flooded, 99)}/${Math.max(...flooded)} ms; ` +
        `flooder: ${stats.connections} connections, ${stats.frames} frames sent, ${stats.refusals} refusals seen, ${stats.closings} closings`,
    );
    assert.ok(stats.refusals > 0, "the flooder was refused with rate_limited");
    assert.ok(stats.closings > 0, "the flooder was closed with closing 4429");
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
  });
});

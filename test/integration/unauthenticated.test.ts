/**
 * Callers without a token cannot take a replica down (docs/protocol.md, "Limits"): Engine.IO
 * sessions that have not completed the Socket.IO CONNECT are capped per IP (HTTP 429) and per
 * replica (HTTP 503) at the Engine.IO handshake, counted in metrics, and closed after
 * ROOMCAST_AUTH_TIMEOUT_S; authenticated connections do not count against those caps.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { connect, engineHandshake, token, waitUntil, type TestSocket } from "../support/clients.js";
import { LIMITS_OFF, startCluster, type TestCluster } from "../support/cluster.js";
import type { GatewayProcess } from "../support/gateway-process.js";
import { metric } from "../support/util.js";

/** Runs `count` jobs with at most `concurrency` at once. */
async function pool<T>(count: number, concurrency: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await job(i);
      }
    }),
  );
  return results;
}

describe("sessions before authentication", () => {
  let cluster: TestCluster;
  /** Default caps (100 per IP, 5000 per replica, 5 s). */
  let gateway: GatewayProcess;
  /** The default caps with 15 s to authenticate: the flood is over before any session times out. */
  let flooded: GatewayProcess;
  /** Behind a trusted proxy: 50 per replica, so that distinct forwarded addresses reach it. */
  let proxied: GatewayProcess;
  const sockets: TestSocket[] = [];

  before(async () => {
    // The connection quotas are off: these tests open many sessions from one address on purpose.
    // The cap under test stays at its default (LIMITS_OFF turns it off for the other suites).
    cluster = await startCluster({ replicas: 0, env: { ...LIMITS_OFF, ROOMCAST_MAX_UNAUTHENTICATED_PER_IP: "100" } });
    [gateway, flooded, proxied] = await Promise.all([
      cluster.addGateway(),
      cluster.addGateway({ ROOMCAST_AUTH_TIMEOUT_S: "15" }),
      cluster.addGateway({ ROOMCAST_TRUST_PROXY: "1", ROOMCAST_MAX_UNAUTHENTICATED_PER_NODE: "50" }),
    ]);
  });
  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
  });

  it("refuses a flood of token-less polling sessions from one IP past 100 with HTTP 429, memory bounded, and closes the ones it let in after the timeout", async () => {
    const gateway = flooded;
    const rssBefore = await metric(gateway.url, "roomcast_process_resident_memory_bytes");
    const FLOOD = 5000;
    const floodStarted = Date.now();
    const answers = await pool(FLOOD, 50, () => engineHandshake(gateway.url));
    const floodMs = Date.now() - floodStarted;
    assert.ok(
      floodMs < 15_000,
      `the flood took ${floodMs} ms, longer than the 15 s timeout: the count below would not hold`,
    );
    const opened = answers.filter((a) => a.status === 200).length;
    const refused = answers.filter((a) => a.status === 429);
    assert.equal(opened, 100, `sessions let in: ${opened}`);
    assert.equal(refused.length, FLOOD - 100);
    const error = (refused[0]!.body as { error: { code: number; reason: string } }).error;
    assert.equal(error.code, 4429);
    assert.equal(error.reason, "too_many_connections");
    assert.equal(await metric(gateway.url, "roomcast_unauthenticated_sessions"), 100);
    assert.equal(
      await metric(gateway.url, 'roomcast_handshake_gate_refusals_total{reason="unauthenticated_ip"'),
      FLOOD - 100,
    );
    const rssAfter = await metric(gateway.url, "roomcast_process_resident_memory_bytes");
    console.log(
      `# ${FLOOD} token-less handshakes: ${opened} sessions let in, ${refused.length} refused (429); RSS ${(rssBefore / 2 ** 20).toFixed(1)} -> ${(rssAfter / 2 ** 20).toFixed(1)} MiB`,
    );
    // Closed after ROOMCAST_AUTH_TIMEOUT_S (15 s here) without a CONNECT: room again.
    const started = Date.now();
    let pending = 100;
    while (pending > 0) {
      assert.ok(
        Date.now() - floodStarted < 25_000,
        `still ${pending} unauthenticated sessions 25 s after the flood began`,
      );
      await new Promise((r) => setTimeout(r, 250));
      pending = await metric(gateway.url, "roomcast_unauthenticated_sessions");
    }
    console.log(`# the 100 sessions were closed ${Date.now() - started} ms after the flood`);
    assert.equal((await engineHandshake(gateway.url)).status, 200);
  });

  it("closes raw WebSocket sessions that never send CONNECT after 5 s, while a client that authenticates is served", async () => {
    const raws = await Promise.all(
      Array.from({ length: 30 }, async () => {
        const ws = new WebSocket(`${gateway.url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`);
        const state = { open: false, closedAt: 0 };
        ws.on("open", () => (state.open = true));
        ws.on("message", (raw: Buffer) => raw.toString() === "2" && ws.send("3"));
        ws.on("close", () => (state.closedAt = Date.now()));
        ws.on("error", () => undefined);
        await waitUntil(() => state.open || state.closedAt > 0, 5000, "the WebSocket");
        return state;
      }),
    );
    const opened = Date.now();
    assert.ok(raws.every((r) => r.open));
    // A real client meanwhile: it authenticates, so it does not count and is not closed.
    const client = await connect(gateway.url, { token: await token({ sub: "real" }) });
    sockets.push(client);
    await waitUntil(() => raws.every((r) => r.closedAt > 0), 10_000, "the server to close the silent sessions");
    const after = Math.max(...raws.map((r) => r.closedAt)) - opened;
    console.log(`# 30 silent WebSocket sessions closed within ${after} ms`);
    assert.ok(after >= 4000, `closed before the 5 s timeout: ${after} ms`);
    assert.equal(client.connected, true);
    assert.equal(await metric(gateway.url, "roomcast_unauthenticated_sessions"), 0);
  });

  it("does not count authenticated connections: 150 from one IP connect", async () => {
    const bearer = await token({ sub: "many" });
    const clients = await pool(150, 20, () => connect(gateway.url, { token: bearer }));
    sockets.push(...clients);
    assert.ok(clients.every((c) => c.connected));
    assert.equal(await metric(gateway.url, "roomcast_unauthenticated_sessions"), 0);
    for (const c of clients) c.close();
  });

  it("caps them per replica with HTTP 503 (distinct addresses behind a trusted proxy)", async () => {
    const answers = await pool(80, 10, (i) =>
      engineHandshake(proxied.url, { headers: { "x-forwarded-for": `198.51.100.${i + 1}` } }),
    );
    const statuses = answers.map((a) => a.status);
    assert.equal(statuses.filter((s) => s === 200).length, 50, statuses.join(","));
    assert.equal(statuses.filter((s) => s === 503).length, 30);
    const refusal = answers.find((a) => a.status === 503)!.body as { error: { code: number; reason: string } };
    assert.equal(refusal.error.reason, "too_many_connections");
    assert.equal(await metric(proxied.url, 'roomcast_handshake_gate_refusals_total{reason="unauthenticated_node"'), 30);
  });
});

/**
 * Moving clients away on purpose and surviving a Redis outage (docs/protocol.md, "Requests", "Deliveries", "HTTP API"
 * and 7), with real gateway processes:
 * - drain: SIGTERM turns a replica unready at once, refuses new sessions with HTTP 503 at the
 *   Engine.IO handshake, sends each client `closing 4503 draining` at a random moment within
 *   ROOMCAST_DRAIN_S and closes its transport (`transport close`: a stock client reconnects by
 *   itself), and the process exits 0; the clients reconnect to another replica, resubscribe
 *   with `since` and end up with every event exactly once, in order, while publishing never stops;
 * - admin kick: POST /v1/users/:id/disconnect ends that user's connections on every replica
 *   with `closing 4403 kicked`, and nobody else's;
 * - slow consumers, over a raw WebSocket that stops reading: `closing 4008 slow_consumer` on
 *   a reliable channel, `lag` and the newest state on a conflating one, and a conflating
 *   subscription paused and resumed meanwhile that still delivers afterwards;
 * - a Redis outage (single redis-server only): unready, 503 and 4503 while it is away (new
 *   sessions refused with HTTP 503, connected clients kept while it is shorter than
 *   ROOMCAST_REDIS_SILENT_S), ready
 *   again by itself, and a live subscription whose history was lost ends with `unsubscribed
 *   4503 history_lost`.
 *
 * The connection quotas and request rate limits are off (0): these tests open many
 * connections from one IP and publish as fast as they can; they are not about those limits.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { after, before, describe, it } from "node:test";
import { startEmbeddedRedis, type EmbeddedRedis } from "../../src/cluster/embedded-redis.js";
import { LISTEN_BACKLOG } from "../../src/gateway/listen-backlog.js";
import type { ChannelEvent, Closing, Lag, SubscribeOk, Unsubscribed } from "../../src/contracts/events.js";
import {
  connect,
  engineHandshake,
  httpGet,
  httpPublish,
  recordEvents,
  request,
  token,
  waitUntil,
  type TestSocket,
  type SubscribeAnswer,
} from "../support/clients.js";
import { LIMITS_OFF, startCluster, TOPOLOGY, type TestCluster } from "../support/cluster.js";
import type { GatewayProcess } from "../support/gateway-process.js";
import { RawClient } from "../support/raw-client.js";
import { range, sleep, waitReadyz } from "../support/util.js";

function offsets(events: readonly { offset: number }[]): number[] {
  return events.map((e) => e.offset);
}

async function subscribe(socket: TestSocket, payload: Record<string, unknown>): Promise<SubscribeOk & { ok: true }> {
  const answer = await request<SubscribeAnswer>(socket, "subscribe", payload);
  assert.equal(answer.ok, true, `subscribe failed: ${JSON.stringify(answer)}`);
  return answer as SubscribeOk & { ok: true };
}

/** Subscribes; `onAnswer` runs in the ack callback, in wire order with the `event` listeners. */
function subscribeInWireOrder(
  socket: TestSocket,
  payload: Record<string, unknown>,
  onAnswer: (answer: SubscribeOk & { ok: true }) => void,
  timeoutMs = 5000,
): Promise<SubscribeOk & { ok: true }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to subscribe within ${timeoutMs} ms`)), timeoutMs);
    socket.emit(
      "subscribe",
      payload as never,
      ((answer: SubscribeAnswer) => {
        clearTimeout(timer);
        if (!answer.ok) {
          reject(new Error(`subscribe failed: ${JSON.stringify(answer)}`));
          return;
        }
        onAnswer(answer);
        resolve(answer);
      }) as never,
    );
  });
}

async function httpPost(url: string, bearer?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { method: "POST", headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function alive(gateway: GatewayProcess): boolean {
  return gateway.process.exitCode === null && gateway.process.signalCode === null;
}

describe("drain, admin kick and slow consumers", () => {
  let cluster: TestCluster;
  /** Default settings (ROOMCAST_DRAIN_S 10). */
  let b: GatewayProcess;
  let c: GatewayProcess;
  /** ROOMCAST_DRAIN_S=2: the one the drain test stops. */
  let a: GatewayProcess;
  /** Small slow-consumer thresholds, LOG_LEVEL=info (it logs each slow-consumer disconnect). */
  let slow: GatewayProcess;
  let publisher: string;
  const sockets: TestSocket[] = [];
  const raws: RawClient[] = [];

  before(async () => {
    cluster = await startCluster({ replicas: 2, env: LIMITS_OFF });
    [b, c] = cluster.gateways as [GatewayProcess, GatewayProcess];
    a = await cluster.addGateway({ ROOMCAST_DRAIN_S: "2" });
    slow = await cluster.addGateway({
      ROOMCAST_SLOW_CONSUMER_BYTES: "65536",
      ROOMCAST_SLOW_CONSUMER_PACKETS: "200",
      LOG_LEVEL: "info",
    });
    publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
  });

  after(async () => {
    for (const s of sockets) s.close();
    for (const r of raws) r.close();
    await cluster?.close();
  });

  it("listens with a backlog deep enough for a lost replica's clients to come back at once (not Node's 511)", async () => {
    // For a listening socket, ss reports the backlog as Send-Q; the kernel caps it at somaxconn.
    const somaxconn = Number(readFileSync("/proc/sys/net/core/somaxconn", "utf8"));
    const listing = execFileSync("ss", ["-ltnH", `sport = :${b.port}`], { encoding: "utf8" });
    const backlog = Number(listing.trim().split(/\s+/)[2]);
    assert.equal(backlog, Math.min(LISTEN_BACKLOG, somaxconn), listing);
  });

  it("drain on SIGTERM: unready at once, HTTP 503 to new sessions, spread closings and transport closes, every client recovers on another replica, exit 0", async () => {
    const channel = "user:drainer";
    const bearer = await token({ sub: "drainer" });

    interface Tracked {
      home: "A" | "B";
      /** Every event this client has, in wire order, answers of resubscriptions included. */
      events: ChannelEvent[];
      start: { offset: number; epoch: string };
      /** The notice, when it came, and how many events the client had then. */
      closing?: Closing & { at: number; had: number };
      closingBeforeDisconnect?: boolean;
      disconnectReason?: string;
      resubscribed?: SubscribeOk & { ok: true };
      moveFailed?: string;
    }
    const tracked: Tracked[] = [];

    const open = async (gateway: GatewayProcess, home: "A" | "B") => {
      const socket = await connect(gateway.url, { token: bearer });
      sockets.push(socket);
      const t: Tracked = { home, events: [], start: { offset: 0, epoch: "" } };
      socket.on("event", (e) => t.events.push(e));
      socket.on("closing", (notice) => {
        t.closing = { ...notice, at: performance.now(), had: t.events.length };
      });
      socket.on("disconnect", (reason) => {
        // The test's own close at the end is not a reason to move.
        if (reason === "io client disconnect") return;
        t.closingBeforeDisconnect = t.closing !== undefined;
        t.disconnectReason = reason;
        // Like a client: wait retryAfterMs, connect to another replica, resubscribe with `since`.
        void (async () => {
          await sleep(t.closing?.retryAfterMs ?? 0);
          const next = await connect(b.url, { token: bearer });
          sockets.push(next);
          next.on("event", (e) => t.events.push(e));
          const last = t.events.at(-1) ?? t.start;
          // The answer's events precede every later live event: taken in the ack callback
          // itself (an await would resume after events that came in the same read).
          const answer = await subscribeInWireOrder(
            next,
            { channel, since: { offset: last.offset, epoch: last.epoch } },
            (ok) => t.events.push(...ok.events),
          );
          t.resubscribed = answer;
        })().catch((err: unknown) => (t.moveFailed = String(err)));
      });
      const answer = await subscribe(socket, { channel });
      t.start = { offset: answer.offset, epoch: answer.epoch };
      tracked.push(t);
    };
    for (let i = 0; i < 20; i++) await open(a, "A");
    for (let i = 0; i < 3; i++) await open(b, "B");
    const onA = tracked.filter((t) => t.home === "A");
    assert.ok(
      tracked.every((t) => t.start.offset === 0),
      "the channel is fresh",
    );

    // One publisher through B's HTTP API, for the whole test.
    const ids: string[] = [];
    const refusals: string[] = [];
    let publishing = true;
    const background = (async () => {
      while (publishing) {
        const res = await httpPublish(b.url, publisher, channel, { type: "n", data: { n: ids.length + 1 } });
        if (res.status !== 202 || res.body.offset !== ids.length + 1)
          refusals.push(`${res.status} ${JSON.stringify(res.body)}`);
        else ids.push(res.body.id as string);
        await sleep(3);
      }
    })();
    try {
      await waitUntil(
        () => ids.length >= 20 && tracked.every((t) => t.events.length >= 10),
        10_000,
        "the first events everywhere",
      );

      const exited = a.stop();
      // Unready at once, while the process still runs (the drain takes up to 2 s).
      await waitReadyz(a.url, 503, 1000);
      assert.ok(alive(a), "A exited before its drain");
      const refusal = await engineHandshake(a.url);
      assert.equal(refusal.status, 503, JSON.stringify(refusal));
      assert.equal((refusal.body as { error: { code: number; reason: string } }).error.code, 4503);
      assert.equal((refusal.body as { error: { code: number; reason: string } }).error.reason, "unavailable");

      await waitUntil(
        () => onA.every((t) => t.resubscribed !== undefined || t.moveFailed !== undefined),
        15_000,
        "every client of A to move to B and resubscribe",
      );
      assert.deepEqual(
        onA.flatMap((t) => t.moveFailed ?? []),
        [],
        "reconnecting to B failed",
      );
      assert.equal(await exited, 0, `A's exit code (output: ${a.output()})`);

      // Publishing goes on after every client moved, then stops.
      const movedAt = ids.length;
      await waitUntil(() => ids.length >= movedAt + 20, 10_000, "events after the move");
    } finally {
      publishing = false;
      await background;
    }
    assert.deepEqual(refusals, [], "publishes through B were refused or out of order");
    const total = ids.length;
    await waitUntil(() => tracked.every((t) => t.events.length >= total), 10_000, "every client to have every event");
    await sleep(100);

    for (const [i, t] of onA.entries()) {
      assert.ok(t.closing, `client ${i} of A got no closing`);
      assert.equal(t.closingBeforeDisconnect, true, `client ${i}: closing did not come before the disconnect`);
      assert.equal(t.closing.code, 4503);
      assert.equal(t.closing.reason, "draining");
      // Ended at the transport level: a Socket.IO disconnect ("io server disconnect") would stop a stock client.
      assert.equal(t.disconnectReason, "transport close", `client ${i}`);
      assert.equal(typeof t.closing.retryAfterMs, "number");
      assert.ok(t.closing.retryAfterMs >= 0, `retryAfterMs ${t.closing.retryAfterMs}`);
      assert.equal(t.resubscribed!.recovered, true, `client ${i} was not recovered on B`);
    }
    const times = onA.map((t) => t.closing!.at);
    assert.ok(Math.max(...times) - Math.min(...times) > 0, "every closing came at the same moment");
    // Spread over the drain, not sent in one go: events kept coming in between the closings.
    const had = onA.map((t) => t.closing!.had);
    assert.ok(Math.max(...had) > Math.min(...had), `every client of A was closed after the same ${had[0]} events`);
    for (const t of tracked.filter((x) => x.home === "B"))
      assert.equal(t.closing, undefined, "a client of B was closed");

    for (const [i, t] of tracked.entries()) {
      assert.deepEqual(
        offsets(t.events),
        range(1, total),
        `client ${i} (${t.home}): every event exactly once, in order`,
      );
      assert.deepEqual(
        t.events.map((e) => e.id),
        ids,
        `client ${i} (${t.home}): the published ids`,
      );
    }
  });

  it("admin kick: POST /v1/users/mallory/disconnect ends mallory's connections on every replica with closing 4403 kicked, and nobody else's", async () => {
    const mallory = await token({ sub: "mallory" });
    const alice = await token({ sub: "alice" });
    interface Tracked {
      who: string;
      socket: TestSocket;
      closings: Closing[];
      disconnected: boolean;
    }
    const all: Tracked[] = [];
    const open = async (gateway: GatewayProcess, who: string, bearer: string) => {
      const socket = await connect(gateway.url, { token: bearer });
      sockets.push(socket);
      const t: Tracked = { who, socket, closings: [], disconnected: false };
      socket.on("closing", (notice) => t.closings.push(notice));
      socket.on("disconnect", () => (t.disconnected = true));
      all.push(t);
    };
    await open(b, "mallory", mallory);
    await open(b, "mallory", mallory);
    await open(c, "mallory", mallory);
    await open(b, "alice", alice);
    await open(c, "alice", alice);
    const malloryConnections = all.filter((t) => t.who === "mallory");
    const aliceConnections = all.filter((t) => t.who === "alice");
    const url = `${b.url}/v1/users/mallory/disconnect`;

    const unauthenticated = await httpPost(url);
    assert.equal(unauthenticated.status, 401);
    assert.equal((unauthenticated.body.error as { code: number }).code, 4401, JSON.stringify(unauthenticated.body));
    const notAdmin = await httpPost(url, await token({ sub: "backend", scope: "publish", envs: ["*"] }));
    assert.equal(notAdmin.status, 403);
    assert.deepEqual(
      {
        code: (notAdmin.body.error as { code: number }).code,
        reason: (notAdmin.body.error as { reason: string }).reason,
      },
      { code: 4403, reason: "forbidden" },
      JSON.stringify(notAdmin.body),
    );
    // A round trip on every connection: a kick would have arrived before its answer.
    for (const t of all) await subscribe(t.socket, { channel: `user:${t.who}` });
    assert.ok(
      all.every((t) => t.socket.connected && t.closings.length === 0),
      "a refused kick disconnected someone",
    );

    const admin = await token({ sub: "ops", scope: "admin" });
    const nobody = await httpPost(`${c.url}/v1/users/nobody-here/disconnect`, admin);
    assert.equal(nobody.status, 200, JSON.stringify(nobody.body));
    assert.deepEqual(nobody.body, { userId: "nobody-here", disconnected: 0 });

    const kicked = await httpPost(url, admin);
    assert.equal(kicked.status, 200, JSON.stringify(kicked.body));
    assert.deepEqual(kicked.body, { userId: "mallory", disconnected: malloryConnections.length });
    await waitUntil(() => malloryConnections.every((t) => t.disconnected), 5000, "every mallory connection to end");
    for (const t of malloryConnections) {
      assert.deepEqual(t.closings, [{ code: 4403, reason: "kicked", retryAfterMs: 0 }]);
      assert.equal(t.socket.connected, false);
    }

    // Alice is untouched, and still served on both replicas.
    const seen = aliceConnections.map((t) => recordEvents(t.socket));
    const published = await httpPublish(b.url, publisher, "user:alice", { type: "hello", data: {} });
    assert.equal(published.status, 202);
    await waitUntil(
      () => seen.every((s) => (s.get("user:alice")?.length ?? 0) === 1),
      5000,
      "alice's event on both replicas",
    );
    for (const t of aliceConnections) {
      assert.equal(t.socket.connected, true);
      assert.equal(t.disconnected, false);
      assert.deepEqual(t.closings, []);
    }
  });

  it("slow consumer on a reliable channel: a client that stops reading gets closing 4008 slow_consumer and is cut, the others get everything", async () => {
    const channel = "user:slow";
    const bearer = await token({ sub: "slow" });
    const raw = await RawClient.open(slow.url, bearer);
    raws.push(raw);
    const answer = await raw.request<{ ok: boolean; offset: number }>("subscribe", { channel });
    assert.equal(answer.ok, true, JSON.stringify(answer));
    assert.equal(answer.offset, 0);
    const normal = await connect(slow.url, { token: bearer });
    sockets.push(normal);
    const seen = recordEvents(normal);
    const normalClosings: Closing[] = [];
    normal.on("closing", (notice) => normalClosings.push(notice));
    await subscribe(normal, { channel });

    raw.pause();
    const pad = "x".repeat(8192);
    // Bounded: 4000 events of 8 KiB (32 MiB) are far more than the kernel's socket buffers
    // (about 4 MiB here) plus 200 packets.
    const MAX_EVENTS = 4000;
    const cut = () => slow.output().includes("slow consumer disconnected");
    let published = 0;
    while (!cut() && published < MAX_EVENTS) {
      const res = await httpPublish(slow.url, publisher, channel, { type: "big", data: { n: published + 1, pad } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      published++;
      // Let the well-behaved client read as it goes.
      if (published % 50 === 0)
        await waitUntil(
          () => (seen.get(channel)?.length ?? 0) >= published - 50,
          10_000,
          "the normal client to keep up",
        );
    }
    assert.ok(cut(), `the stalled client was not disconnected after ${published} events of 8 KiB`);
    const atCut = published;
    // The stalled connection is gone from the channel: later events are not for it.
    for (let i = 0; i < 5; i++) {
      const res = await httpPublish(slow.url, publisher, channel, { type: "big", data: { n: ++published, pad } });
      assert.equal(res.status, 202);
    }
    await waitUntil(() => (seen.get(channel)?.length ?? 0) >= published, 10_000, "every event on the normal client");
    await sleep(100);
    assert.deepEqual(normalClosings, [], "the normal client was closed");
    assert.equal(normal.connected, true);
    assert.deepEqual(
      offsets(seen.get(channel)!),
      range(1, published),
      "the normal client got every event once, in order",
    );

    // Reading again, the stalled client finds its backlog, then the notice, then the end.
    raw.resume();
    await waitUntil(() => raw.closed, 10_000, "the server to close the stalled client's WebSocket");
    const events = raw.events<ChannelEvent>("event");
    const closings = raw.events<Closing>("closing");
    assert.equal(closings.length, 1, JSON.stringify(closings));
    assert.equal(closings[0]!.code, 4008);
    assert.equal(closings[0]!.reason, "slow_consumer");
    assert.ok(closings[0]!.retryAfterMs >= 0);
    const closingAt = raw.packets.findIndex((p) => p.kind === "event" && p.name === "closing");
    assert.ok(
      raw.packets.slice(closingAt + 1).every((p) => p.kind === "disconnect"),
      "something came after closing other than the DISCONNECT packet",
    );
    assert.ok(events.length < atCut, `the stalled client got ${events.length} of ${atCut} events before being cut`);
    assert.deepEqual(offsets(events), range(1, events.length), "what it got came in order, without gaps");
  });

  it("slow consumer on a conflating channel (env:<id>:status): lag, then only the newest state, and the connection stays", async () => {
    const channel = "env:e1:status";
    const bearer = await token({ sub: "watcher", envs: ["e1"], scope: "env:read" });
    const raw = await RawClient.open(slow.url, bearer);
    raws.push(raw);
    const answer = await raw.request<{ ok: boolean; offset: number }>("subscribe", { channel });
    assert.equal(answer.ok, true, JSON.stringify(answer));
    const start = answer.offset;
    const normal = await connect(slow.url, { token: bearer });
    sockets.push(normal);
    const seen = recordEvents(normal);
    await subscribe(normal, { channel });

    raw.pause();
    // The server holds back only once the kernel's socket buffers are full (about 4 MiB here)
    // and then 200 packets: 24 MiB is far more.
    const pad = "s".repeat(32 * 1024);
    const COUNT = 768;
    for (let i = 1; i <= COUNT; i++) {
      const res = await httpPublish(slow.url, publisher, channel, {
        type: "status",
        data: { n: i, status: "running", pad },
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      if (i % 50 === 0)
        await waitUntil(() => (seen.get(channel)?.length ?? 0) >= i - 50, 10_000, "the normal client to keep up");
    }
    const last = start + COUNT;
    await waitUntil(() => (seen.get(channel)?.length ?? 0) >= COUNT, 10_000, "every status on the normal client");

    raw.resume();
    await waitUntil(
      () => raw.closed || raw.events<ChannelEvent>("event").some((e) => e.offset === last),
      15_000,
      "the newest status on the stalled client",
    );
    assert.equal(raw.closed, false, `the stalled client was disconnected: ${JSON.stringify(raw.events("closing"))}`);
    await sleep(200);
    const lags = raw.events<Lag>("lag");
    assert.equal(lags.length, 1, `lag notices: ${JSON.stringify(lags)}`);
    const lag = lags[0]!;
    assert.equal(lag.channel, channel);
    assert.ok(lag.skipped > 0, `skipped ${lag.skipped}`);
    // The last offset skipped: the newest state that follows is lag.offset + 1.
    assert.equal(lag.offset, last - 1);
    // Wire order: the backlog it had, `lag`, then the newest state only.
    const sequence = raw.packets.filter((p) => p.kind === "event" && (p.name === "event" || p.name === "lag"));
    const lagAt = sequence.findIndex((p) => (p as { name: string }).name === "lag");
    const before = sequence.slice(0, lagAt).map((p) => (p as { data: ChannelEvent }).data);
    const afterLag = sequence.slice(lagAt + 1).map((p) => (p as { data: ChannelEvent }).data);
    assert.deepEqual(
      offsets(before),
      range(start + 1, start + before.length),
      "the backlog came in order, without gaps",
    );
    assert.deepEqual(offsets(afterLag), [last], "after lag, only the newest status");
    assert.equal((afterLag[0]!.data as { n: number }).n, COUNT);
    assert.equal(lag.skipped, last - start - before.length - 1, "skipped counts exactly the events it did not get");
    assert.deepEqual(raw.events("closing"), []);
    assert.equal(raw.closed, false, "the stalled client was disconnected");

    // It keeps receiving, without gaps, now that it reads.
    const res = await httpPublish(slow.url, publisher, channel, {
      type: "status",
      data: { n: COUNT + 1, status: "idle" },
    });
    assert.equal(res.status, 202);
    await waitUntil(
      () => raw.events<ChannelEvent>("event").some((e) => e.offset === last + 1),
      5000,
      "the next status",
    );
    assert.equal(raw.events<Lag>("lag").length, 1);
  });
  it("conflating channel: a subscription paused while its newest state is held back for a slow client replays on resume, then delivers live again", async () => {
    const channel = "env:e2:status";
    const bearer = await token({ sub: "watcher", envs: ["e2"], scope: "env:read" });
    const raw = await RawClient.open(slow.url, bearer);
    raws.push(raw);
    const answer = await raw.request<{ ok: boolean; offset: number }>("subscribe", { channel });
    assert.equal(answer.ok, true, JSON.stringify(answer));
    assert.equal(answer.offset, 0);
    const normal = await connect(slow.url, { token: bearer });
    sockets.push(normal);
    const seen = recordEvents(normal);
    await subscribe(normal, { channel });

    raw.pause();
    const pad = "s".repeat(32 * 1024);
    const COUNT = 768;
    for (let i = 1; i <= COUNT; i++) {
      const res = await httpPublish(slow.url, publisher, channel, { type: "status", data: { n: i, pad } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      if (i % 50 === 0)
        await waitUntil(() => (seen.get(channel)?.length ?? 0) >= i - 50, 10_000, "the normal client to keep up");
    }
    await waitUntil(() => (seen.get(channel)?.length ?? 0) >= COUNT, 10_000, "every status on the normal client");
    // Still stalled, the client pauses the subscription: the server reads the request at once
    // (its answer waits behind the backlog), so the held-back state is never flushed.
    const paused = raw.request<{ ok: boolean; paused: boolean }>("control", { channel, action: "pause" }, 15_000);
    await sleep(200);
    raw.resume();
    assert.equal((await paused).ok, true);
    // Read the backlog; the server notices that the client keeps up again.
    await sleep(300);
    const resumed = await raw.request<{ ok: boolean; paused: boolean; replayed?: number }>("control", {
      channel,
      action: "resume",
    });
    assert.equal(resumed.ok, true, JSON.stringify(resumed));
    await waitUntil(
      () => raw.closed || raw.events<ChannelEvent>("event").some((e) => e.offset === COUNT),
      10_000,
      "the replay up to the newest status",
    );
    const res = await httpPublish(slow.url, publisher, channel, { type: "status", data: { n: COUNT + 1 } });
    assert.equal(res.status, 202);
    await waitUntil(
      () => raw.closed || raw.events<ChannelEvent>("event").some((e) => e.offset === COUNT + 1),
      5000,
      "the status published after the resume",
    );
    await sleep(100);
    // The resume replayed from history what the backlog lacked: every state once, in order,
    // nothing held back delivered late, nothing live swallowed.
    assert.deepEqual(offsets(raw.events<ChannelEvent>("event")), range(1, COUNT + 1));
    assert.deepEqual(raw.events("lag"), []);
    assert.deepEqual(raw.events("closing"), []);
    assert.equal(raw.closed, false);
  });
});

describe(
  "Redis outage (single redis-server)",
  {
    skip:
      TOPOLOGY === "cluster"
        ? "restarts one redis-server on the same port; runs without ROOMCAST_TEST_REDIS=cluster"
        : false,
  },
  () => {
    let cluster: TestCluster;
    let restarted: EmbeddedRedis | undefined;
    const sockets: TestSocket[] = [];

    before(async () => {
      cluster = await startCluster({ replicas: 2, env: LIMITS_OFF });
    });
    after(async () => {
      for (const s of sockets) s.close();
      await cluster?.close();
      await restarted?.stop();
    });

    it("refuses with 503/4503 while Redis is away, turns ready again by itself, ends live subscriptions with history_lost and serves the new epoch", async () => {
      const [a, b] = cluster.gateways as [GatewayProcess, GatewayProcess];
      const channel = "env:e1:status";
      const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
      const watcherToken = await token({ sub: "watcher", envs: ["e1"], scope: "env:read" });

      const before1 = await httpPublish(b.url, publisher, channel, { type: "status", data: { status: "running" } });
      assert.equal(before1.status, 202);
      const oldEpoch = before1.body.epoch as string;
      const watcher = await connect(a.url, { token: watcherToken });
      sockets.push(watcher);
      const seen = recordEvents(watcher);
      const unsubscribed: Unsubscribed[] = [];
      const closings: Closing[] = [];
      let disconnected = false;
      watcher.on("unsubscribed", (notice) => unsubscribed.push(notice));
      watcher.on("closing", (notice) => closings.push(notice));
      watcher.on("disconnect", () => (disconnected = true));
      const first = await subscribe(watcher, { channel });
      assert.equal(first.epoch, oldEpoch);
      assert.deepEqual(first.snapshot, { status: "running" });
      const before2 = await httpPublish(b.url, publisher, channel, { type: "status", data: { status: "degraded" } });
      assert.equal(before2.status, 202);
      await waitUntil(() => (seen.get(channel)?.length ?? 0) === 1, 5000, "the live status");
      const lastSeen = seen.get(channel)![0]!;
      assert.equal(lastSeen.offset, 2);

      // Redis goes away.
      const port = Number(new URL(cluster.redis.url).port);
      await cluster.redis.stop();
      await Promise.all([waitReadyz(a.url, 503, 10_000), waitReadyz(b.url, 503, 10_000)]);
      for (const gateway of [a, b]) {
        const res = await httpPublish(gateway.url, publisher, channel, { type: "status", data: { status: "lost" } });
        assert.equal(res.status, 503, `publish while Redis is away: ${JSON.stringify(res.body)}`);
        assert.equal((res.body.error as { code: number }).code, 4503);
        const refusal = await engineHandshake(gateway.url);
        assert.equal(refusal.status, 503, JSON.stringify(refusal));
        assert.equal((refusal.body as { error: { code: number; reason: string } }).error.reason, "unavailable");
        const health = await httpGet(`${gateway.url}/healthz`);
        assert.equal(health.status, 200);
        assert.ok(alive(gateway), `the gateway exited while Redis was away: ${gateway.output()}`);
      }
      assert.equal(watcher.connected, true, "the connected client was dropped while Redis was away");

      // Redis comes back, empty, on the same port: the replicas reconnect by themselves.
      restarted = await startEmbeddedRedis({ port });
      await Promise.all([waitReadyz(a.url, 200, 15_000), waitReadyz(b.url, 200, 15_000)]);

      const after1 = await httpPublish(b.url, publisher, channel, { type: "status", data: { status: "restarted" } });
      assert.equal(after1.status, 202, JSON.stringify(after1.body));
      const newEpoch = after1.body.epoch as string;
      assert.notEqual(newEpoch, oldEpoch, "Redis lost the channel but the epoch stayed");
      await waitUntil(() => unsubscribed.length > 0, 10_000, "the live subscription to end");
      await sleep(100);
      assert.deepEqual(unsubscribed, [{ channel, code: 4503, reason: "history_lost" }]);
      // Nothing of the new epoch was slipped into the old subscription.
      assert.deepEqual(offsets(seen.get(channel)!), [2]);

      const again = await subscribe(watcher, { channel, since: { offset: lastSeen.offset, epoch: lastSeen.epoch } });
      assert.equal(again.recovered, false);
      assert.equal(again.epoch, newEpoch);
      assert.equal(again.offset, after1.body.offset);
      assert.deepEqual(again.snapshot, { status: "restarted" });

      const after2 = await httpPublish(a.url, publisher, channel, { type: "status", data: { status: "fine" } });
      assert.equal(after2.status, 202, JSON.stringify(after2.body));
      await waitUntil(() => (seen.get(channel)?.length ?? 0) === 2, 5000, "a new live status");
      const fresh = seen.get(channel)![1]!;
      assert.equal(fresh.epoch, newEpoch);
      assert.equal(fresh.offset, after2.body.offset);
      assert.deepEqual(fresh.data, { status: "fine" });
      assert.equal(watcher.connected, true);
      assert.equal(disconnected, false);
      assert.deepEqual(closings, []);
    });
  },
);

describe("SIGTERM while Redis is down", () => {
  let cluster: TestCluster;
  const sockets: TestSocket[] = [];
  before(async () => {
    cluster = await startCluster({ replicas: 1, env: { ...LIMITS_OFF, ROOMCAST_DRAIN_S: "1" } });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
  });

  it("drains and exits 0 (no unhandled rejection from the adapter's unsubscribe)", async () => {
    const gateway = cluster.gateways[0]!;
    const socket = await connect(gateway.url, { token: await token({ sub: "stays" }) });
    sockets.push(socket);
    const closings: Closing[] = [];
    socket.on("closing", (c) => closings.push(c));
    await cluster.redis.stop();
    await waitReadyz(gateway.url, 503, 10_000);
    assert.equal(await gateway.stop(), 0, gateway.output());
    assert.doesNotMatch(gateway.output(), /Unhandled|Stream isn't writeable[\s\S]*\n\s+at /);
    assert.deepEqual(
      closings.map((c) => c.reason),
      ["draining"],
    );
  });
});

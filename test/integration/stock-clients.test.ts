/**
 * Stock socket.io-client connections (default options: polling then WebSocket, default
 * reconnection, no SDK) through a small TCP load balancer that routes to ready replicas
 * (test/support/load-balancer.ts), surviving ordinary operations (docs/protocol.md,
 * "Deliveries"): a rolling restart of every replica, a replica whose Redis link goes silent,
 * and a slow-consumer close. The only app code is the one-line pattern: on connect,
 * subscribe with `since` (the last offset and epoch seen).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { io, type Socket } from "socket.io-client";
import type { ChannelEvent, Closing, SubscribeOk, Welcome } from "../../src/contracts/events.js";
import { httpPublish, token, waitUntil } from "../support/clients.js";
import { LIMITS_OFF, startCluster, TOPOLOGY, type TestCluster } from "../support/cluster.js";
import { startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { startLoadBalancer, type LoadBalancer } from "../support/load-balancer.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";
import { CLOSE_GRACE_MS } from "../../src/gateway/close-connection.js";
import { metric, range, sleep } from "../support/util.js";

/** A stock client with the one-line recovery pattern, recording what it sees. */
interface StockApp {
  socket: Socket;
  /** Every event, answers of (re)subscriptions included, in wire order. */
  events: ChannelEvent[];
  closings: Closing[];
  disconnects: string[];
  /** The replica of the current connection (from `welcome`). */
  node: string | undefined;
  connects: number;
  answers: (SubscribeOk & { ok: true })[];
  errors: string[];
}

function stockApp(url: string, bearer: string, channel: string): StockApp {
  const socket = io(url, { auth: { token: bearer }, forceNew: true });
  const app: StockApp = {
    socket,
    events: [],
    closings: [],
    disconnects: [],
    node: undefined,
    connects: 0,
    answers: [],
    errors: [],
  };
  let position: { offset: number; epoch: string } | undefined;
  socket.on("welcome", (w: Welcome) => (app.node = w.node));
  socket.on("event", (e: ChannelEvent) => {
    app.events.push(e);
    position = { offset: e.offset, epoch: e.epoch };
  });
  socket.on("closing", (c: Closing) => app.closings.push(c));
  socket.on("disconnect", (reason) => {
    app.node = undefined;
    app.disconnects.push(reason);
  });
  // The one line of app code: on (re)connect, subscribe with since.
  socket.on("connect", () => {
    app.connects++;
    socket.emit(
      "subscribe",
      position ? { channel, since: position } : { channel },
      (answer: (SubscribeOk & { ok: true }) | { ok: false; error: unknown }) => {
        if (!answer.ok) return void app.errors.push(JSON.stringify(answer));
        app.answers.push(answer);
        app.events.push(...answer.events);
        const last = answer.events.at(-1);
        position = last ? { offset: last.offset, epoch: last.epoch } : { offset: answer.offset, epoch: answer.epoch };
      },
    );
  });
  return app;
}

/** Publishes `n` events at a steady pace until stopped; retries a refused one with its idempotency key. */
function pacedPublisher(urls: () => string[], bearer: string, channel: string, intervalMs: number) {
  const offsets: number[] = [];
  const failures: string[] = [];
  let running = true;
  const done = (async () => {
    let turn = 0;
    for (let n = 1; running; n++) {
      const key = `e${n}`;
      for (let attempt = 0; ; attempt++) {
        const list = urls();
        const url = list[turn++ % list.length]!;
        try {
          const res = await httpPublish(url, bearer, channel, { type: "n", data: { n }, idempotencyKey: key });
          if (res.status === 202) {
            offsets.push(res.body.offset as number);
            break;
          }
          failures.push(`${res.status}`);
        } catch (err) {
          failures.push(String(err));
        }
        if (attempt > 50) throw new Error(`publish ${n} kept failing: ${failures.slice(-3).join(", ")}`);
        await sleep(50);
      }
      await sleep(intervalMs);
    }
  })();
  return {
    offsets,
    failures,
    async stop() {
      running = false;
      await done;
    },
  };
}

function assertComplete(apps: readonly StockApp[], total: number): void {
  for (const [i, app] of apps.entries()) {
    assert.deepEqual(app.errors, [], `client ${i}: a subscribe was refused`);
    assert.deepEqual(
      app.events.map((e) => e.offset),
      range(1, total),
      `client ${i}: every event exactly once, in order (disconnects: ${app.disconnects.join(", ")})`,
    );
  }
}

describe("stock clients through a load balancer", () => {
  let cluster: TestCluster;
  let balancer: LoadBalancer;
  const apps: StockApp[] = [];

  before(async () => {
    cluster = await startCluster({ replicas: 3, env: { ...LIMITS_OFF, ROOMCAST_DRAIN_S: "2" } });
    balancer = await startLoadBalancer(cluster.gateways);
  });
  after(async () => {
    for (const app of apps) app.socket.close();
    await balancer?.close();
    await cluster?.close();
  });

  it("rolling restart of every replica under a paced publisher: every client ends on a live replica within drain + 10 s with every event exactly once", async () => {
    const channel = "user:roller";
    const bearer = await token({ sub: "roller" });
    const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
    const clients = Array.from({ length: 24 }, () => stockApp(balancer.url, bearer, channel));
    apps.push(...clients);
    await waitUntil(() => clients.every((c) => c.answers.length === 1), 15_000, "every client subscribed");
    const nodes = new Set(clients.map((c) => c.node));
    assert.ok(nodes.size >= 2, `the balancer spread the clients (${[...nodes].join(", ")})`);

    const publishing = pacedPublisher(
      () => balancer.ready().map((port) => `http://127.0.0.1:${port}`),
      publisher,
      channel,
      20,
    );
    try {
      await waitUntil(() => publishing.offsets.length >= 20, 10_000, "the first events");
      // Each original replica in turn: SIGTERM (drain 2 s), wait for its exit, start its successor.
      for (const old of [...cluster.gateways]) {
        const code = await old.stop();
        assert.equal(code, 0, `a drained replica exits 0: ${old.output()}`);
        cluster.gateways.splice(cluster.gateways.indexOf(old), 1);
        await cluster.addGateway({ ...LIMITS_OFF, ROOMCAST_DRAIN_S: "2" });
        balancer.setBackends(cluster.gateways);
      }
      const restartedAt = Date.now();
      const live = new Set(cluster.gateways.map((g) => g.nodeId));
      await waitUntil(
        () => clients.every((c) => c.node !== undefined && live.has(c.node)),
        2000 + 10_000,
        "every client on a live replica",
      );
      console.log(`# every client back on a live replica ${Date.now() - restartedAt} ms after the last restart`);
      await sleep(500);
    } finally {
      await publishing.stop();
    }
    const total = publishing.offsets.length;
    assert.deepEqual(publishing.offsets, range(1, total), "the publisher's offsets");
    await waitUntil(() => clients.every((c) => c.events.length >= total), 10_000, "every event everywhere");
    await sleep(200);
    assertComplete(clients, total);
    for (const [i, c] of clients.entries()) {
      assert.ok(
        c.closings.some((n) => n.code === 4503 && n.reason === "draining"),
        `client ${i} was told it was moved: ${JSON.stringify(c.closings)}`,
      );
      assert.ok(
        !c.disconnects.includes("io server disconnect"),
        `client ${i}: a Socket.IO disconnect would strand it: ${c.disconnects.join(", ")}`,
      );
      assert.ok(
        c.answers.slice(1).every((a) => a.recovered),
        `client ${i}: every resubscription recovered`,
      );
      assert.equal(c.socket.connected, true);
    }
  });
});

describe(
  "a replica whose Redis link goes silent",
  {
    skip:
      TOPOLOGY === "cluster"
        ? "needs the replica's Redis connections through one TCP proxy; ioredis Cluster connects to the node addresses CLUSTER SLOTS gives"
        : false,
  },
  () => {
    let cluster: TestCluster;
    let proxy: TcpProxy;
    let silent: GatewayProcess;
    let balancer: LoadBalancer;
    const apps: StockApp[] = [];

    before(async () => {
      cluster = await startCluster({ replicas: 2, env: LIMITS_OFF });
      proxy = await startTcpProxy(cluster.redis.ports[0]!);
      silent = await startGateway({ redisUrl: proxy.url("redis"), env: { ...LIMITS_OFF, LOG_LEVEL: "info" } });
      balancer = await startLoadBalancer([...cluster.gateways, silent]);
    });
    after(async () => {
      for (const app of apps) app.socket.close();
      await balancer?.close();
      await silent?.kill();
      await proxy?.close();
      await cluster?.close();
    });

    it("is unready within 10 s, moves its clients (they complete on the others), refuses new ones, is ready again within 20 s of healing, and never exits", async () => {
      const channel = "user:frozen";
      const bearer = await token({ sub: "frozen" });
      const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
      const clients: StockApp[] = [];
      // Enough clients that some land on the silent replica.
      while (!clients.some((c) => c.node === silent.nodeId) || clients.length < 12) {
        const app = stockApp(balancer.url, bearer, channel);
        clients.push(app);
        apps.push(app);
        await waitUntil(() => app.answers.length === 1, 10_000, "the client subscribed");
        assert.ok(clients.length < 40, "the balancer never chose the replica behind the proxy");
      }
      const onSilent = clients.filter((c) => c.node === silent.nodeId);
      const healthy = cluster.gateways.map((g) => g.url);
      const publishing = pacedPublisher(() => healthy, publisher, channel, 20);
      let frozenAt = 0;
      try {
        await waitUntil(() => publishing.offsets.length >= 10, 10_000, "the first events");
        proxy.freeze();
        frozenAt = Date.now();
        await waitUntil(() => !balancer.ready().includes(silent.port), 10_000, "the silent replica to turn unready");
        const unreadyAfter = Date.now() - frozenAt;
        console.log(`# unready ${unreadyAfter} ms after the Redis link froze`);
        const handshake = await fetch(`${silent.url}/socket.io/?EIO=4&transport=polling`);
        assert.equal(handshake.status, 503, "new sessions are refused at the Engine.IO handshake");
        const body = (await handshake.json()) as { error: { code: number; reason: string } };
        assert.equal(body.error.code, 4503);
        await waitUntil(
          () => onSilent.every((c) => c.node !== undefined && c.node !== silent.nodeId),
          15_000,
          "the silent replica's clients to move",
        );
        console.log(`# its ${onSilent.length} clients moved within ${Date.now() - frozenAt} ms`);
        await sleep(1000);
        assert.equal(silent.process.exitCode, null, `the replica exited: ${silent.output()}`);
      } finally {
        await publishing.stop();
      }
      const total = publishing.offsets.length;
      await waitUntil(() => clients.every((c) => c.events.length >= total), 10_000, "every event everywhere");
      await sleep(200);
      assertComplete(clients, total);
      for (const c of onSilent) {
        assert.ok(
          c.closings.some((n) => n.code === 4503 && n.reason === "unavailable"),
          `moved with closing 4503 unavailable: ${JSON.stringify(c.closings)}`,
        );
        assert.ok(!c.disconnects.includes("io server disconnect"), c.disconnects.join(", "));
      }

      proxy.heal();
      const healedAt = Date.now();
      await waitUntil(() => balancer.ready().includes(silent.port), 20_000, "the replica to be ready again");
      console.log(`# ready again ${Date.now() - healedAt} ms after the link healed`);
      // It serves again: a client connected to it directly subscribes and gets a live event.
      const direct = stockApp(silent.url, bearer, channel);
      apps.push(direct);
      await waitUntil(() => direct.answers.length === 1, 10_000, "a subscribe on the healed replica");
      const next = await httpPublish(cluster.gateways[0]!.url, publisher, channel, {
        type: "n",
        data: { n: total + 1 },
      });
      assert.equal(next.status, 202);
      await waitUntil(
        () => direct.events.some((e) => e.offset === total + 1),
        5000,
        "a live event on the healed replica",
      );
      assert.equal(silent.process.exitCode, null);
      assert.match(silent.output(), /Redis link lost/);
    });
  },
);

describe("slow consumer, stock client", () => {
  let cluster: TestCluster;
  let proxy: TcpProxy;
  const apps: StockApp[] = [];

  before(async () => {
    cluster = await startCluster({
      replicas: 1,
      env: { ...LIMITS_OFF, ROOMCAST_SLOW_CONSUMER_BYTES: "65536", ROOMCAST_SLOW_CONSUMER_PACKETS: "200" },
    });
    proxy = await startTcpProxy(cluster.gateways[0]!.port);
  });
  after(async () => {
    for (const app of apps) app.socket.close();
    await proxy?.close();
    await cluster?.close();
  });

  it("a client that stops reading is cut (4008 slow_consumer), reconnects by itself and recovers every event", async () => {
    const channel = "env:slow:logs";
    const bearer = await token({ sub: "phone", envs: ["slow"], scope: "env:read" });
    const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
    const gateway = cluster.gateways[0]!;
    const app = stockApp(proxy.url("http"), bearer, channel);
    apps.push(app);
    await waitUntil(
      () => app.answers.length === 1 && app.socket.io.engine.transport.name === "websocket",
      10_000,
      "subscribed over WebSocket",
    );
    proxy.stall();
    // Publish until the kernel's buffers are full and the server's backlog for it passes the limit:
    // the server gives up on it (closing, then its connection dropped after the grace period).
    const pad = "x".repeat(8192);
    let total = 0;
    const deadline = Date.now() + 30_000;
    while ((await metric(gateway.url, "roomcast_slow_consumer_disconnects_total")) === 0) {
      assert.ok(Date.now() < deadline, `the slow client was not cut after ${total} events`);
      for (let i = 0; i < 50; i++) {
        const res = await httpPublish(gateway.url, publisher, channel, { type: "line", data: { n: ++total, pad } });
        assert.equal(res.status, 202);
      }
    }
    console.log(`# cut after ${total} events of 8 KiB`);
    assert.equal(app.disconnects.length, 0, "the client cannot know yet: it reads nothing");
    // The network recovers after the grace period: the client reads what reached it, then the end.
    await sleep(CLOSE_GRACE_MS + 500);
    proxy.resume();
    await waitUntil(() => app.disconnects.length > 0, 10_000, "the client to see its connection end");
    assert.equal(await metric(gateway.url, "roomcast_slow_consumer_disconnects_total"), 1, "one cut per connection");
    await waitUntil(
      () => app.connects >= 2 && app.answers.length >= 2,
      15_000,
      "the client to reconnect by itself and resubscribe",
    );
    await waitUntil(() => app.events.length >= total, 10_000, "every event after the recovery");
    assertComplete([app], total);
    assert.ok(!app.disconnects.includes("io server disconnect"), app.disconnects.join(", "));
    assert.equal(app.answers[1]!.recovered, true);
  });
});

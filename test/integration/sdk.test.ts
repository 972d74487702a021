/**
 * The client SDK (roomcast/client) against real replicas: a replica SIGKILLed under a
 * subscribed client, token refresh before expiry, and expiry without refresh; presence
 * (members, counts, joins and leaves across a reconnect).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient, type RoomcastClient } from "../../src/client/index.js";
import type { ChannelEvent, Closing, PresenceEvent } from "../../src/contracts/events.js";
import { httpPublish, token, waitUntil } from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";

describe("client SDK", () => {
  let cluster: TestCluster;
  const clients: RoomcastClient[] = [];
  before(async () => {
    cluster = await startCluster({ replicas: 3, env: { ROOMCAST_HTTP_RATE_LIMIT: "0" } });
  });
  after(async () => {
    for (const c of clients) c.close();
    await cluster?.close();
  });

  it("ends with every event exactly once and in order after its replica is SIGKILLed mid-stream", async () => {
    const [a, b, c] = cluster.gateways;
    const client = createClient({
      url: [a!.url, b!.url],
      token: await token({ sub: "sdk-user" }),
      backoff: { initialMs: 100, maxMs: 400 },
    });
    clients.push(client);
    const welcome = await client.connect();
    assert.equal(welcome.node, a!.nodeId);
    const received: ChannelEvent[] = [];
    await client.subscribe("user:sdk-user", (event) => received.push(event));
    const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
    let published = 0;
    const publishSome = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const res = await httpPublish(c!.url, publisher, "user:sdk-user", { type: "tick", data: { n: ++published } });
        assert.equal(res.status, 202);
      }
    };
    await publishSome(50);
    await waitUntil(() => received.length === 50, 5000, "the first 50 events");
    const reconnected = new Promise((resolve) => client.once("welcome", resolve));
    await a!.kill();
    await publishSome(100); // while the client is away or reconnecting
    const again = (await reconnected) as { node: string };
    assert.equal(again.node, b!.nodeId);
    await publishSome(50);
    await waitUntil(() => received.length >= published, 10_000, "every event");
    await new Promise((r) => setTimeout(r, 200)); // any duplicate would arrive by now
    assert.deepEqual(
      received.map((e) => e.offset),
      Array.from({ length: published }, (_, i) => i + 1),
    );
    assert.deepEqual(
      received.map((e) => (e.data as { n: number }).n),
      Array.from({ length: published }, (_, i) => i + 1),
    );
  });

  it("keeps a log filter and a pause across a reconnect; resume replays what was missed, under the new filter, in order", async () => {
    const d = await cluster.addGateway({ ROOMCAST_HTTP_RATE_LIMIT: "0" });
    const e = await cluster.addGateway({ ROOMCAST_HTTP_RATE_LIMIT: "0" });
    const channel = "env:e5:logs";
    const client = createClient({
      url: [d.url, e.url],
      token: await token({ sub: "sdk-tail", envs: ["e5"], scope: "env:read" }),
      backoff: { initialMs: 100, maxMs: 200 },
    });
    clients.push(client);
    await client.connect();
    const received: ChannelEvent[] = [];
    await client.subscribe(channel, (event) => received.push(event), { filter: { stream: "stderr" } });
    const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
    let n = 0;
    const publishBatches = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const lines = [
          { n: ++n, stream: "stdout", text: `out ${n}`, ts: Date.now() },
          { n: ++n, stream: "stderr", text: `err ${n}`, ts: Date.now() },
        ];
        assert.equal(
          (await httpPublish(e.url, publisher, channel, { type: "log", data: { jobId: "j", name: "x", lines } }))
            .status,
          202,
        );
      }
    };
    type Lines = { lines: { stream: string }[]; filtered?: number };
    await publishBatches(10);
    await waitUntil(() => received.length === 10, 5000, "10 batches");
    assert.ok(
      received.every(
        (ev) => (ev.data as Lines).lines.every((l) => l.stream === "stderr") && (ev.data as Lines).filtered === 1,
      ),
    );
    await client.pause(channel);
    await publishBatches(5);
    const back = new Promise((resolve) => client.once("welcome", resolve));
    await d.kill();
    await back;
    await publishBatches(5);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(received.length, 10, "nothing while paused, across the reconnect");
    await client.setFilter(channel, { stream: "stdout" });
    await client.resume(channel);
    await waitUntil(() => received.length === 20, 5000, "the 10 missed batches");
    assert.deepEqual(
      received.map((ev) => ev.offset),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.ok(
      received.slice(10).every((ev) => (ev.data as Lines).lines.every((l) => l.stream === "stdout")),
      "the new filter",
    );
    await publishBatches(1);
    await waitUntil(() => received.length === 21, 5000, "live again");
  });

  it("hands over the snapshot (onReset) when history cannot fill the gap after a reconnect", async () => {
    const env = { ROOMCAST_HISTORY_SIZE: "3", ROOMCAST_HTTP_RATE_LIMIT: "0" };
    const d = await cluster.addGateway(env);
    const e = await cluster.addGateway(env);
    const client = createClient({
      url: [d.url, e.url],
      token: await token({ sub: "sdk-ops", envs: ["e9"], scope: "env:read" }),
      backoff: { initialMs: 300, maxMs: 300 },
    });
    clients.push(client);
    await client.connect();
    const received: ChannelEvent[] = [];
    const resets: { snapshot: unknown; offset: number }[] = [];
    await client.subscribe("env:e9:status", (event) => received.push(event), {
      onReset: ({ snapshot, offset }) => resets.push({ snapshot, offset }),
    });
    const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
    const publish = async (n: number) =>
      assert.equal((await httpPublish(e.url, publisher, "env:e9:status", { type: "status", data: { n } })).status, 202);
    await publish(1);
    await waitUntil(() => received.length === 1, 5000, "the first status");
    await d.kill();
    for (let n = 2; n <= 8; n++) await publish(n); // more than history holds, while it is away
    await waitUntil(() => resets.length === 1, 10_000, "onReset");
    assert.deepEqual(resets[0], { snapshot: { n: 8 }, offset: 8 });
    await publish(9);
    await waitUntil(() => received.length === 2, 5000, "the next live status");
    assert.deepEqual(
      received.map((ev) => ev.offset),
      [1, 9],
    );
  });

  it("reads presence and its counts, and hands joins and leaves to onPresence, across a reconnect", async () => {
    // A short debounce: a leave is announced a second after the last connection went.
    const env = { ROOMCAST_HTTP_RATE_LIMIT: "0", ROOMCAST_PRESENCE_DEBOUNCE_S: "1" };
    const d = await cluster.addGateway(env);
    const e = await cluster.addGateway(env);
    const channel = "env:sdkp:status";
    const open = async (sub: string, url: string | string[], name?: string) => {
      const extra = name ? { name } : {};
      const client = createClient({
        url,
        token: await token({ sub, envs: ["sdkp"], scope: "env:read", extra }),
        backoff: { initialMs: 100, maxMs: 200 },
      });
      clients.push(client);
      await client.connect();
      return client;
    };
    const watcher = await open("watcher", [d.url, e.url]);
    const seen: PresenceEvent[] = [];
    await watcher.subscribe(channel, () => undefined, { onPresence: (event) => seen.push(event) });
    // Its own join comes too (maybe before the answer).
    await waitUntil(() => seen.length === 1, 5000, "the watcher's own join");
    assert.deepEqual(seen.shift(), { channel, action: "join", user: "watcher" });

    const olive = await open("olive", e.url, "Olive");
    await olive.subscribe(channel, () => undefined);
    await waitUntil(() => seen.length === 1, 5000, "olive's join");
    assert.deepEqual(seen.shift(), { channel, action: "join", user: "olive", info: { name: "Olive" } });
    const presence = await watcher.presence(channel);
    assert.equal(presence.channel, channel);
    assert.equal(presence.count, 2);
    assert.equal(presence.connections, 2);
    assert.deepEqual(
      presence.members!.map((m) => [m.user, m.connections, m.info]),
      [
        ["watcher", 1, undefined],
        ["olive", 1, { name: "Olive" }],
      ],
    );
    const stats = await olive.presenceStats(channel);
    assert.deepEqual([stats.channel, stats.users, stats.connections], [channel, 2, 2]);

    // The watcher's replica dies: onPresence still works on its next one.
    const back = new Promise((resolve) => watcher.once("welcome", resolve));
    await d.kill();
    await back;
    const pat = await open("pat", e.url, "Pat");
    await pat.subscribe(channel, () => undefined);
    await waitUntil(() => seen.some((ev) => ev.user === "pat"), 10_000, "pat's join after the reconnect");
    assert.deepEqual(
      seen.filter((ev) => ev.user === "pat"),
      [{ channel, action: "join", user: "pat", info: { name: "Pat" } }],
    );

    olive.close();
    await waitUntil(() => seen.some((ev) => ev.action === "leave"), 10_000, "olive's leave");
    assert.deepEqual(
      seen.filter((ev) => ev.action === "leave"),
      [{ channel, action: "leave", user: "olive" }],
    );
    const after = await watcher.presenceStats(channel);
    assert.equal(after.users, 3 - 1, "watcher and pat");

    // Presence is for namespaces that have it: `user:` has none.
    await assert.rejects(watcher.presence("user:watcher"), { code: 4400, reason: "bad_request" });
    await assert.rejects(watcher.presenceStats("user:watcher"), { code: 4400, reason: "bad_request" });
  });

  it("keeps a paused subscription a member of the channel's presence across a reconnect; resume replays from the pause", async () => {
    // A leave is announced within a second of the debounce (the other replica sweeps every 0.75 s).
    const env = {
      ROOMCAST_HTTP_RATE_LIMIT: "0",
      ROOMCAST_PRESENCE_DEBOUNCE_S: "1",
      ROOMCAST_PRESENCE_LEASE_S: "3",
      ROOMCAST_DRAIN_S: "1",
    };
    const d = await cluster.addGateway(env);
    const e = await cluster.addGateway(env);
    const channel = "env:sdkpause:logs";
    const open = async (sub: string, url: string | string[]) => {
      const client = createClient({
        url,
        token: await token({ sub, envs: ["sdkpause"], scope: "env:read" }),
        backoff: { initialMs: 100, maxMs: 200 },
      });
      clients.push(client);
      await client.connect();
      return client;
    };
    const observer = await open("observer", e.url);
    const seen: PresenceEvent[] = [];
    await observer.subscribe(channel, () => undefined, { onPresence: (event) => seen.push(event) });
    const reader = await open("reader", [d.url, e.url]);
    const received: ChannelEvent[] = [];
    await reader.subscribe(channel, (event) => received.push(event));
    await waitUntil(() => seen.some((ev) => ev.user === "reader"), 5000, "the reader's join");
    const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
    let n = 0;
    const publish = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const lines = [{ n: ++n, stream: "stdout", text: `line ${n}`, ts: Date.now() }];
        const res = await httpPublish(e.url, publisher, channel, {
          type: "log",
          data: { jobId: "j", name: "x", lines },
        });
        assert.equal(res.status, 202);
      }
    };
    await publish(3);
    await waitUntil(() => received.length === 3, 5000, "3 events");
    await reader.pause(channel);
    await publish(3);
    // Its replica drains: the reader moves to the other one, its subscription still paused.
    const back = new Promise((resolve) => reader.once("welcome", resolve));
    await d.stop();
    await back;
    await publish(3);
    await new Promise((r) => setTimeout(r, 3500)); // a leave would be announced by now
    assert.deepEqual(
      seen.filter((ev) => ev.user === "reader"),
      [{ channel, action: "join", user: "reader" }],
      "the paused reader never left",
    );
    assert.equal((await observer.presenceStats(channel)).users, 2);
    assert.equal(received.length, 3, "nothing while paused, across the reconnect");
    await reader.resume(channel);
    await waitUntil(() => received.length === 9, 5000, "the 6 missed events");
    await publish(1);
    await waitUntil(() => received.length === 10, 5000, "live again");
    assert.deepEqual(
      received.map((ev) => ev.offset),
      Array.from({ length: 10 }, (_, i) => i + 1),
    );
  });

  it("refreshes the token before it expires and keeps the connection", async () => {
    const url = cluster.gateways[1]!.url;
    let minted = 0;
    const client = createClient({
      url,
      getToken: () => {
        minted++;
        return token({ sub: "sdk-refresh", ttlS: 3 });
      },
      refreshBeforeMs: 1500,
    });
    clients.push(client);
    const closings: Closing[] = [];
    client.on("closing", (c) => closings.push(c));
    await client.connect();
    const sessionId = client.sessionId;
    const received: ChannelEvent[] = [];
    await client.subscribe("user:sdk-refresh", (e) => received.push(e));
    await new Promise((r) => setTimeout(r, 5000)); // past the first token's expiry
    assert.equal(client.connected, true);
    assert.equal(client.sessionId, sessionId, "same connection, no reconnect");
    assert.deepEqual(closings, []);
    assert.ok(minted >= 2, `tokens minted: ${minted}`);
    const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
    assert.equal((await httpPublish(url, publisher, "user:sdk-refresh", { type: "after", data: {} })).status, 202);
    await waitUntil(() => received.length === 1, 5000, "an event after the refresh");
  });

  it("is closed with 4401 token_expired when its token expires without a refresh", async () => {
    const client = createClient({
      url: cluster.gateways[1]!.url,
      token: await token({ sub: "sdk-expiring", ttlS: 2 }),
    });
    clients.push(client);
    const closing = new Promise<Closing>((resolve) => client.once("closing", resolve));
    const gaveUp = new Promise<{ code?: number }>((resolve) => client.once("error", resolve));
    await client.connect();
    assert.deepEqual(await closing, { code: 4401, reason: "token_expired", retryAfterMs: 0 });
    // Reconnecting with the same (expired) token is refused 4401, and without getToken the client stops.
    assert.equal((await gaveUp).code, 4401);
    await waitUntil(() => !client.connected, 5000, "disconnected");
  });
});

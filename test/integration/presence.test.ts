/**
 * Presence (docs/protocol.md, "Presence") on real replicas and Redis, in both topologies:
 * members deduplicated by user across tabs and replicas, join/leave events debounced, a
 * SIGKILLed replica's members leaving within one lease, exact counts under concurrent joins
 * and leaves, and the grants and errors of the requests and routes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { PresenceEvent, PresenceOk, PresenceStatsOk } from "../../src/contracts/events.js";
import { refusedWith, type Answer } from "../support/answers.js";
import { connect, httpGet, request, token, waitUntil, type TestSocket } from "../support/clients.js";
import { LIMITS_OFF, redisCommand, startCluster, type TestCluster } from "../support/cluster.js";
import { createJob, JOB_SCOPES } from "../support/jobs.js";
import { range, sleep } from "../support/util.js";

const LEASE_S = 3;
const DEBOUNCE_S = 2;
const ENV = {
  ...LIMITS_OFF,
  ROOMCAST_PRESENCE_LEASE_S: String(LEASE_S),
  ROOMCAST_PRESENCE_DEBOUNCE_S: String(DEBOUNCE_S),
};

/** The environment of an `env:<id>:<stream>` channel. */
const envOf = (channel: string) => channel.split(":")[1]!;

/** A token that may subscribe to the channel (its environment in `envs`). */
function readerToken(sub: string, channel: string, extra: Record<string, unknown> = {}): Promise<string> {
  return token({ sub, envs: [envOf(channel)], scope: "env:read", extra });
}

/** Every `presence` event a socket gets, in order. */
function recordPresence(socket: TestSocket): PresenceEvent[] {
  const seen: PresenceEvent[] = [];
  socket.on("presence", (e) => seen.push(e));
  return seen;
}

async function presenceOf(socket: TestSocket, channel: string): Promise<PresenceOk> {
  const answer = await request<Answer>(socket, "presence", { channel });
  assert.equal(answer.ok, true, JSON.stringify(answer));
  return answer as unknown as PresenceOk;
}

async function statsOf(socket: TestSocket, channel: string): Promise<PresenceStatsOk> {
  const answer = await request<Answer>(socket, "presence_stats", { channel });
  assert.equal(answer.ok, true, JSON.stringify(answer));
  return answer as unknown as PresenceStatsOk;
}

describe("presence", () => {
  let cluster: TestCluster;
  const opened: TestSocket[] = [];
  let channelCounter = 0;
  /** A fresh channel per test: presence left over from another test never counts. */
  const freshChannel = () => `env:prod${++channelCounter}x:status`;

  const join = async (url: string, sub: string, channel: string, extra: Record<string, unknown> = {}) => {
    const socket = await connect(url, { token: await readerToken(sub, channel, extra) });
    opened.push(socket);
    const answer = await request<Answer>(socket, "subscribe", { channel });
    assert.equal(answer.ok, true, JSON.stringify(answer));
    return socket;
  };

  /** A subscriber recording the channel's joins and leaves from after its own join on. */
  const observe = async (url: string, channel: string) => {
    const socket = await connect(url, { token: await readerToken("observer", channel) });
    opened.push(socket);
    const seen = recordPresence(socket);
    const answer = await request<Answer>(socket, "subscribe", { channel });
    assert.equal(answer.ok, true, JSON.stringify(answer));
    await waitUntil(() => seen.length === 1, 5000, "the observer's own join");
    assert.deepEqual(seen.splice(0), [{ channel, action: "join", user: "observer" }]);
    return { observer: socket, seen };
  };

  before(async () => {
    cluster = await startCluster({ replicas: 2, env: ENV });
  });
  after(async () => {
    for (const s of opened) s.close();
    await cluster.close();
  });

  it("two users in three tabs on two replicas are two members, with their token's name and avatar", async () => {
    const [a, b] = cluster.gateways;
    const channel = freshChannel();
    const alice = { name: "Alice", avatar: "https://example.com/alice.png" };
    const aliceTab1 = await join(a!.url, "alice", channel, alice);
    await join(b!.url, "alice", channel, alice);
    const bobTab = await join(b!.url, "bob", channel);
    for (const socket of [aliceTab1, bobTab]) {
      const presence = await presenceOf(socket, channel);
      assert.equal(presence.channel, channel);
      assert.equal(presence.count, 2);
      assert.equal(presence.connections, 3);
      const members = presence.members!.map((m) => ({ user: m.user, connections: m.connections, info: m.info }));
      assert.deepEqual(members, [
        { user: "alice", connections: 2, info: alice },
        { user: "bob", connections: 1, info: undefined },
      ]);
      assert.ok(presence.members!.every((m) => typeof m.joinedAt === "number" && m.joinedAt <= Date.now()));
      assert.deepEqual(await statsOf(socket, channel), { ok: true, channel, users: 2, connections: 3 });
    }
    // The same over HTTP, on either replica.
    const reader = await readerToken("carol", channel);
    const viaHttp = await httpGet(a!.url + `/v1/channels/${encodeURIComponent(channel)}/presence`, reader);
    assert.equal(viaHttp.status, 200, JSON.stringify(viaHttp.body));
    assert.equal((viaHttp.body as unknown as PresenceOk).count, 2);
    assert.deepEqual(
      (viaHttp.body as unknown as PresenceOk).members!.map((m) => m.user),
      ["alice", "bob"],
    );
    const stats = await httpGet(b!.url + `/v1/channels/${encodeURIComponent(channel)}/presence/stats`, reader);
    assert.deepEqual(stats.body, { channel, users: 2, connections: 3 });
  });

  it("announces a user's first connection as a join and its last one's end as a leave, once each, not in history", async () => {
    const [a, b] = cluster.gateways;
    const channel = freshChannel();
    const { seen } = await observe(a!.url, channel);
    const dave1 = await join(b!.url, "dave", channel, { name: "Dave" });
    await waitUntil(() => seen.length === 1, 5000, "dave's join");
    assert.deepEqual(seen[0], { channel, action: "join", user: "dave", info: { name: "Dave" } });
    const dave2 = await join(a!.url, "dave", channel, { name: "Dave" });
    dave1.close();
    await sleep(200);
    dave2.close();
    const closedAt = Date.now();
    await waitUntil(() => seen.length >= 2, (DEBOUNCE_S + LEASE_S) * 1000, "dave's leave");
    assert.deepEqual(seen[1], { channel, action: "leave", user: "dave" });
    // A leave waits for the debounce (a reconnect within it would have cancelled it).
    assert.ok(Date.now() - closedAt >= DEBOUNCE_S * 1000 - 100, `leave after ${Date.now() - closedAt} ms`);
    await sleep(500);
    assert.equal(seen.length, 2, "one join and one leave, whatever the tabs");
    // Not events of the channel: history has none of them.
    const history = await httpGet(
      a!.url + `/v1/channels/${encodeURIComponent(channel)}/history`,
      await readerToken("reader", channel),
    );
    assert.deepEqual((history.body as { events: unknown[] }).events, []);
  });

  it("a reconnect within the debounce, on another replica, is neither a leave nor a join", async () => {
    const [a, b] = cluster.gateways;
    const channel = freshChannel();
    const { seen } = await observe(a!.url, channel);
    const erin = await join(a!.url, "erin", channel);
    await waitUntil(() => seen.length === 1, 5000, "erin's join");
    seen.length = 0;
    erin.close();
    await sleep(300);
    const erinAgain = await join(b!.url, "erin", channel);
    await sleep((DEBOUNCE_S + 1) * 1000);
    assert.deepEqual(seen, [], "no flapping");
    const presence = await presenceOf(erinAgain, channel);
    assert.deepEqual(
      presence.members!.map((m) => [m.user, m.connections]),
      [
        ["observer", 1],
        ["erin", 1],
      ],
    );
  });

  it("a SIGKILLed replica's members leave within one lease, one leave each; the others stay", async () => {
    const victim = await cluster.addGateway();
    const survivor = cluster.gateways[0]!;
    const channel = freshChannel();
    const { observer, seen } = await observe(survivor.url, channel);
    for (const user of ["frank", "grace", "heidi"]) await join(victim.url, user, channel);
    await join(survivor.url, "heidi", channel); // heidi has a tab on the survivor too: she stays
    await waitUntil(() => seen.length >= 3, 5000, "three joins");
    assert.equal((await statsOf(observer, channel)).connections, 5);
    const killedAt = Date.now();
    await victim.kill();
    await waitUntil(() => seen.length >= 5, (LEASE_S + 2) * 1000, "two leaves");
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs <= LEASE_S * 1000 + 500, `leaves ${tookMs} ms after the kill (lease ${LEASE_S} s)`);
    await sleep(LEASE_S * 1000);
    const leaves = seen.filter((e) => e.action === "leave").map((e) => e.user);
    assert.deepEqual(leaves.sort(), ["frank", "grace"], "one leave each, none for heidi");
    assert.deepEqual(await statsOf(observer, channel), { ok: true, channel, users: 2, connections: 2 });
  });

  it("counts stay exact under 500 concurrent joins and leaves on two replicas", async () => {
    const [a, b] = cluster.gateways;
    const channel = freshChannel();
    const { observer, seen } = await observe(a!.url, channel);
    const sockets = new Map<string, TestSocket>();
    // 250 users, each with a connection on each replica: 500 joins at once.
    await Promise.all(
      range(0, 249).flatMap((i) =>
        [a!, b!].map(async (gateway, side) => sockets.set(`${i}/${side}`, await join(gateway.url, `u${i}`, channel))),
      ),
    );
    assert.deepEqual(await statsOf(observer, channel), { ok: true, channel, users: 251, connections: 501 });
    await waitUntil(() => seen.length >= 250, 10_000, "250 joins");
    // At once: u0-u99 close one of two connections (stay), u100-u149 close both (leave), 50 new users join.
    const closing = [...range(0, 99).map((i) => `${i}/1`), ...range(100, 149).flatMap((i) => [`${i}/0`, `${i}/1`])];
    await Promise.all([
      ...closing.map(async (key) => sockets.get(key)!.close()),
      ...range(250, 299).map((i) => join(i % 2 ? a!.url : b!.url, `u${i}`, channel)),
    ]);
    await sleep((DEBOUNCE_S + LEASE_S) * 1000);
    assert.deepEqual(await statsOf(observer, channel), {
      ok: true,
      channel,
      users: 251,
      connections: 501 - 100 - 100 + 50,
    });
    const presence = await presenceOf(observer, channel);
    assert.equal(presence.members!.length, 251);
    assert.equal(
      presence.members!.reduce((n, m) => n + m.connections, 0),
      presence.connections,
    );
    const joins = seen.filter((e) => e.action === "join").map((e) => e.user);
    const leaves = seen.filter((e) => e.action === "leave").map((e) => e.user);
    assert.equal(new Set(joins).size, joins.length, "no user joined twice");
    assert.equal(joins.length, 300);
    assert.deepEqual(
      leaves.sort(),
      range(100, 149)
        .map((i) => `u${i}`)
        .sort(),
    );
  });

  it("an entry lost in Redis (a failover that lost writes) comes back at its replica's next renewal", async () => {
    const [a] = cluster.gateways;
    const channel = freshChannel();
    const judy = await join(a!.url, "judy", channel);
    for (const key of ["conns", "owners", "users", "info"])
      redisCommand(cluster.redis, "DEL", `rc:{${channel}}:p:${key}`);
    assert.deepEqual(await statsOf(judy, channel), { ok: true, channel, users: 0, connections: 0 });
    const deadline = Date.now() + LEASE_S * 1000;
    let stats = await statsOf(judy, channel);
    while (stats.users === 0 && Date.now() < deadline) {
      await sleep(100);
      stats = await statsOf(judy, channel);
    }
    assert.deepEqual(stats, { ok: true, channel, users: 1, connections: 1 });
    assert.deepEqual(
      (await presenceOf(judy, channel)).members!.map((m) => m.user),
      ["judy"],
    );
  });

  it("answers only the counts above ROOMCAST_PRESENCE_MAX_MEMBERS users, never a partial list", async () => {
    const small = await cluster.addGateway({ ROOMCAST_PRESENCE_MAX_MEMBERS: "2" });
    const channel = freshChannel();
    const first = await join(small.url, "m1", channel);
    await join(small.url, "m2", channel);
    assert.equal((await presenceOf(first, channel)).members!.length, 2);
    await join(small.url, "m3", channel);
    const answer = await presenceOf(first, channel);
    assert.deepEqual(answer, { ok: true, channel, count: 3, connections: 3 });
    const viaHttp = await httpGet(
      small.url + `/v1/channels/${encodeURIComponent(channel)}/presence`,
      await readerToken("r", channel),
    );
    assert.deepEqual(viaHttp.body, { channel, count: 3, connections: 3 });
  });

  it("needs the grants of subscribe, and a namespace with presence; bad requests get 4400, and the replica serves on", async () => {
    const [a] = cluster.gateways;
    const channel = freshChannel();
    const member = await join(a!.url, "ivan", channel);
    const outsider = await connect(a!.url, {
      token: await token({ sub: "mallory", envs: ["other"], scope: "env:read" }),
    });
    opened.push(outsider);
    for (const event of ["presence", "presence_stats"]) {
      refusedWith(await request<Answer>(outsider, event, { channel }), 4403, "forbidden");
      refusedWith(await request<Answer>(member, event, { channel: "user:ivan" }), 4400, "bad_request");
      refusedWith(await request<Answer>(member, event, { channel: "nope:x" }), 4404, "not_found");
      refusedWith(await request<Answer>(member, event, { channel: 42 }), 4400, "bad_request");
      refusedWith(await request<Answer>(member, event, { channel, extra: true }), 4400, "bad_request");
      refusedWith(await request<Answer>(member, event, null), 4400, "bad_request");
    }
    const outsiderToken = await token({ sub: "mallory", envs: ["other"], scope: "env:read" });
    for (const path of ["presence", "presence/stats"]) {
      const url = (c: string) => `/v1/channels/${encodeURIComponent(c)}/${path}`;
      assert.equal((await httpGet(a!.url + url(channel), outsiderToken)).status, 403);
      assert.equal((await httpGet(a!.url + url(channel))).status, 401);
      assert.equal((await httpGet(a!.url + url("user:ivan"), await readerToken("ivan", channel))).status, 400);
      assert.equal((await httpGet(a!.url + url("nope:x"), await readerToken("ivan", channel))).status, 404);
      // An admin reads any channel's presence.
      const admin = await token({ sub: "ops", scope: "admin" });
      assert.equal((await httpGet(a!.url + url(channel), admin)).status, 200);
    }
    // Still serving: the member's presence is intact.
    assert.equal((await presenceOf(member, channel)).count, 1);
  });

  it("a job's channel has presence too: who follows the job", async () => {
    const [a] = cluster.gateways;
    await cluster.addWorker();
    const owner = await token({ sub: "olga", scope: JOB_SCOPES, envs: ["*"] });
    const jobId = await createJob(a!.url, owner, { name: "sample.build", data: { lines: 5, durationMs: 0 } });
    const follower = await connect(a!.url, { token: owner });
    opened.push(follower);
    const subscribed = await request<Answer>(follower, "subscribe", { channel: `job:${jobId}` });
    assert.equal(subscribed.ok, true, JSON.stringify(subscribed));
    const presence = await presenceOf(follower, `job:${jobId}`);
    assert.deepEqual(
      presence.members!.map((m) => [m.user, m.connections]),
      [["olga", 1]],
    );
  });
});

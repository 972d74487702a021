/**
 * History and recovery (docs/protocol.md, "Requests", "Deliveries", docs/architecture.md "Recovery lives in Redis"):
 * `subscribe` with `history` and `since`, epochs, snapshots, recovery on another replica
 * after a SIGKILL, and pause/resume.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ChannelEvent, SubscribeOk } from "../../src/contracts/events.js";
import {
  connect,
  httpPublish,
  nextEvent,
  recordEvents,
  request,
  token,
  waitUntil,
  type TestSocket,
  type SubscribeAnswer,
} from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import type { GatewayProcess } from "../support/gateway-process.js";
import { range } from "../support/util.js";

const LIMITS_OFF = {
  ROOMCAST_RATE_LIMIT: "0",
  ROOMCAST_MAX_CONNECTIONS_PER_IP: "0",
  ROOMCAST_MAX_CONNECTIONS_PER_USER: "0",
  ROOMCAST_MAX_CONNECTIONS_PER_ENV: "0",
};

function okAnswer(answer: SubscribeAnswer): SubscribeOk & { ok: true } {
  assert.equal(answer.ok, true, `subscribe failed: ${JSON.stringify(answer)}`);
  return answer as SubscribeOk & { ok: true };
}

function offsets(events: readonly ChannelEvent[]): number[] {
  return events.map((e) => e.offset);
}

describe("history and recovery", () => {
  let cluster: TestCluster;
  /** Default settings. */
  let main: GatewayProcess;
  /** A second replica with default settings. */
  let other: GatewayProcess;
  /** ROOMCAST_HISTORY_SIZE=5. */
  let small: GatewayProcess;
  /** ROOMCAST_HISTORY_TTL_S=1. */
  let shortLived: GatewayProcess;
  let publisher: string;
  const sockets: TestSocket[] = [];

  before(async () => {
    cluster = await startCluster({ replicas: 2, env: LIMITS_OFF });
    [main, other] = cluster.gateways as [GatewayProcess, GatewayProcess];
    small = await cluster.addGateway({ ROOMCAST_HISTORY_SIZE: "5" });
    shortLived = await cluster.addGateway({ ROOMCAST_HISTORY_TTL_S: "1" });
    publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
  });

  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
  });

  async function client(
    gateway: GatewayProcess,
    sub: string,
    extra: { envs?: string[]; scope?: string } = {},
  ): Promise<TestSocket> {
    const socket = await connect(gateway.url, { token: await token({ sub, ...extra }) });
    sockets.push(socket);
    return socket;
  }

  /** Publishes `count` events one after the other; returns the 202 bodies. */
  async function publishMany(
    gateway: GatewayProcess,
    channel: string,
    count: number,
    from = 1,
  ): Promise<{ offset: number; epoch: string; id: string }[]> {
    const results = [];
    for (let i = 0; i < count; i++) {
      const res = await httpPublish(gateway.url, publisher, channel, { type: "n", data: { n: from + i } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      results.push(res.body as { offset: number; epoch: string; id: string });
    }
    return results;
  }

  async function subscribe(socket: TestSocket, payload: Record<string, unknown>): Promise<SubscribeOk & { ok: true }> {
    return okAnswer(await request<SubscribeAnswer>(socket, "subscribe", payload));
  }

  it("history: n returns the last n events in order, fewer when fewer exist, and at most the history size", async () => {
    const published = await publishMany(main, "user:hist", 10);
    const epoch = published[0]!.epoch;
    const socket = await client(other, "hist");

    const last3 = await subscribe(socket, { channel: "user:hist", history: 3 });
    assert.equal(last3.channel, "user:hist");
    assert.equal(last3.offset, 10);
    assert.equal(last3.epoch, epoch);
    assert.equal(last3.recovered, false);
    assert.deepEqual(offsets(last3.events), [8, 9, 10]);
    assert.deepEqual(
      last3.events.map((e) => e.id),
      published.slice(7).map((p) => p.id),
    );
    assert.deepEqual(
      last3.events.map((e) => e.data),
      [{ n: 8 }, { n: 9 }, { n: 10 }],
    );
    for (const e of last3.events) {
      assert.equal(e.channel, "user:hist");
      assert.equal(e.epoch, epoch);
      assert.equal(e.type, "n");
      assert.equal(e.priority, "normal");
      assert.equal(typeof e.ts, "number");
    }

    // Subscribing again is not an error and answers the same shape.
    const all = await subscribe(socket, { channel: "user:hist", history: 50 });
    assert.deepEqual(offsets(all.events), range(1, 10));
    assert.equal(all.offset, 10);

    const none = await subscribe(socket, { channel: "user:hist" });
    assert.deepEqual(none.events, []);
    assert.equal(none.offset, 10);

    // A replica with ROOMCAST_HISTORY_SIZE=5 keeps and answers at most 5.
    await publishMany(small, "user:hist-small", 8);
    const onSmall = await client(small, "hist-small");
    const capped = await subscribe(onSmall, { channel: "user:hist-small", history: 100 });
    assert.equal(capped.offset, 8);
    assert.deepEqual(offsets(capped.events), [4, 5, 6, 7, 8]);
    // Its reads are capped too, even where history holds more (written by a default replica).
    const cappedRead = await subscribe(await client(small, "hist"), { channel: "user:hist", history: 100 });
    assert.deepEqual(offsets(cappedRead.events), [6, 7, 8, 9, 10]);
  });

  it("since {offset, epoch} returns exactly the events after offset, recovered; at the top none; wrong epoch or future offset not recovered", async () => {
    const published = await publishMany(main, "user:since", 10);
    const epoch = published[0]!.epoch;
    const socket = await client(other, "since");

    const after4 = await subscribe(socket, { channel: "user:since", since: { offset: 4, epoch } });
    assert.equal(after4.recovered, true);
    assert.equal(after4.offset, 10);
    assert.equal(after4.epoch, epoch);
    assert.deepEqual(offsets(after4.events), range(5, 10));
    assert.deepEqual(
      after4.events.map((e) => e.id),
      published.slice(4).map((p) => p.id),
    );

    const fromZero = await subscribe(socket, { channel: "user:since", since: { offset: 0, epoch } });
    assert.equal(fromZero.recovered, true);
    assert.deepEqual(offsets(fromZero.events), range(1, 10));

    const atTop = await subscribe(socket, { channel: "user:since", since: { offset: 10, epoch } });
    assert.equal(atTop.recovered, true);
    assert.equal(atTop.offset, 10);
    assert.deepEqual(atTop.events, []);

    const wrongEpoch = await subscribe(socket, { channel: "user:since", since: { offset: 4, epoch: "not-the-epoch" } });
    assert.equal(wrongEpoch.recovered, false);
    assert.equal(wrongEpoch.epoch, epoch);
    assert.equal(wrongEpoch.offset, 10);

    const future = await subscribe(socket, { channel: "user:since", since: { offset: 11, epoch } });
    assert.equal(future.recovered, false);
    assert.equal(future.offset, 10);

    // After a recovery the subscription continues live right after the top.
    const seen = recordEvents(socket);
    await subscribe(socket, { channel: "user:since", since: { offset: 10, epoch } });
    const next = await publishMany(main, "user:since", 1, 11);
    await waitUntil(() => (seen.get("user:since")?.length ?? 0) >= 1, 5000, "the live event");
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(offsets(seen.get("user:since")!), [11]);
    assert.equal(seen.get("user:since")![0]!.id, next[0]!.id);
  });

  it("a gap older than history is not recovered (ROOMCAST_HISTORY_SIZE=5)", async () => {
    const published = await publishMany(small, "user:gap", 20);
    const epoch = published[0]!.epoch;
    const socket = await client(small, "gap");

    const tooOld = await subscribe(socket, { channel: "user:gap", since: { offset: 2, epoch } });
    assert.equal(tooOld.recovered, false);
    assert.equal(tooOld.offset, 20);
    assert.equal(tooOld.epoch, epoch);

    // History holds 16..20: since 15 is the oldest position still recoverable, 14 is not.
    const edge = await subscribe(socket, { channel: "user:gap", since: { offset: 15, epoch } });
    assert.equal(edge.recovered, true);
    assert.deepEqual(offsets(edge.events), range(16, 20));
    const pastEdge = await subscribe(socket, { channel: "user:gap", since: { offset: 14, epoch } });
    assert.equal(pastEdge.recovered, false);

    // A not-recovered answer with history still hands out what history holds.
    const withHistory = await subscribe(socket, { channel: "user:gap", since: { offset: 2, epoch }, history: 100 });
    assert.equal(withHistory.recovered, false);
    assert.deepEqual(offsets(withHistory.events), range(16, 20));
  });

  it("never answers recovered with a silent gap when history holds more than this replica reads at once", async () => {
    // Written by a default replica (history 1000), read by one with ROOMCAST_HISTORY_SIZE=5,
    // as during a rolling change of the setting.
    const published = await publishMany(main, "user:mixed", 12);
    const epoch = published[0]!.epoch;
    const socket = await client(small, "mixed");
    const answer = await subscribe(socket, { channel: "user:mixed", since: { offset: 2, epoch } });
    assert.equal(answer.offset, 12);
    if (answer.recovered) {
      assert.deepEqual(
        offsets(answer.events),
        range(3, 12),
        "recovered: true, but the answer's events stop before its offset",
      );
    }
    assert.equal(answer.recovered, true, "history holds every missed event");
  });

  it("resume replays everything missed even when history holds more than this replica reads at once", async () => {
    const socket = await client(small, "resumer");
    const seen = recordEvents(socket);
    const channel = "user:resumer";
    await subscribe(socket, { channel });
    const paused = await request<{ ok: boolean }>(socket, "control", { channel, action: "pause" });
    assert.equal(paused.ok, true);
    const published = await publishMany(main, channel, 12);
    const resumed = await request<{ ok: boolean }>(socket, "control", { channel, action: "resume" });
    assert.equal(resumed.ok, true);
    await waitUntil(() => (seen.get(channel)?.length ?? 0) >= 12, 5000, "all 12 replayed events");
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(offsets(seen.get(channel)!), range(1, 12));
    assert.deepEqual(
      seen.get(channel)!.map((e) => e.id),
      published.map((p) => p.id),
    );
  });

  it("after history expires (ROOMCAST_HISTORY_TTL_S=1) a new publish starts a new epoch and the old epoch is not recovered", async () => {
    const before = await publishMany(shortLived, "user:ttl", 3);
    const oldEpoch = before[0]!.epoch;
    assert.ok(before.every((p) => p.epoch === oldEpoch));
    await new Promise((r) => setTimeout(r, 2500));
    const [fresh] = await publishMany(shortLived, "user:ttl", 1, 4);
    assert.notEqual(fresh!.epoch, oldEpoch, "history expired but the epoch did not change");
    assert.equal(fresh!.offset, 1, "a new epoch starts at offset 1");

    const socket = await client(shortLived, "ttl");
    const answer = await subscribe(socket, { channel: "user:ttl", since: { offset: 3, epoch: oldEpoch }, history: 10 });
    assert.equal(answer.recovered, false);
    assert.equal(answer.epoch, fresh!.epoch);
    assert.equal(answer.offset, 1);
    assert.deepEqual(offsets(answer.events), [1]);
    assert.equal(answer.events[0]!.id, fresh!.id);
  });

  it("env:<id>:status keeps its newest event's data as snapshot in the subscribe answer", async () => {
    for (const status of ["starting", "running", "degraded"]) {
      const res = await httpPublish(main.url, publisher, "env:snap1:status", {
        type: "status",
        data: { status, cpu: status.length },
      });
      assert.equal(res.status, 202);
    }
    const socket = await client(other, "watcher", { envs: ["snap1"], scope: "env:read" });
    const answer = await subscribe(socket, { channel: "env:snap1:status" });
    assert.deepEqual(answer.snapshot, { status: "degraded", cpu: 8 });
    assert.equal(answer.offset, 3);

    const withSince = await subscribe(socket, {
      channel: "env:snap1:status",
      since: { offset: 3, epoch: answer.epoch },
    });
    assert.equal(withSince.recovered, true);
    assert.deepEqual(withSince.snapshot, { status: "degraded", cpu: 8 });

    // The logs stream keeps no snapshot.
    await httpPublish(main.url, publisher, "env:snap1:logs", { type: "log", data: { line: "x" } });
    const logs = await subscribe(socket, { channel: "env:snap1:logs" });
    assert.equal(logs.snapshot, undefined);
    assert.equal("snapshot" in logs, false);
  });

  it("recovers exactly the missed events on another replica after the client's replica is SIGKILLed, then continues live", async () => {
    const doomed = await cluster.addGateway(LIMITS_OFF);
    const survivor = other;
    const channel = "user:survivor";
    const ids = new Map<number, string>();
    const publishNext = async (n: number) => {
      const res = await httpPublish(survivor.url, publisher, channel, { type: "n", data: { n } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      ids.set(res.body.offset as number, res.body.id as string);
      return res.body as { offset: number; epoch: string };
    };

    // Session 1 on the doomed replica.
    const first = await client(doomed, "survivor");
    const firstSeen = recordEvents(first);
    const initial = await subscribe(first, { channel });
    assert.equal(initial.offset, 0);
    for (let n = 1; n <= 10; n++) await publishNext(n);
    await waitUntil(() => (firstSeen.get(channel)?.length ?? 0) >= 10, 5000, "the first 10 events");

    const disconnected = nextEvent<string>(first, "disconnect", 10_000);
    await doomed.kill();
    assert.equal(doomed.process.signalCode, "SIGKILL");
    await disconnected;

    // Published while the client has no connection at all.
    for (let n = 11; n <= 25; n++) await publishNext(n);
    const beforeKill = [...(firstSeen.get(channel) ?? [])];
    assert.deepEqual(offsets(beforeKill), range(1, 10));
    const last = beforeKill[beforeKill.length - 1]!;

    // Session 2 on the survivor, while publishing goes on.
    const second = await client(survivor, "survivor");
    const secondSeen = recordEvents(second);
    let publishing = true;
    let n = 26;
    const background = (async () => {
      while (publishing) await publishNext(n++);
    })();
    await waitUntil(() => n > 30, 5000, "publishing to go on");
    const recovered = await subscribe(second, { channel, since: { offset: last.offset, epoch: last.epoch } });
    publishing = false;
    await background;
    // And some certainly after the answer.
    for (let i = 0; i < 5; i++) await publishNext(n++);
    const total = n - 1;

    assert.equal(recovered.recovered, true);
    assert.equal(recovered.epoch, last.epoch);
    assert.ok(recovered.offset >= 25);
    assert.deepEqual(
      offsets(recovered.events),
      range(11, recovered.offset),
      "the answer holds exactly the missed events",
    );
    await waitUntil(
      () => recovered.events.length + (secondSeen.get(channel)?.length ?? 0) >= total - 10,
      5000,
      "the live events",
    );
    await new Promise((r) => setTimeout(r, 200));
    const live = secondSeen.get(channel) ?? [];
    assert.ok(live.length > 0, "no live event after the recovery");
    assert.equal(live[0]!.offset, recovered.offset + 1, "the live events do not start right after the answer");

    const everything = [...beforeKill, ...recovered.events, ...live];
    assert.deepEqual(offsets(everything), range(1, total), "every event exactly once, in order");
    assert.deepEqual(
      everything.map((e) => e.id),
      range(1, total).map((o) => ids.get(o)),
    );
    assert.deepEqual(
      everything.map((e) => (e.data as { n: number }).n),
      range(1, total),
    );
  });

  it("pause stops deliveries, resume replays what was published meanwhile in order, then live continues", async () => {
    const socket = await client(main, "pauser", { envs: ["pause1"], scope: "env:read" });
    const seen = recordEvents(socket);
    const channel = "env:pause1:events";
    // A second channel on the same connection is the barrier: pub/sub keeps publish order
    // across channels, so once its event is here every earlier one has reached the replica.
    const barrier = "env:pause1:logs";
    await subscribe(socket, { channel });
    await subscribe(socket, { channel: barrier });
    const ids: string[] = [];
    const publishTo = async (ch: string, n: number) => {
      const res = await httpPublish(other.url, publisher, ch, { type: "n", data: { n } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      if (ch === channel) ids[(res.body.offset as number) - 1] = res.body.id as string;
    };
    const barrierCount = () => seen.get(barrier)?.length ?? 0;

    for (let n = 1; n <= 5; n++) await publishTo(channel, n);
    await waitUntil(() => (seen.get(channel)?.length ?? 0) === 5, 5000, "the first 5 events");

    const paused = await request<{ ok: boolean; channel: string; paused: boolean }>(socket, "control", {
      channel,
      action: "pause",
    });
    assert.equal(paused.ok, true, JSON.stringify(paused));
    assert.equal(paused.channel, channel);
    assert.equal(paused.paused, true);

    for (let n = 6; n <= 15; n++) await publishTo(channel, n);
    await publishTo(barrier, 1);
    await waitUntil(() => barrierCount() === 1, 5000, "the barrier event");
    assert.equal(seen.get(channel)!.length, 5, "events were delivered while paused");

    const resumed = await request<{ ok: boolean; channel: string; paused: boolean }>(socket, "control", {
      channel,
      action: "resume",
    });
    assert.equal(resumed.ok, true, JSON.stringify(resumed));
    assert.equal(resumed.paused, false);
    // Live publishes race the replay.
    for (let n = 16; n <= 25; n++) await publishTo(channel, n);
    await publishTo(barrier, 2);
    await waitUntil(
      () => barrierCount() === 2 && (seen.get(channel)?.length ?? 0) >= 25,
      5000,
      "replay and live events",
    );
    await new Promise((r) => setTimeout(r, 100));

    const events = seen.get(channel)!;
    assert.deepEqual(offsets(events), range(1, 25), "every event exactly once, in order");
    assert.deepEqual(
      events.map((e) => e.id),
      ids,
    );
  });

  it("a pause sent right behind a resume holds: nothing is delivered after its answer until the next resume", async () => {
    const socket = await client(main, "flip", { envs: ["flip1"], scope: "env:read" });
    const channel = "env:flip1:events";
    const barrier = "env:flip1:logs";
    const seen = recordEvents(socket);
    await subscribe(socket, { channel });
    await subscribe(socket, { channel: barrier });
    const publishTo = async (ch: string, n: number) => {
      const res = await httpPublish(other.url, publisher, ch, { type: "n", data: { n } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
    };
    const count = () => seen.get(channel)?.length ?? 0;

    assert.equal((await request<{ ok: boolean }>(socket, "control", { channel, action: "pause" })).ok, true);
    for (let n = 1; n <= 10; n++) await publishTo(channel, n);
    // Resume and pause back to back: the pause arrives while the resume replays from history.
    let countAtPause = -1;
    const resumed = request<{ ok: boolean; paused: boolean }>(socket, "control", { channel, action: "resume" });
    const paused = new Promise<{ ok: boolean; paused: boolean }>((resolve) => {
      socket.emit("control", { channel, action: "pause" }, ((answer: { ok: boolean; paused: boolean }) => {
        countAtPause = count();
        resolve(answer);
      }) as never);
    });
    assert.equal((await resumed).ok, true);
    const pauseAnswer = await paused;
    assert.equal(pauseAnswer.ok, true);
    assert.equal(pauseAnswer.paused, true);

    for (let n = 11; n <= 15; n++) await publishTo(channel, n);
    await publishTo(barrier, 1);
    await waitUntil(() => (seen.get(barrier)?.length ?? 0) === 1, 5000, "the barrier event");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(count(), countAtPause, `${count() - countAtPause} events were delivered after the pause was answered`);

    assert.equal((await request<{ ok: boolean }>(socket, "control", { channel, action: "resume" })).ok, true);
    await waitUntil(() => count() >= 15, 5000, "the replay");
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(offsets(seen.get(channel)!), range(1, 15));
  });
});

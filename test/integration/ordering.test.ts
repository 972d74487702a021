/**
 * Ordering with concurrent publishers on different replicas (docs/protocol.md, "Deliveries"): every
 * subscriber, whichever replica and transport it is on, gets every event of a channel once,
 * in offset order, and the same sequence as every other subscriber.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Socket } from "socket.io-client";
import type { ChannelEvent, SubscribeOk } from "../../src/contracts/events.js";
import { connect, httpPublish, recordEvents, request, token, waitUntil, type TestSocket } from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";

const CONFIG_YAML = `
namespaces:
  chat:
    subscribe: { match: any }
    publish: { match: any }
`;

/** chat:alpha gets HTTP and client publishes mixed; chat:beta HTTP publishes only. */
const ALPHA = "chat:alpha";
const BETA = "chat:beta";
const N_ALPHA = 600;
const N_BETA = 600;
/** The last alpha publishes wait until the mid-burst subscribers have their answers. */
const HELD_BACK = 100;
const SUBSCRIBERS_PER_REPLICA = 4;
const HTTP_WORKERS_PER_REPLICA = 6;
const CLIENT_WORKERS_PER_REPLICA = 3;

type Route = "http" | "client";
interface Job {
  channel: string;
  seq: number;
  route: Route;
  replica: number;
}
interface Published {
  channel: string;
  seq: number;
  route: Route;
  offset: number;
  epoch: string;
  id?: string;
}

interface Subscriber {
  socket: TestSocket;
  replica: number;
  transport: "websocket" | "polling";
  seen: Map<string, ChannelEvent[]>;
}

interface MidSubscriber extends Subscriber {
  triggerAt: number;
  answer?: SubscribeOk & { ok: true };
  /** Live events of alpha that arrived before the subscribe answer (must stay 0). */
  earlyEvents: number;
}

function assertGapFree(events: readonly ChannelEvent[], n: number, what: string): void {
  assert.equal(events.length, n, `${what}: expected ${n} events, got ${events.length}`);
  const epoch = events[0]?.epoch;
  events.forEach((e, i) => {
    assert.equal(e.offset, i + 1, `${what}: event #${i} has offset ${e.offset}, expected ${i + 1}`);
    assert.equal(e.epoch, epoch, `${what}: epoch changed at offset ${e.offset}`);
  });
  assert.equal(new Set(events.map((e) => e.id)).size, n, `${what}: duplicate ids`);
}

describe("ordering with concurrent publishers on three replicas", () => {
  let cluster: TestCluster;
  let configDir: string;
  const sockets: TestSocket[] = [];

  before(async () => {
    configDir = mkdtempSync(join(tmpdir(), "roomcast-ordering-"));
    const configPath = join(configDir, "roomcast.yaml");
    writeFileSync(configPath, CONFIG_YAML);
    cluster = await startCluster({
      replicas: 3,
      env: {
        ROOMCAST_CONFIG: configPath,
        ROOMCAST_RATE_LIMIT: "0",
        ROOMCAST_HTTP_RATE_LIMIT: "0",
        ROOMCAST_MAX_CONNECTIONS_PER_IP: "0",
        ROOMCAST_MAX_CONNECTIONS_PER_USER: "0",
      },
    });
  });

  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  it("delivers every event exactly once, in offset order, identically at every subscriber, with a clean seam for mid-burst subscribers", async () => {
    const gateways = cluster.gateways;
    assert.equal(gateways.length, 3);

    // Subscribers on every replica: websocket everywhere, one on polling.
    const subscribers: Subscriber[] = [];
    for (let r = 0; r < gateways.length; r++) {
      for (let i = 0; i < SUBSCRIBERS_PER_REPLICA; i++) {
        const transport = r === 1 && i === 0 ? "polling" : "websocket";
        const socket = await connect(gateways[r]!.url, {
          token: await token({ sub: `sub-${r}-${i}` }),
          transports: [transport],
        });
        sockets.push(socket);
        const seen = recordEvents(socket);
        for (const channel of [ALPHA, BETA]) {
          const answer = await request<SubscribeOk & { ok: boolean }>(socket, "subscribe", { channel });
          assert.equal(answer.ok, true, `subscribe ${channel}: ${JSON.stringify(answer)}`);
          assert.equal(answer.offset, 0);
          assert.deepEqual(answer.events, []);
        }
        subscribers.push({ socket, replica: r, transport, seen });
      }
    }
    assert.equal(subscribers.filter((s) => s.transport === "polling").length, 1);

    // Subscribers that subscribe to alpha in the middle of the burst, one per replica.
    const mids: MidSubscriber[] = [];
    for (let r = 0; r < gateways.length; r++) {
      const socket = await connect(gateways[r]!.url, { token: await token({ sub: `mid-${r}` }) });
      sockets.push(socket);
      const mid: MidSubscriber = {
        socket,
        replica: r,
        transport: "websocket",
        seen: recordEvents(socket),
        triggerAt: 120 + r * 130,
        earlyEvents: 0,
      };
      socket.on("event", (e) => {
        if (e.channel === ALPHA && !mid.answer) mid.earlyEvents++;
      });
      mids.push(mid);
    }

    // Client publishers, one per replica.
    const publishers: TestSocket[] = [];
    for (let r = 0; r < gateways.length; r++) {
      const socket = await connect(gateways[r]!.url, { token: await token({ sub: `publisher-${r}` }) });
      sockets.push(socket);
      publishers.push(socket);
    }
    const httpToken = await token({ sub: "backend", scope: "publish", envs: ["*"] });

    // The jobs: alpha mixes HTTP and client publishes from all replicas, beta is HTTP only.
    const jobsByRoute: Record<Route, Job[][]> = { http: gateways.map(() => []), client: gateways.map(() => []) };
    for (let seq = 0; seq < Math.max(N_ALPHA, N_BETA); seq++) {
      if (seq < N_ALPHA) {
        const route: Route = seq % 3 === 1 ? "client" : "http";
        jobsByRoute[route][(seq * 7) % 3]!.push({ channel: ALPHA, seq, route, replica: (seq * 7) % 3 });
      }
      if (seq < N_BETA) jobsByRoute.http[seq % 3]!.push({ channel: BETA, seq, route: "http", replica: seq % 3 });
    }

    let releaseGate!: () => void;
    const gate = new Promise<void>((resolve) => (releaseGate = resolve));
    let alphaIssued = 0;
    let alphaDone = 0;
    const published: Published[] = [];

    const midSubscribes = mids.map(async (mid) => {
      await waitUntil(() => alphaDone >= mid.triggerAt, 30_000, `${mid.triggerAt} alpha publishes`);
      // The ack callback marks the answer synchronously, before any later packet is handled.
      const answer = await new Promise<SubscribeOk & { ok: boolean }>((resolve, reject) => {
        (mid.socket as unknown as Socket)
          .timeout(5000)
          .emit(
            "subscribe",
            { channel: ALPHA, history: 1000 },
            (err: Error | null, value: SubscribeOk & { ok: boolean }) => {
              if (err) return reject(err);
              if (value.ok) mid.answer = value as SubscribeOk & { ok: true };
              resolve(value);
            },
          );
      });
      assert.equal(answer.ok, true, `mid-burst subscribe: ${JSON.stringify(answer)}`);
    });
    void Promise.allSettled(midSubscribes).then(() => releaseGate());

    const publishOne = async (job: Job): Promise<void> => {
      if (job.channel === ALPHA) {
        if (alphaIssued >= N_ALPHA - HELD_BACK) await gate;
        alphaIssued++;
      }
      const data = { seq: job.seq, via: job.route, replica: job.replica };
      if (job.route === "http") {
        const res = await httpPublish(gateways[job.replica]!.url, httpToken, job.channel, { type: "msg", data });
        assert.equal(res.status, 202, `HTTP publish: ${JSON.stringify(res.body)}`);
        published.push({
          channel: job.channel,
          seq: job.seq,
          route: "http",
          offset: res.body.offset as number,
          epoch: res.body.epoch as string,
          id: res.body.id as string,
        });
      } else {
        const answer = await request<{ ok: boolean; offset: number; epoch: string; channel: string }>(
          publishers[job.replica]!,
          "publish",
          {
            channel: job.channel,
            type: "msg",
            data,
          },
        );
        assert.equal(answer.ok, true, `client publish: ${JSON.stringify(answer)}`);
        assert.equal(answer.channel, job.channel);
        published.push({
          channel: job.channel,
          seq: job.seq,
          route: "client",
          offset: answer.offset,
          epoch: answer.epoch,
        });
      }
      if (job.channel === ALPHA) alphaDone++;
    };

    const worker = async (queue: Job[]) => {
      for (let job = queue.shift(); job; job = queue.shift()) await publishOne(job);
    };

    const started = Date.now();
    const workers: Promise<void>[] = [];
    for (let r = 0; r < gateways.length; r++) {
      for (let w = 0; w < HTTP_WORKERS_PER_REPLICA; w++) workers.push(worker(jobsByRoute.http[r]!));
      for (let w = 0; w < CLIENT_WORKERS_PER_REPLICA; w++) workers.push(worker(jobsByRoute.client[r]!));
    }
    await Promise.all(workers);
    await Promise.all(midSubscribes);

    const counts = new Map([
      [ALPHA, N_ALPHA],
      [BETA, N_BETA],
    ]);
    const everyone: Subscriber[] = [...subscribers, ...mids];
    await waitUntil(
      () =>
        subscribers.every((s) => [...counts].every(([ch, n]) => (s.seen.get(ch)?.length ?? 0) >= n)) &&
        mids.every((m) => (m.answer?.events.length ?? 0) + (m.seen.get(ALPHA)?.length ?? 0) >= N_ALPHA),
      30_000,
      "every delivery",
    );
    const elapsedS = (Date.now() - started) / 1000;
    const deliveries = subscribers.length * (N_ALPHA + N_BETA) + mids.length * N_ALPHA;
    console.log(
      `ordering: ${N_ALPHA + N_BETA} events from ${workers.length} concurrent publishers on 3 replicas, ` +
        `${deliveries} deliveries to ${everyone.length} subscribers in ${elapsedS.toFixed(2)} s: ~${Math.round(deliveries / elapsedS)} deliveries/s`,
    );
    // Anything late (a duplicate) would arrive right behind the last event.
    await new Promise((r) => setTimeout(r, 300));

    // Publishers got each offset once: a permutation of 1..N, one epoch.
    for (const [channel, n] of counts) {
      const mine = published.filter((p) => p.channel === channel);
      assert.equal(mine.length, n);
      assert.deepEqual(
        mine.map((p) => p.offset).sort((a, b) => a - b),
        Array.from({ length: n }, (_, i) => i + 1),
        `${channel}: publisher offsets are not a permutation of 1..${n}`,
      );
      assert.equal(new Set(mine.map((p) => p.epoch)).size, 1, `${channel}: more than one epoch`);
    }
    assert.ok(published.some((p) => p.channel === ALPHA && p.route === "client"));
    assert.ok(published.some((p) => p.channel === ALPHA && p.route === "http"));

    for (const [channel, n] of counts) {
      const byOffset = new Map(published.filter((p) => p.channel === channel).map((p) => [p.offset, p]));
      const reference = subscribers[0]!.seen.get(channel)!;
      assertGapFree(reference, n, `${channel} at sub-0-0`);
      // The reference sequence matches what the publishers were told.
      for (const e of reference) {
        const p = byOffset.get(e.offset)!;
        assert.equal(e.epoch, p.epoch);
        assert.equal((e.data as { seq: number }).seq, p.seq, `${channel}: offset ${e.offset} carries the wrong event`);
        if (p.id) assert.equal(e.id, p.id);
      }
      const referenceIds = reference.map((e) => e.id);
      for (const s of subscribers) {
        const events = s.seen.get(channel) ?? [];
        const what = `${channel} at a ${s.transport} subscriber on replica ${s.replica}`;
        assertGapFree(events, n, what);
        assert.deepEqual(
          events.map((e) => e.id),
          referenceIds,
          `${what}: sequence differs from the reference`,
        );
      }
    }

    // Mid-burst subscribers: the answer's history, then live events, no gap and no duplicate at the seam.
    const alphaIds = subscribers[0]!.seen.get(ALPHA)!.map((e) => e.id);
    for (const mid of mids) {
      const answer = mid.answer!;
      const what = `mid-burst subscriber on replica ${mid.replica}`;
      assert.equal(mid.earlyEvents, 0, `${what}: live events arrived before the subscribe answer`);
      assert.equal(answer.recovered, false);
      assert.ok(answer.offset >= mid.triggerAt, `${what}: answer offset ${answer.offset} before the trigger`);
      assert.ok(
        answer.offset <= N_ALPHA - HELD_BACK,
        `${what}: answer offset ${answer.offset} after the held-back publishes`,
      );
      assert.deepEqual(
        answer.events.map((e) => e.offset),
        Array.from({ length: answer.offset }, (_, i) => i + 1),
        `${what}: the answer's events are not 1..${answer.offset}`,
      );
      const live = mid.seen.get(ALPHA) ?? [];
      assert.ok(live.length >= HELD_BACK, `${what}: only ${live.length} live events`);
      assert.equal(live[0]!.offset, answer.offset + 1, `${what}: the first live event is not right after the answer`);
      const combined = [...answer.events, ...live];
      assertGapFree(combined, N_ALPHA, what);
      assert.deepEqual(
        combined.map((e) => e.id),
        alphaIds,
        `${what}: sequence differs from the reference`,
      );
      assert.equal(mid.seen.get(BETA), undefined, `${what}: got events of a channel it never subscribed to`);
    }
  });
});

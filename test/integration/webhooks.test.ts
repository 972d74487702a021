/**
 * Presence webhooks (docs/protocol.md, "Presence") from real workers to a real HTTP receiver:
 * each occupancy change once, in order per channel, signed, retried while the receiver fails.
 */
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  WEBHOOK_EVENT_HEADER,
  WEBHOOK_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  type WebhookBody,
} from "../../src/contracts/webhooks.js";
import type { Answer } from "../support/answers.js";
import { connect, request, token, waitUntil, type TestSocket } from "../support/clients.js";
import { LIMITS_OFF, redisCommand, startCluster, type TestCluster } from "../support/cluster.js";
import { sleep } from "../support/util.js";

const SECRET = "webhook-secret-of-at-least-32-bytes!!";
const DEBOUNCE_S = 1;

interface Received {
  id: string;
  event: string;
  body: WebhookBody;
  signed: boolean;
  accepted: boolean;
}

/** An HTTP receiver that records every POST and answers 500 to the first `failFirst` of them. */
async function startReceiver(failFirst: number): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const expected = Buffer.from(`sha256=${createHmac("sha256", SECRET).update(raw).digest("hex")}`);
      const given = Buffer.from(String(req.headers[WEBHOOK_SIGNATURE_HEADER] ?? ""));
      const accepted = received.length >= failFirst;
      received.push({
        id: String(req.headers[WEBHOOK_ID_HEADER]),
        event: String(req.headers[WEBHOOK_EVENT_HEADER]),
        body: JSON.parse(raw.toString()) as WebhookBody,
        signed: given.length === expected.length && timingSafeEqual(given, expected),
        accepted,
      });
      res.writeHead(accepted ? 204 : 500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received, server };
}

/** What the receiver accepted for one channel, in arrival order: `event user`. */
function acceptedFor(received: readonly Received[], channel: string): string[] {
  return received
    .filter((r) => r.accepted && r.body.channel === channel)
    .map((r) => (r.body.user === undefined ? r.body.event : `${r.body.event} ${r.body.user}`));
}

/** One replica and `workers` workers that POST every presence change (no debounce) to the receiver. */
function startHookCluster(
  receiverUrl: string,
  workers: number,
  env: Record<string, string> = {},
): Promise<TestCluster> {
  return startCluster({
    replicas: 1,
    workers,
    env: {
      ...LIMITS_OFF,
      ROOMCAST_PRESENCE_DEBOUNCE_S: "0",
      ROOMCAST_WEBHOOK_URLS: receiverUrl,
      ROOMCAST_WEBHOOK_SECRET: SECRET,
      ...env,
    },
  });
}

/** A connection of user `sub`, subscribed to the environment channel. */
async function subscribed(url: string, sub: string, channel: string): Promise<TestSocket> {
  const socket = await connect(url, { token: await token({ sub, envs: [channel.split(":")[1]!], scope: "env:read" }) });
  const answer = await request<Answer>(socket, "subscribe", { channel });
  assert.equal(answer.ok, true, JSON.stringify(answer));
  return socket;
}

describe("presence webhooks", () => {
  let cluster: TestCluster;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const opened: TestSocket[] = [];

  const join = async (url: string, sub: string, channel: string) => {
    const socket = await subscribed(url, sub, channel);
    opened.push(socket);
    return socket;
  };

  before(async () => {
    receiver = await startReceiver(2);
    cluster = await startCluster({
      replicas: 2,
      workers: 2,
      env: {
        ...LIMITS_OFF,
        ROOMCAST_PRESENCE_DEBOUNCE_S: String(DEBOUNCE_S),
        ROOMCAST_PRESENCE_LEASE_S: "3",
        ROOMCAST_WEBHOOK_URLS: receiver.url,
        ROOMCAST_WEBHOOK_SECRET: SECRET,
      },
    });
  });
  after(async () => {
    for (const s of opened) s.close();
    await cluster.close();
    receiver.server.close();
  });

  it("delivers each change once, in order per channel, signed, and retries what the receiver refused", async () => {
    const [a, b] = cluster.gateways;
    const channels = ["env:hooks1:status", "env:hooks2:logs"];
    // Two channels side by side, on two replicas and two workers.
    await Promise.all(
      channels.map(async (channel) => {
        const alice = await join(a!.url, "alice", channel);
        const aliceTab2 = await join(b!.url, "alice", channel);
        const bob = await join(b!.url, "bob", channel);
        await sleep(300);
        alice.close();
        aliceTab2.close();
        await sleep((DEBOUNCE_S + 1) * 1000);
        bob.close();
      }),
    );
    const expected = [
      "channel_occupied",
      "member_added alice",
      "member_added bob",
      "member_removed alice",
      "member_removed bob",
      "channel_vacated",
    ];
    await waitUntil(
      () => channels.every((channel) => acceptedFor(receiver.received, channel).length >= expected.length),
      20_000,
      "every change accepted",
    );
    await sleep(1000);
    for (const channel of channels) assert.deepEqual(acceptedFor(receiver.received, channel), expected, channel);
    // Signed, each change delivered (accepted) once, and the two refused ones sent again later.
    assert.ok(
      receiver.received.every((r) => r.signed),
      "every POST carries a valid signature",
    );
    const acceptedIds = receiver.received.filter((r) => r.accepted).map((r) => r.id);
    assert.equal(new Set(acceptedIds).size, acceptedIds.length, "no change accepted twice");
    const refused = receiver.received.filter((r) => !r.accepted);
    assert.equal(refused.length, 2);
    for (const r of refused) assert.ok(acceptedIds.includes(r.id), `refused change ${r.id} was retried`);
    for (const r of receiver.received) assert.equal(r.event, r.body.event);
    // The counts after each change travel with it.
    const removed = receiver.received.find(
      (r) => r.accepted && r.body.event === "member_removed" && r.body.user === "bob",
    );
    assert.deepEqual(
      { users: removed!.body.users, connections: removed!.body.connections },
      { users: 0, connections: 0 },
    );
    assert.ok(Number.isInteger(removed!.body.ts));
  });

  it("reports the members of a SIGKILLed replica removed, once each, and the channel vacated", async () => {
    const victim = await cluster.addGateway();
    const channel = "env:hooks3:status";
    for (const user of ["carol", "dan"]) await join(victim.url, user, channel);
    await waitUntil(() => acceptedFor(receiver.received, channel).length >= 3, 10_000, "the joins");
    await victim.kill();
    await waitUntil(() => acceptedFor(receiver.received, channel).length >= 6, 15_000, "the removals");
    await sleep(1000);
    const changes = acceptedFor(receiver.received, channel);
    assert.deepEqual(changes.slice(0, 3), ["channel_occupied", "member_added carol", "member_added dan"]);
    assert.deepEqual(changes.slice(3, 5).sort(), ["member_removed carol", "member_removed dan"]);
    assert.deepEqual(changes.slice(5), ["channel_vacated"]);
  });
});

describe("presence webhooks: ROOMCAST_WEBHOOK_EVENTS", () => {
  it("sends only the events listed", async () => {
    const receiver = await startReceiver(0);
    const cluster = await startHookCluster(receiver.url, 1, {
      ROOMCAST_WEBHOOK_EVENTS: "channel_occupied,channel_vacated",
    });
    try {
      const channel = "env:hooks4:status";
      (await subscribed(cluster.gateways[0]!.url, "erin", channel)).close();
      await waitUntil(() => acceptedFor(receiver.received, channel).length >= 2, 10_000, "occupied and vacated");
      await sleep(500);
      assert.deepEqual(acceptedFor(receiver.received, channel), ["channel_occupied", "channel_vacated"]);
    } finally {
      await cluster.close();
      receiver.server.close();
    }
  });
});

describe("presence webhooks while no worker runs", () => {
  it("keeps one queued delivery per channel, however many changes; a worker that starts later sends them all, in order", async () => {
    const receiver = await startReceiver(0);
    const cluster = await startHookCluster(receiver.url, 0);
    try {
      const channels = ["env:idle1:status", "env:idle2:status", "env:idle3:logs"];
      const cycles = 15;
      // Each cycle is a join and a leave on every channel, in turns of their own: a queued job each, before.
      for (let i = 0; i < cycles; i++) {
        const sockets = await Promise.all(
          channels.map((channel) => subscribed(cluster.gateways[0]!.url, `user${i}`, channel)),
        );
        await sleep(50);
        for (const socket of sockets) socket.close();
        await sleep(50);
      }
      await sleep(500);
      const queue = "{rc:bull}:jobs-webhooks";
      const queued =
        Number(redisCommand(cluster.redis, "LLEN", `${queue}:wait`)) +
        Number(redisCommand(cluster.redis, "ZCARD", `${queue}:delayed`)) +
        Number(redisCommand(cluster.redis, "ZCARD", `${queue}:prioritized`));
      assert.equal(queued, channels.length, "one queued delivery per channel");

      await cluster.addWorker();
      const perCycle = (i: number) => [
        "channel_occupied",
        `member_added user${i}`,
        `member_removed user${i}`,
        "channel_vacated",
      ];
      const expected = Array.from({ length: cycles }, (_, i) => perCycle(i)).flat();
      await waitUntil(
        () => channels.every((channel) => acceptedFor(receiver.received, channel).length >= expected.length),
        20_000,
        "every change delivered",
      );
      await sleep(500);
      for (const channel of channels) assert.deepEqual(acceptedFor(receiver.received, channel), expected, channel);
    } finally {
      await cluster.close();
      receiver.server.close();
    }
  });
});

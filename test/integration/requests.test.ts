/**
 * docs/protocol.md, "Requests" (requests, their answers and errors) and 5 (channel names and who
 * may subscribe or publish), against a real two-replica cluster with a configured namespace.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ChannelEvent, FailureEvent } from "../../src/contracts/events.js";
import {
  httpPublish,
  nextEvent,
  recordEvents,
  request,
  token,
  waitUntil,
  type TestSocket,
  openAs,
} from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { writeChatConfig } from "../support/util.js";
import type { GatewayProcess } from "../support/gateway-process.js";
import { okAnswer, refusedWith, type Answer } from "../support/answers.js";

const SUBSCRIBE_OK_KEYS = ["channel", "epoch", "events", "offset", "ok", "recovered"];

describe("requests", () => {
  let cluster: TestCluster;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let limited: GatewayProcess;
  let dir: string;
  let publisher: string;
  const sockets: TestSocket[] = [];

  const open = (url: string, claims: Parameters<typeof token>[0]) => openAs(sockets, url, claims);

  async function publish(channel: string, type: string, data: unknown = {}): Promise<number> {
    const res = await httpPublish(a.url, publisher, channel, { type, data });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.offset as number;
  }

  const count = (seen: Map<string, ChannelEvent[]>, channel: string) => seen.get(channel)?.length ?? 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "roomcast-requests-test-"));
    const configFile = writeChatConfig(dir);
    cluster = await startCluster({ replicas: 2, env: { ROOMCAST_CONFIG: configFile } });
    [a, b] = cluster.gateways as [GatewayProcess, GatewayProcess];
    limited = await cluster.addGateway({ ROOMCAST_MAX_SUBSCRIPTIONS: "2" });
    publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
  });

  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe("validation (4400 bad_request)", () => {
    it("refuses bad channel names, naming the field, and the connection stays usable", async () => {
      const socket = await open(a.url, { sub: "val-a" });
      const seen = recordEvents(socket);
      const bad: unknown[] = [
        "nocolon",
        "UPPER:x",
        "user:",
        ":x",
        "user:has space",
        `user:${"x".repeat(300)}`,
        `${"n".repeat(33)}:x`,
        42,
        null,
        { name: "user:val-a" },
      ];
      for (const channel of bad) {
        for (const event of ["subscribe", "unsubscribe", "publish"]) {
          const payload = event === "publish" ? { channel, type: "t", data: 1 } : { channel };
          const error = refusedWith(await request<Answer>(socket, event, payload), 4400, "bad_request");
          assert.match(error.message, /channel/, `${event} ${JSON.stringify(channel)}: ${error.message}`);
          assert.equal(error.field, "channel");
        }
      }
      assert.equal(socket.connected, true);
      const answer = okAnswer(await request<Answer>(socket, "subscribe", { channel: "user:val-a" }));
      assert.deepEqual(Object.keys(answer).sort(), SUBSCRIBE_OK_KEYS);
      const offset = await publish("user:val-a", "after-errors");
      await waitUntil(() => count(seen, "user:val-a") === 1, 5000, "delivery");
      assert.equal(seen.get("user:val-a")![0]!.offset, offset);
    });

    it("refuses bad payloads, naming the field", async () => {
      const socket = await open(a.url, { sub: "val-b" });
      const cases: [string, unknown, RegExp, string][] = [
        ["subscribe", {}, /channel/, "channel"],
        ["subscribe", undefined, /payload/, "payload"],
        ["subscribe", "user:val-b", /payload/, "payload"],
        ["subscribe", { channel: "user:val-b", extra: true }, /extra/, "payload"],
        ["subscribe", { channel: "user:val-b", history: -1 }, /history/, "history"],
        ["subscribe", { channel: "user:val-b", history: 1.5 }, /history/, "history"],
        ["subscribe", { channel: "user:val-b", history: "5" }, /history/, "history"],
        ["subscribe", { channel: "user:val-b", since: { offset: 3 } }, /since\.epoch/, "since.epoch"],
        ["subscribe", { channel: "user:val-b", since: { offset: -1, epoch: "e" } }, /since\.offset/, "since.offset"],
        ["unsubscribe", {}, /channel/, "channel"],
        ["unsubscribe", { channel: "user:val-b", history: 1 }, /history/, "payload"],
        ["publish", { channel: "chat:val-b", data: 1 }, /type/, "type"],
        ["publish", { channel: "chat:val-b", type: "has space", data: 1 }, /type/, "type"],
        ["publish", { channel: "chat:val-b", type: "t" }, /data/, "data"],
        ["control", { channel: "user:val-b", action: "explode" }, /action/, "action"],
        ["refresh", {}, /token/, "token"],
        ["refresh", { token: "" }, /token/, "token"],
      ];
      for (const [event, payload, message, field] of cases) {
        const error = refusedWith(await request<Answer>(socket, event, payload), 4400, "bad_request");
        assert.match(error.message, message, `${event} ${JSON.stringify(payload)}: ${error.message}`);
        assert.equal(error.field, field, `${event} ${JSON.stringify(payload)}`);
      }
      assert.equal(socket.connected, true);
      okAnswer(await request<Answer>(socket, "subscribe", { channel: "user:val-b" }));
    });

    it("answers 4404 not_found for an unknown namespace", async () => {
      const socket = await open(a.url, { sub: "val-c" });
      const payloads: [string, unknown][] = [
        ["subscribe", { channel: "nope:x" }],
        ["subscribe", { channel: "nope:x", history: 5 }],
        ["publish", { channel: "nope:x", type: "t", data: 1 }],
      ];
      for (const [event, payload] of payloads) {
        const error = refusedWith(await request<Answer>(socket, event, payload), 4404, "not_found");
        assert.match(error.message, /nope/);
      }
    });

    it("sends the error of a request without ack as a failure event {event, channel, error}", async () => {
      const socket = await open(a.url, { sub: "val-d" });
      let failure = nextEvent<FailureEvent>(socket, "failure");
      socket.emit("subscribe", { channel: "user:someone-else" });
      let got = await failure;
      assert.deepEqual(Object.keys(got).sort(), ["channel", "error", "event"]);
      assert.equal(got.event, "subscribe");
      assert.equal(got.channel, "user:someone-else");
      assert.equal(got.error.code, 4403);
      assert.equal(got.error.reason, "forbidden");

      failure = nextEvent<FailureEvent>(socket, "failure");
      socket.emit("publish", { channel: "user:val-d", type: "t", data: 1 });
      got = await failure;
      assert.equal(got.event, "publish");
      assert.equal(got.channel, "user:val-d");
      assert.equal(got.error.code, 4403);

      // Without a channel in the request there is none in the failure.
      failure = nextEvent<FailureEvent>(socket, "failure");
      (socket as unknown as { emit(event: string, payload: unknown): void }).emit("subscribe", { history: 1 });
      got = await failure;
      assert.deepEqual(Object.keys(got).sort(), ["error", "event"]);
      assert.equal(got.event, "subscribe");
      assert.equal(got.error.code, 4400);
      assert.equal(got.error.reason, "bad_request");
      assert.match(got.error.message, /channel/);

      // A successful request without ack sends nothing back, and takes effect.
      const seen = recordEvents(socket);
      let failures = 0;
      socket.on("failure", () => failures++);
      socket.emit("subscribe", { channel: "user:val-d" });
      // Requests on one connection reach Redis in order: once a later acked one is answered, the ackless one is done.
      okAnswer(await request<Answer>(socket, "subscribe", { channel: "chat:val-d-barrier" }));
      const offset = await publish("user:val-d", "via-ackless-subscribe");
      await waitUntil(() => count(seen, "user:val-d") === 1, 5000, "delivery on an ackless subscription");
      assert.equal(seen.get("user:val-d")![0]!.offset, offset);
      assert.equal(failures, 0);
    });

    it("answers an unknown event sent with an ack 4400 naming it, and ignores one without ack", async () => {
      const socket = await open(a.url, { sub: "val-e" });
      const raw = socket as unknown as { emit(event: string, ...args: unknown[]): void };
      const error = refusedWith(
        await request<Answer>(socket, "frobnicate", { channel: "user:val-e" }),
        4400,
        "bad_request",
      );
      assert.match(error.message, /frobnicate/);
      assert.equal(error.event, "frobnicate");
      let failures = 0;
      socket.on("failure", () => failures++);
      raw.emit("frobnicate", { channel: "user:val-e" });
      raw.emit("another-unknown");
      const seen = recordEvents(socket);
      okAnswer(await request<Answer>(socket, "subscribe", { channel: "user:val-e" }));
      await publish("user:val-e", "still-fine");
      await waitUntil(() => count(seen, "user:val-e") === 1, 5000, "delivery");
      assert.equal(failures, 0);
      assert.equal(socket.connected, true);
    });
  });

  describe("who may subscribe (4403 forbidden, 4404 not_found)", () => {
    it("user channels: only the user, and another user never receives them", async () => {
      const alice = await open(a.url, { sub: "alice" });
      const bob = await open(b.url, { sub: "bob" });
      const seenAlice = recordEvents(alice);
      const seenBob = recordEvents(bob);
      const error = refusedWith(await request<Answer>(bob, "subscribe", { channel: "user:alice" }), 4403, "forbidden");
      assert.match(error.message, /user:alice/);
      // A prefix, a suffix or a different case is another user.
      refusedWith(await request<Answer>(bob, "subscribe", { channel: "user:bobby" }), 4403, "forbidden");
      refusedWith(await request<Answer>(bob, "subscribe", { channel: "user:Bob" }), 4403, "forbidden");
      okAnswer(await request<Answer>(alice, "subscribe", { channel: "user:alice" }));
      okAnswer(await request<Answer>(bob, "subscribe", { channel: "user:bob" }));
      await publish("user:alice", "secret", { pin: 1234 });
      await publish("user:bob", "marker");
      await waitUntil(
        () => count(seenAlice, "user:alice") === 1 && count(seenBob, "user:bob") === 1,
        5000,
        "deliveries",
      );
      assert.equal(seenAlice.get("user:alice")![0]!.type, "secret");
      assert.deepEqual([...seenBob.keys()], ["user:bob"]);
      assert.deepEqual([...seenAlice.keys()], ["user:alice"]);
    });

    it("env channels need scope env:read and the env id in envs (or *)", async () => {
      const cases: [Parameters<typeof token>[0], string, boolean][] = [
        [{ sub: "e1", envs: ["prod"] }, "env:prod:logs", false],
        [{ sub: "e2", envs: ["dev"], scope: "env:read" }, "env:prod:logs", false],
        [{ sub: "e3", envs: [], scope: "env:read" }, "env:prod:logs", false],
        [{ sub: "e4", scope: "env:read" }, "env:prod:logs", false],
        [{ sub: "e5", envs: ["prod"], scope: "env:write" }, "env:prod:logs", false],
        [{ sub: "e6", envs: ["prod"], scope: "env:read" }, "env:prod:logs", true],
        [{ sub: "e7", envs: ["dev", "prod"], scope: "jobs:read env:read" }, "env:prod:status", true],
        [{ sub: "e8", envs: ["*"], scope: "env:read" }, "env:prod:events", true],
        [{ sub: "e9", envs: ["*"], scope: ["env:read"] }, "env:anything:logs", true],
        [{ sub: "e10", envs: ["prod"], scope: "env:read" }, "env:prod-2:logs", false],
      ];
      for (const [claims, channel, allowed] of cases) {
        const socket = await open(b.url, claims);
        const answer = await request<Answer>(socket, "subscribe", { channel });
        if (allowed) {
          assert.deepEqual(Object.keys(okAnswer(answer)).sort(), SUBSCRIBE_OK_KEYS, JSON.stringify(claims));
        } else {
          refusedWith(answer, 4403, "forbidden");
        }
        socket.close();
      }
    });

    it("env channel names: an unknown stream is 4404, a missing stream 4400", async () => {
      const socket = await open(a.url, { sub: "e-names", envs: ["*"], scope: "env:read" });
      const nope = refusedWith(
        await request<Answer>(socket, "subscribe", { channel: "env:x:nope" }),
        4404,
        "not_found",
      );
      assert.match(nope.message, /nope/);
      const noStream = refusedWith(
        await request<Answer>(socket, "subscribe", { channel: "env:x" }),
        4400,
        "bad_request",
      );
      assert.match(noStream.message, /channel/);
      assert.equal(noStream.field, "channel");
      okAnswer(await request<Answer>(socket, "subscribe", { channel: "env:x:logs" }));
    });

    it("a job that does not exist is 4404", async () => {
      const socket = await open(a.url, { sub: "j1", envs: ["*"], scope: "jobs:read" });
      const error = refusedWith(
        await request<Answer>(socket, "subscribe", { channel: "job:does-not-exist-42" }),
        4404,
        "not_found",
      );
      assert.match(error.message, /does-not-exist-42/);
    });

    it("client publish in the built-in namespaces is 4403", async () => {
      const socket = await open(a.url, {
        sub: "pub-a",
        envs: ["*"],
        scope: "env:read jobs:read publish chat:write admin",
      });
      for (const channel of ["user:pub-a", "env:x:logs", "env:x:status", "job:whatever"]) {
        const error = refusedWith(
          await request<Answer>(socket, "publish", { channel, type: "t", data: 1 }),
          4403,
          "forbidden",
        );
        assert.match(error.message, /publish/, channel);
      }
    });
  });

  describe("a configured namespace with client publish", () => {
    it("publishes with the scope (ack {ok, channel, offset, epoch}, delivered on the other replica) and refuses without it", async () => {
      const writer = await open(a.url, { sub: "writer", scope: "chat:write" });
      const reader = await open(b.url, { sub: "reader" });
      const seen = recordEvents(reader);
      const sub = okAnswer(await request<Answer>(reader, "subscribe", { channel: "chat:room-1" }));
      assert.equal(sub.channel, "chat:room-1");
      assert.equal(sub.recovered, false);
      // The reader may subscribe (match any) but not publish (no chat:write).
      const refused = refusedWith(
        await request<Answer>(reader, "publish", { channel: "chat:room-1", type: "msg", data: { text: "nope" } }),
        4403,
        "forbidden",
      );
      assert.match(refused.message, /chat:room-1/);
      const ack = okAnswer(
        await request<Answer>(writer, "publish", { channel: "chat:room-1", type: "msg", data: { text: "hi" } }),
      );
      assert.deepEqual(Object.keys(ack).sort(), ["channel", "epoch", "offset", "ok"]);
      assert.equal(ack.channel, "chat:room-1");
      assert.equal(ack.offset, (sub.offset as number) + 1);
      assert.equal(ack.epoch, sub.epoch);
      await waitUntil(() => count(seen, "chat:room-1") === 1, 5000, "cross-replica delivery");
      const event = seen.get("chat:room-1")![0]!;
      assert.equal(event.offset, ack.offset);
      assert.equal(event.epoch, ack.epoch);
      assert.equal(event.type, "msg");
      assert.deepEqual(event.data, { text: "hi" });
      // The refused publish left nothing behind.
      assert.equal(count(seen, "chat:room-1"), 1);
    });
  });

  describe("subscription lifecycle", () => {
    it("subscribing twice returns the same answer shape and does not duplicate deliveries", async () => {
      const socket = await open(b.url, { sub: "twice" });
      const seen = recordEvents(socket);
      const first = okAnswer(await request<Answer>(socket, "subscribe", { channel: "user:twice" }));
      await publish("user:twice", "one");
      await waitUntil(() => count(seen, "user:twice") === 1, 5000, "first delivery");
      const second = okAnswer(await request<Answer>(socket, "subscribe", { channel: "user:twice" }));
      assert.deepEqual(Object.keys(second).sort(), Object.keys(first).sort());
      assert.deepEqual(Object.keys(second).sort(), SUBSCRIBE_OK_KEYS);
      assert.equal(second.channel, "user:twice");
      assert.equal(second.epoch, first.epoch);
      assert.equal(second.offset, (first.offset as number) + 1);
      await publish("user:twice", "two");
      await publish("user:twice", "three");
      await waitUntil(() => count(seen, "user:twice") >= 3, 5000, "later deliveries");
      await publish("user:twice", "marker");
      await waitUntil(() => seen.get("user:twice")!.some((e) => e.type === "marker"), 5000, "marker");
      assert.deepEqual(
        seen.get("user:twice")!.map((e) => e.type),
        ["one", "two", "three", "marker"],
      );
    });

    it("unsubscribe answers {ok, channel} and stops deliveries", async () => {
      const socket = await open(a.url, { sub: "leaver" });
      const seen = recordEvents(socket);
      okAnswer(await request<Answer>(socket, "subscribe", { channel: "user:leaver" }));
      okAnswer(await request<Answer>(socket, "subscribe", { channel: "chat:leaver-room" }));
      await publish("user:leaver", "before");
      await waitUntil(() => count(seen, "user:leaver") === 1, 5000, "delivery before unsubscribe");
      const answer = await request<Answer>(socket, "unsubscribe", { channel: "user:leaver" });
      assert.deepEqual(answer, { ok: true, channel: "user:leaver" });
      await publish("user:leaver", "after");
      await publish("chat:leaver-room", "marker");
      await waitUntil(() => count(seen, "chat:leaver-room") === 1, 5000, "marker");
      assert.deepEqual(
        seen.get("user:leaver")!.map((e) => e.type),
        ["before"],
      );
      // Leaving a channel one is not subscribed to is not an error.
      assert.deepEqual(await request<Answer>(socket, "unsubscribe", { channel: "user:leaver" }), {
        ok: true,
        channel: "user:leaver",
      });
    });

    it("handles one connection's requests in the order sent, without waiting for answers", async () => {
      const socket = await open(a.url, { sub: "hasty" });
      // Sent back to back: each must see the one before it done.
      const [subscribed, paused, left, again] = await Promise.all([
        request<Answer>(socket, "subscribe", { channel: "user:hasty" }),
        request<Answer>(socket, "control", { channel: "user:hasty", action: "pause" }),
        request<Answer>(socket, "unsubscribe", { channel: "user:hasty" }),
        request<Answer>(socket, "control", { channel: "user:hasty", action: "resume" }),
      ]);
      okAnswer(subscribed);
      assert.deepEqual(paused, { ok: true, channel: "user:hasty", action: "pause", paused: true });
      assert.deepEqual(left, { ok: true, channel: "user:hasty" });
      refusedWith(again, 4400, "bad_request");
    });

    it("ROOMCAST_MAX_SUBSCRIPTIONS=2 refuses a third subscription with 4429 too_many_subscriptions", async () => {
      const socket = await open(limited.url, { sub: "many" });
      okAnswer(await request<Answer>(socket, "subscribe", { channel: "user:many" }));
      okAnswer(await request<Answer>(socket, "subscribe", { channel: "chat:many-1" }));
      const error = refusedWith(
        await request<Answer>(socket, "subscribe", { channel: "chat:many-2" }),
        4429,
        "too_many_subscriptions",
      );
      assert.equal(error.limit, 2);
      // Subscribing again to a channel it already has is not a new subscription.
      okAnswer(await request<Answer>(socket, "subscribe", { channel: "chat:many-1" }));
      // After an unsubscribe there is room again.
      okAnswer(await request<Answer>(socket, "unsubscribe", { channel: "chat:many-1" }));
      okAnswer(await request<Answer>(socket, "subscribe", { channel: "chat:many-2" }));
      refusedWith(
        await request<Answer>(socket, "subscribe", { channel: "chat:many-3" }),
        4429,
        "too_many_subscriptions",
      );
    });
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChannelRegistry, type JobDirectory } from "../../src/channels/channel-registry.js";
import { channelKeys, channelOfRoom, roomOf } from "../../src/channels/channel-keys.js";
import { canRecover } from "../../src/channels/recovery.js";
import { parseChannelMessage } from "../../src/channels/channel-feed.js";
import { loadConfig } from "../../src/config/load-config.js";
import { RoomcastError } from "../../src/contracts/error-codes.js";
import type { Principal } from "../../src/auth/token-verifier.js";

const jobs: JobDirectory = {
  async lookup(id) {
    return id === "42" ? { owner: "alice", envId: "prod" } : undefined;
  },
};
const registry = new ChannelRegistry(loadConfig({ env: {} }), jobs);

function principal(sub: string, scopes: string[] = [], envs: string[] = []): Principal {
  return { sub, scopes: new Set(scopes), envs, tenant: undefined, exp: Math.floor(Date.now() / 1000) + 60 };
}

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof RoomcastError ? err.reason : "other";
  }
  return undefined;
}

describe("channel names and namespaces", () => {
  it("resolves built-in namespaces with their policies", () => {
    const status = registry.resolve("env:prod:status");
    assert.equal(status.id, "prod");
    assert.equal(status.stream, "status");
    assert.equal(status.policy, "conflate");
    assert.equal(status.snapshot, "latest");
    assert.equal(registry.resolve("env:prod:logs").policy, "reliable");
    assert.equal(registry.resolve("user:a@b.c").id, "a@b.c");
    assert.equal(registry.resolve("job:42").historySize, 1000);
  });

  it("refuses malformed names with bad_request and unknown namespaces or streams with not_found", () => {
    assert.equal(
      reasonOf(() => registry.resolve("nocolon")),
      "bad_request",
    );
    assert.equal(
      reasonOf(() => registry.resolve("Upper:x")),
      "bad_request",
    );
    assert.equal(
      reasonOf(() => registry.resolve("user:")),
      "bad_request",
    );
    assert.equal(
      reasonOf(() => registry.resolve(42)),
      "bad_request",
    );
    assert.equal(
      reasonOf(() => registry.resolve("user:" + "x".repeat(201))),
      "bad_request",
    );
    assert.equal(
      reasonOf(() => registry.resolve("env:prod")),
      "bad_request",
    );
    assert.equal(
      reasonOf(() => registry.resolve("env:prod:nope")),
      "not_found",
    );
    assert.equal(
      reasonOf(() => registry.resolve("chat:room1")),
      "not_found",
    );
  });

  it("authorizes by rule: user, env with scope, job owner or environment", async () => {
    const allows = (p: Principal, channel: string) =>
      registry.allows(p, registry.resolve(channel), registry.resolve(channel).settings.subscribe);
    assert.equal(await allows(principal("alice"), "user:alice"), true);
    assert.equal(await allows(principal("bob"), "user:alice"), false);
    assert.equal(await allows(principal("bob", ["env:read"], ["prod"]), "env:prod:logs"), true);
    assert.equal(await allows(principal("bob", [], ["prod"]), "env:prod:logs"), false);
    assert.equal(await allows(principal("bob", ["env:read"], ["*"]), "env:any:logs"), true);
    assert.equal(await allows(principal("bob", ["env:read"], ["dev"]), "env:prod:logs"), false);
    assert.equal(await allows(principal("alice", ["jobs:read"]), "job:42"), true);
    assert.equal(await allows(principal("carol", ["jobs:read"], ["prod"]), "job:42"), true);
    assert.equal(await allows(principal("carol", ["jobs:read"], ["dev"]), "job:42"), false);
    await assert.rejects(
      allows(principal("alice", ["jobs:read"]), "job:7"),
      (err: RoomcastError) => err.reason === "not_found",
    );
  });

  it("refuses client publish in namespaces that do not allow it", async () => {
    await assert.rejects(
      registry.authorize(principal("alice"), registry.resolve("user:alice"), "publish"),
      (err: RoomcastError) => err.code === 4403,
    );
  });
});

describe("keys, rooms and pub/sub messages", () => {
  it("puts every key of a channel in one hash slot", () => {
    const keys = channelKeys("rc", "env:e1:logs");
    for (const key of [keys.meta, keys.history, keys.snapshot, keys.feed, keys.idempotency("k")])
      assert.match(key, /^rc:\{env:e1:logs\}:/);
    assert.equal(roomOf("env:e1:logs"), "{env:e1:logs}");
    assert.equal(channelOfRoom("{env:e1:logs}"), "env:e1:logs");
    assert.equal(channelOfRoom("socketid"), undefined);
  });

  it("parses `<offset> <epoch> <json>` and rejects anything else", () => {
    assert.deepEqual(parseChannelMessage('12 abc {"a":"b c"}'), { offset: 12, epoch: "abc", json: '{"a":"b c"}' });
    assert.equal(parseChannelMessage("12"), undefined);
    assert.equal(parseChannelMessage("12 abc"), undefined);
  });
});

describe("canRecover", () => {
  it("recovers only in the same epoch and while history still holds the gap", () => {
    assert.equal(canRecover({ offset: 5, epoch: "e" }, "e", 10, 3), true);
    assert.equal(canRecover({ offset: 2, epoch: "e" }, "e", 10, 3), true);
    assert.equal(canRecover({ offset: 1, epoch: "e" }, "e", 10, 3), false);
    assert.equal(canRecover({ offset: 10, epoch: "e" }, "e", 10, 0), true);
    assert.equal(canRecover({ offset: 5, epoch: "old" }, "e", 10, 3), false);
    assert.equal(canRecover({ offset: 11, epoch: "e" }, "e", 10, 3), false);
    assert.equal(canRecover({ offset: 0, epoch: "e" }, "e", 0, 0), true);
  });
});

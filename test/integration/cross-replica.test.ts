import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect, httpPublish, recordEvents, request, token, waitUntil, type TestSocket } from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";

describe("cross-replica delivery", () => {
  let cluster: TestCluster;
  const sockets: TestSocket[] = [];
  before(async () => {
    cluster = await startCluster({ replicas: 2 });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await cluster.close();
  });

  it("delivers an event published on one replica to subscribers on the other, over websocket and polling", async () => {
    const [a, b] = cluster.gateways;
    const userToken = await token({ sub: "alice" });
    const onB = await connect(b!.url, { token: userToken });
    const onBPolling = await connect(b!.url, { token: userToken, transports: ["polling"] });
    sockets.push(onB, onBPolling);
    const seen = recordEvents(onB);
    const seenPolling = recordEvents(onBPolling);
    for (const s of [onB, onBPolling]) {
      const answer = await request(s, "subscribe", { channel: "user:alice" });
      assert.equal(answer.ok, true);
    }
    const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
    const published = await httpPublish(a!.url, publisher, "user:alice", { type: "greeting", data: { text: "hello" } });
    assert.equal(published.status, 202);
    await waitUntil(
      () => (seen.get("user:alice")?.length ?? 0) === 1 && (seenPolling.get("user:alice")?.length ?? 0) === 1,
      5000,
      "delivery",
    );
    const event = seen.get("user:alice")![0]!;
    assert.equal(event.type, "greeting");
    assert.deepEqual(event.data, { text: "hello" });
    assert.equal(event.offset, published.body.offset);
    assert.equal(event.epoch, published.body.epoch);
    assert.equal(event.priority, "normal");
    assert.equal(typeof event.ts, "number");
  });
});

/** GET /v1/stats from any replica describes the whole cluster, from the node registry in Redis; /metrics is Prometheus text. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect, httpGet, request, token, type TestSocket } from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";

interface Stats {
  nodes: { node: string; connections: number; ready: boolean; heartbeat: number; subscriptions: Record<string, number> }[];
  connections: number;
  subscriptions: Record<string, number>;
}

describe("cluster stats and metrics", () => {
  let cluster: TestCluster;
  const sockets: TestSocket[] = [];
  before(async () => {
    cluster = await startCluster({ replicas: 2 });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
  });

  it("counts on replica a the connections and subscriptions of replica b; needs scope admin", async () => {
    const [a, b] = cluster.gateways;
    for (let i = 0; i < 3; i++) {
      const socket = await connect(b!.url, { token: await token({ sub: `stats-${i}`, envs: ["e1"], scope: "env:read" }) });
      sockets.push(socket);
      assert.equal((await request(socket, "subscribe", { channel: `user:stats-${i}` })).ok, true);
      assert.equal((await request(socket, "subscribe", { channel: "env:e1:logs" })).ok, true);
    }
    const admin = await token({ sub: "ops", scope: "admin" });
    let stats: Stats | undefined;
    // b reports on its next heartbeat (every 5 s).
    const deadline = Date.now() + 12_000;
    for (;;) {
      stats = (await httpGet(`${a!.url}/v1/stats`, admin)).body as unknown as Stats;
      if (stats.nodes.find((n) => n.node === b!.nodeId)?.connections === 3 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const nodeB = stats.nodes.find((n) => n.node === b!.nodeId);
    assert.ok(nodeB, JSON.stringify(stats));
    assert.equal(nodeB.connections, 3);
    assert.deepEqual(nodeB.subscriptions, { user: 3, env: 3 });
    assert.ok(stats.nodes.some((n) => n.node === a!.nodeId));
    assert.ok(stats.connections >= 3);
    assert.equal((await httpGet(`${a!.url}/v1/stats`, await token({ sub: "ops", scope: "publish" }))).status, 403);
  });

  it("serves Prometheus metrics with the node label and bounded labels", async () => {
    const a = cluster.gateways[0]!;
    const res = await fetch(`${a.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
    const text = await res.text();
    assert.match(text, new RegExp(`roomcast_connection_attempts_total\\{node="${a.nodeId}"\\}`));
    assert.match(text, /roomcast_nodejs_eventloop_lag_seconds/);
    assert.match(text, new RegExp(`roomcast_redis_up\\{node="${a.nodeId}"\\} 1`));
    // The stats requests of the test above, by route pattern (never the id in the path).
    assert.match(text, /roomcast_http_requests_total\{route="\/v1\/stats",status="200",node="[^"]+"\} [1-9]/);
    assert.doesNotMatch(text, /channel="|user="|sub="/, "no unbounded labels");
  });
});

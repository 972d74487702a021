/** GET /v1/stats from any replica describes the whole cluster, from the node registry in Redis; /metrics is Prometheus text. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { connect, httpGet, request, token, type TestSocket } from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";

interface Stats {
  nodes: {
    node: string;
    connections: number;
    ready: boolean;
    heartbeat: number;
    subscriptions: Record<string, number>;
  }[];
  connections: number;
  subscriptions: Record<string, number>;
}

/** A redis-cli command on the test's Redis (redis://host:port, or redis+cluster://host:port,...: -c follows the slot). */
function redisCli(url: string, ...args: string[]): string {
  const hostPort = /:\/\/([^,/?#]+)/.exec(url)![1]!;
  const cut = hostPort.lastIndexOf(":");
  const out = spawnSync("redis-cli", ["-c", "-h", hostPort.slice(0, cut), "-p", hostPort.slice(cut + 1), ...args], {
    encoding: "utf8",
  });
  assert.equal(out.status, 0, out.stderr);
  return out.stdout.trim();
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
      const socket = await connect(b!.url, {
        token: await token({ sub: `stats-${i}`, envs: ["e1"], scope: "env:read" }),
      });
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

  it("an entry of the node registry that is not a node's stats (not JSON, fields missing) is skipped and removed, on every replica", async () => {
    const [a, b] = cluster.gateways;
    const admin = await token({ sub: "ops", scope: "admin" });
    const entries = {
      bogus: "not json",
      "no-fields": JSON.stringify({ node: "no-fields" }),
      "wrong-types": JSON.stringify({
        node: "wrong-types",
        startedAt: 1,
        heartbeat: "now",
        ready: true,
        connections: 1,
        subscriptions: {},
      }),
      null: "null",
    };
    for (const [field, value] of Object.entries(entries))
      redisCli(cluster.redis.url, "HSET", "rc:{nodes}", field, value);
    for (const gateway of [a!, b!]) {
      const res = await httpGet(`${gateway.url}/v1/stats`, admin);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const stats = res.body as unknown as Stats;
      assert.deepEqual(stats.nodes.map((n) => n.node).sort(), [a!.nodeId, b!.nodeId].sort(), JSON.stringify(stats));
    }
    // Removed: a later reader does not parse them again.
    const left = redisCli(cluster.redis.url, "HKEYS", "rc:{nodes}").split("\n").sort();
    assert.deepEqual(left, [a!.nodeId, b!.nodeId].sort());
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

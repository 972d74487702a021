/** The examples of README.md and docs/protocol.md run against a real two-replica cluster. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { httpPublish, token, waitUntil } from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { waitForExit } from "../support/gateway-process.js";
import { startLoadBalancer } from "../support/load-balancer.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function run(script: string, args: string[]) {
  const child = spawn(process.execPath, [`${ROOT}${script}`, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

describe("examples", () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster({ replicas: 2 });
  });
  after(async () => {
    await cluster?.close();
  });

  for (const [script, stopAfter] of [
    ["examples/sdk-quickstart.mjs", ["3"]],
    ["examples/tour-client.mjs", []],
  ] as const) {
    it(`${script} subscribes and prints every event in order`, async () => {
      const channel = `user:example-${script.split("/")[1]!.split(".")[0]}`;
      const [a, b] = cluster.gateways;
      const { child, output } = run(script, [a!.url, await token({ sub: channel.slice(5) }), channel, ...stopAfter]);
      try {
        await waitUntil(() => /subscribed to/.test(output()), 10_000, `the subscription: ${output()}`);
        const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
        for (let n = 1; n <= 3; n++)
          assert.equal((await httpPublish(b!.url, publisher, channel, { type: "tick", data: { n } })).status, 202);
        await waitUntil(() => /#3 tick/.test(output()), 10_000, `the events: ${output()}`);
        assert.deepEqual(output().match(/#\d+ tick \{"n":\d\}/g), [
          '#1 tick {"n":1}',
          '#2 tick {"n":2}',
          '#3 tick {"n":3}',
        ]);
        if (stopAfter.length) assert.equal(await waitForExit(child), 0, output());
      } finally {
        child.kill("SIGKILL");
      }
    });
  }

  it("examples/tour-client.mjs (stock client, default options) follows its channel through a drain of its replica, every event once", async () => {
    const channel = "user:tour-move";
    const balancer = await startLoadBalancer(cluster.gateways);
    const { child, output } = run("examples/tour-client.mjs", [
      balancer.url,
      await token({ sub: "tour-move" }),
      channel,
    ]);
    try {
      await waitUntil(() => /subscribed to/.test(output()), 10_000, `the subscription: ${output()}`);
      const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
      const publish = async (n: number) =>
        assert.equal(
          (await httpPublish(cluster.gateways.at(-1)!.url, publisher, channel, { type: "tick", data: { n } })).status,
          202,
        );
      for (let n = 1; n <= 3; n++) await publish(n);
      await waitUntil(() => /#3 tick/.test(output()), 10_000, `the events: ${output()}`);
      // Drain the replica it is on; publish while it moves.
      const node = /connected to (\S+)/.exec(output())![1];
      const home = cluster.gateways.find((g) => g.nodeId === node)!;
      cluster.gateways.splice(cluster.gateways.indexOf(home), 1);
      const stopped = home.stop();
      for (let n = 4; n <= 6; n++) await publish(n);
      assert.equal(await stopped, 0);
      await waitUntil(
        () => /#6 tick/.test(output()) && /recovered: true/.test(output()),
        20_000,
        `the events after the move: ${output()}`,
      );
      assert.match(output(), /closing this connection: 4503 draining/);
      assert.match(output(), /disconnected \(transport close\); reconnecting/);
      assert.deepEqual(
        output().match(/#\d+ tick/g),
        [1, 2, 3, 4, 5, 6].map((n) => `#${n} tick`),
      );
    } finally {
      child.kill("SIGKILL");
      await balancer.close();
    }
  });
});

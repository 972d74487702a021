/** The examples of README.md and docs/protocol.md run against a real two-replica cluster. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { httpPublish, token, waitUntil } from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { waitForExit } from "../support/gateway-process.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function run(script: string, args: string[]) {
  const child = spawn(process.execPath, [`${ROOT}${script}`, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
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
        for (let n = 1; n <= 3; n++) assert.equal((await httpPublish(b!.url, publisher, channel, { type: "tick", data: { n } })).status, 202);
        await waitUntil(() => /#3 tick/.test(output()), 10_000, `the events: ${output()}`);
        assert.deepEqual(output().match(/#\d+ tick \{"n":\d\}/g), ['#1 tick {"n":1}', '#2 tick {"n":2}', '#3 tick {"n":3}']);
        if (stopAfter.length) assert.equal(await waitForExit(child), 0, output());
      } finally {
        child.kill("SIGKILL");
      }
    });
  }
});

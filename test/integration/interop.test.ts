/**
 * Stock Socket.IO clients of other platforms against a real two-replica cluster: Python
 * (python-socketio) and Java (io.socket:socket.io-client, the Android client). Each connects
 * with a token, subscribes with history, receives live events, loses its connection when
 * its replica is SIGKILLed, resubscribes on the other with `since`, and ends with every event
 * exactly once, in order. The programs live in interop/ (see its README).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { httpPublish, token, waitUntil } from "../support/clients.js";
import { startCluster } from "../support/cluster.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const HISTORY = 5;
const PHASE = 10;
const EXPECTED = HISTORY + 3 * PHASE;

interface Program {
  name: string;
  command: string;
  args: string[];
  available(): boolean;
  setup: string;
}

const PROGRAMS: Program[] = [
  {
    name: "python-socketio",
    command: "python3",
    args: [`${ROOT}interop/python/interop_client.py`],
    available: () => spawnSync("python3", ["-c", "import socketio"], { stdio: "ignore" }).status === 0,
    setup: "python3 -m pip install -r interop/python/requirements.txt",
  },
  {
    name: "java io.socket:socket.io-client",
    command: "java",
    args: ["-cp", `${ROOT}interop/java/target/classes:${ROOT}interop/java/target/dependency/*`, "InteropClient"],
    available: () => existsSync(`${ROOT}interop/java/target/classes/InteropClient.class`),
    setup: "(cd interop/java && mvn -q -B dependency:copy-dependencies compile)",
  },
];

/** Lines a program printed, with a way to wait for one. */
function watch(child: ChildProcess): { lines: string[]; output: () => string } {
  const lines: string[] = [];
  let buffer = "";
  let errors = "";
  child.stdout!.on("data", (d: Buffer) => {
    buffer += d.toString();
    const parts = buffer.split("\n");
    buffer = parts.pop()!;
    lines.push(...parts.filter(Boolean));
  });
  child.stderr!.on("data", (d: Buffer) => (errors += d.toString()));
  return { lines, output: () => `${lines.join("\n")}\n${errors.slice(-2000)}` };
}

for (const program of PROGRAMS) {
  // In CI the toolchains are installed by .ci/run: a missing one is a failure, not a skip.
  const skip = !program.available() && !process.env.CI ? `not set up here: ${program.setup}` : false;
  describe(`interop: ${program.name}`, { skip }, () => {
    it("subscribes with history, receives live events, and recovers on another replica after a SIGKILL, losing nothing", async () => {
      assert.ok(program.available(), `${program.name} is not set up: ${program.setup}`);
      const cluster = await startCluster({ replicas: 2, env: { ROOMCAST_HTTP_RATE_LIMIT: "0" } });
      let child: ChildProcess | undefined;
      try {
        const [a, b] = cluster.gateways;
        const sub = `interop-${program.name.split(" ")[0]}`;
        const channel = `user:${sub}`;
        const publisher = await token({ sub: "backend", scope: "publish", envs: ["*"] });
        let published = 0;
        const publish = async (n: number) => {
          for (let i = 0; i < n; i++)
            assert.equal(
              (await httpPublish(b!.url, publisher, channel, { type: "tick", data: { n: ++published } })).status,
              202,
            );
        };
        await publish(HISTORY);
        child = spawn(
          program.command,
          [...program.args, a!.url, b!.url, await token({ sub }), channel, String(HISTORY), String(EXPECTED)],
          {
            stdio: ["ignore", "pipe", "pipe"],
          },
        );
        const { lines, output } = watch(child);
        const got = () => lines.filter((l) => l.startsWith("GOT ")).length;
        const until = (check: () => boolean, what: string) =>
          waitUntil(check, 20_000, `${what}; output so far:\n${output()}`);

        await until(() => lines.some((l) => l.startsWith("READY ")), "READY");
        await until(() => got() === HISTORY, "the history events");
        await publish(PHASE);
        await until(() => got() === HISTORY + PHASE, "live events");
        await a!.kill();
        await until(() => lines.includes("DISCONNECTED"), "the disconnect");
        await publish(PHASE); // while it is away
        await until(() => lines.some((l) => l.startsWith("RECOVERED ")), "the recovery");
        await publish(PHASE);
        await until(() => lines.includes("DONE"), "DONE");

        // Recovered with `since` (how many came in the answer depends on how fast it reconnected).
        assert.match(lines.find((l) => l.startsWith("RECOVERED ")) ?? "", /^RECOVERED true \d+$/, output());
        const offsets = lines.filter((l) => l.startsWith("GOT ")).map((l) => Number(l.split(" ")[1]));
        assert.deepEqual(
          offsets,
          Array.from({ length: EXPECTED }, (_, i) => i + 1),
          output(),
        );
        assert.equal(lines.filter((l) => l.startsWith("ERROR")).length, 0, output());
      } finally {
        child?.kill("SIGKILL");
        await cluster.close();
      }
    });
  });
}

/**
 * One VU thread (or the setup/teardown instance): k6's globals, the k6 module shims through
 * resolution hooks, the script's init context (its own module instance, as each k6 VU has),
 * then what the runner asks: setup, the iterations of its scenario, or teardown.
 */
import { readFileSync } from "node:fs";
import { register } from "node:module";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parentPort, workerData } from "node:worker_threads";
import type { ToVu, VuWorkerData } from "./protocol.js";
import { errorText, runtime } from "./runtime.js";
import * as execution from "./shims/execution.js";
import * as timers from "./shims/timers.js";

const data = workerData as VuWorkerData;
register(new URL("./hooks.ts", import.meta.url));

const globals = globalThis as unknown as Record<string, unknown>;
globals.__ENV = { ...data.env };
globals.__VU = data.vu;
globals.__ITER = 0;
// k6's global timers are its event loop's: they keep the iteration alive.
globals.setTimeout = timers.setTimeout;
globals.clearTimeout = timers.clearTimeout;
globals.setInterval = timers.setInterval;
globals.clearInterval = timers.clearInterval;
// open() of the init context, relative to the script.
globals.open = (path: string, mode?: "b") => {
  const file = fileURLToPath(new URL(path, data.scriptUrl));
  if (runtime.context !== "init") throw new Error("open() is only available in the init context");
  const bytes = readFileSync(file);
  return mode === "b"
    ? bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
    : bytes.toString("utf8");
};
// An unhandled rejection ends the iteration with an error, as in k6.
process.on("unhandledRejection", (reason) => runtime.fail(reason));

/** Setup data goes through JSON, as in k6. */
function json(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

let script: Record<string, unknown>;
try {
  script = (await import(data.scriptUrl)) as Record<string, unknown>;
} catch (err) {
  parentPort!.postMessage({ type: "init-error", error: `init context (VU ${data.vu}): ${errorText(err)}` });
  process.exit(1);
}

let options: unknown;
try {
  options = json(script.options ?? {});
} catch (err) {
  options = {};
  runtime.post({ type: "error", error: `options cannot be serialized: ${errorText(err)}` });
}
runtime.post({ type: "ready", definitions: [...runtime.definitions.values()], options, exports: Object.keys(script) });

async function runIterations(setupData: unknown): Promise<void> {
  const plan = data.scenario!;
  const fn = script[plan.exec];
  if (typeof fn !== "function") {
    runtime.post({ type: "error", error: `scenario ${plan.name}: the script exports no function ${plan.exec}` });
    return;
  }
  execution.scenario.startTime = Date.now();
  for (let i = 0; i < plan.iterations; i++) {
    runtime.iteration = i;
    globals.__ITER = i;
    const started = performance.now();
    await runtime.run("iteration", () => (fn as (d: unknown) => unknown)(setupData), data.iterationTimeoutMs);
    runtime.builtin("iterations", "counter", false, 1);
    runtime.builtin("iteration_duration", "trend", true, performance.now() - started);
    runtime.flush();
  }
}

parentPort!.on("message", (message: ToVu) => {
  void (async () => {
    switch (message.type) {
      case "setup": {
        const fn = script.setup;
        let value: unknown;
        if (typeof fn === "function") {
          const result = await runtime.run("setup", () => (fn as () => unknown)(), data.iterationTimeoutMs);
          try {
            value = json(result.value);
          } catch (err) {
            runtime.post({ type: "error", error: `setup data cannot be serialized: ${errorText(err)}` });
          }
        }
        runtime.flush();
        runtime.post({ type: "setup-done", data: value, samples: runtime.takeSamples() });
        break;
      }
      case "run":
        await runIterations(message.data);
        runtime.flush();
        runtime.post({ type: "finished", samples: runtime.takeSamples() });
        break;
      case "teardown": {
        const fn = script.teardown;
        if (typeof fn === "function")
          await runtime.run("teardown", () => (fn as (d: unknown) => unknown)(message.data), data.iterationTimeoutMs);
        runtime.flush();
        runtime.post({ type: "teardown-done", samples: runtime.takeSamples() });
        break;
      }
    }
  })();
});

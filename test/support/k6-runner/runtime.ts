/**
 * The state of one VU thread, shared by its shims: which context runs (init, setup, an
 * iteration, teardown), the metrics it defined and the samples it recorded, and the k6
 * event loop of the current iteration: the sockets and timers it opened. An iteration ends
 * when its function returned and all of them are closed or done, as in k6.
 *
 * Internal waits use node:timers (not the globals: the VU's global timers are the tracked
 * k6 ones).
 */
import {
  setImmediate as nodeSetImmediate,
  setTimeout as nodeSetTimeout,
  clearTimeout as nodeClearTimeout,
} from "node:timers";
import { parentPort, workerData } from "node:worker_threads";
import type { FromVu, MetricDefinition, MetricType, Sample, VuWorkerData } from "./protocol.js";

export type Context = "init" | "setup" | "iteration" | "teardown";

/** Something that keeps an iteration alive: a socket until it closed, a timer until it fired. */
export interface Handle {
  description: string;
  /** Forced end: the iteration was aborted or timed out. */
  cancel(): void;
}

/** Thrown by k6/execution's test.abort(): ends the iteration and the run. */
export class TestAbort extends Error {}

const data = workerData as VuWorkerData;

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.stack?.split("\n").slice(0, 3).join("\n") ?? `${err.name}: ${err.message}`;
  if (typeof err === "string") return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

// k6 (since v0.5x) refuses other metric names.
const METRIC_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

class VuRuntime {
  readonly data = data;
  context: Context = "init";
  /** __ITER of the current iteration (-1 before the first). */
  iteration = -1;
  /** Counts iterations, setup and teardown: callbacks of an earlier one never run. */
  generation = 0;
  aborted = false;
  group = "";
  /** exec.vu.tags / exec.vu.metrics.tags: added to every sample. */
  readonly vuTags: Record<string, string> = {};
  readonly definitions = new Map<string, MetricDefinition>();
  private unsent: MetricDefinition[] = [];
  private samples: Sample[] = [];
  private readonly handles = new Set<Handle>();
  private wake: (() => void) | undefined;

  get scenarioName(): string {
    if (this.context === "setup" || this.context === "teardown") return this.context;
    return data.scenario?.name ?? "default";
  }

  /** Metric objects may only be created in the init context (k6 throws otherwise). */
  define(name: string, type: MetricType, isTime: boolean): void {
    if (this.context !== "init") throw new Error(`metric ${name}: metrics must be declared in the init context`);
    if (!METRIC_NAME.test(name))
      throw new Error(
        `invalid metric name ${JSON.stringify(name)}: up to 128 ASCII letters, digits or underscores, starting with a letter or underscore`,
      );
    const existing = this.definitions.get(name);
    const definition: MetricDefinition = { name, type, contains: isTime ? "time" : "default" };
    if (existing && (existing.type !== type || existing.contains !== definition.contains)) {
      throw new Error(`metric ${name} already defined as a ${existing.type} (${existing.contains})`);
    }
    if (!existing) {
      this.definitions.set(name, definition);
      this.unsent.push(definition);
    }
  }

  /** Records a sample, with the scenario, group, VU tags and the given ones. */
  add(metric: string, value: number, tags: Record<string, unknown> | undefined): void {
    if (!Number.isFinite(value)) throw new Error(`metric ${metric}: ${value} is not a valid value`);
    const all: Record<string, string> = { scenario: this.scenarioName, ...this.vuTags };
    if (this.group) all.group = this.group;
    if (data.scenario) Object.assign(all, data.scenario.tags);
    for (const [k, v] of Object.entries(tags ?? {})) all[k] = String(v);
    this.samples.push({ metric, value, tags: all, time: Date.now() });
  }

  builtin(name: string, type: MetricType, isTime: boolean, value: number, tags?: Record<string, unknown>): void {
    if (!this.definitions.has(name)) {
      const definition: MetricDefinition = { name, type, contains: isTime ? "time" : "default" };
      this.definitions.set(name, definition);
      this.unsent.push(definition);
    }
    this.add(name, value, tags);
  }

  takeSamples(): Sample[] {
    const samples = this.samples;
    this.samples = [];
    return samples;
  }

  post(message: FromVu): void {
    parentPort!.postMessage(message);
  }

  /** Sends what was recorded so far (definitions first, so the runner knows every type). */
  flush(): void {
    if (this.samples.length === 0 && this.unsent.length === 0) return;
    this.post({ type: "samples", samples: this.takeSamples(), definitions: this.unsent });
    this.unsent = [];
  }

  fail(err: unknown): void {
    if (this.aborted) return;
    const where =
      this.context === "iteration"
        ? `${this.scenarioName} VU ${data.vu} iteration ${this.iteration}`
        : `${this.context}${data.vu ? ` (VU ${data.vu})` : ""}`;
    this.post({ type: "error", error: `${where}: ${errorText(err)}` });
    if (err instanceof TestAbort) this.post({ type: "abort", reason: err.message });
    this.abort();
  }

  /** Ends the current iteration at once: closes its sockets, clears its timers. */
  abort(): void {
    this.aborted = true;
    for (const handle of [...this.handles]) {
      this.handles.delete(handle);
      try {
        handle.cancel();
      } catch {
        // already gone
      }
    }
    this.wake?.();
  }

  open(handle: Handle): { release(): void } {
    if (this.context === "init") throw new Error(`${handle.description}: not allowed in the init context`);
    this.handles.add(handle);
    return {
      release: () => {
        if (this.handles.delete(handle)) this.wake?.();
      },
    };
  }

  /**
   * Runs an event-loop callback of the current generation: an exception (or a rejected
   * promise it returns) ends the iteration with an error, as an uncaught one does in k6.
   */
  callback<A extends unknown[]>(
    generation: number,
    fn: ((...args: A) => unknown) | null | undefined,
    ...args: A
  ): void {
    if (typeof fn !== "function" || generation !== this.generation || this.aborted) return;
    try {
      const result = fn(...args);
      if (isThenable(result)) result.then(undefined, (err: unknown) => this.fail(err));
    } catch (err) {
      this.fail(err);
    }
  }

  /**
   * Runs fn as k6 runs an iteration (or setup, teardown): calls it, then runs the event loop
   * until fn's promise settled and no socket or timer is left, or until nothing is left that
   * could settle it. Returns fn's result. Errors are reported, never thrown.
   */
  async run(context: Context, fn: () => unknown, timeoutMs: number): Promise<{ ok: boolean; value: unknown }> {
    this.context = context;
    this.generation++;
    this.aborted = false;
    let ok = true;
    let settled = true;
    let value: unknown;
    try {
      const result = fn();
      if (isThenable(result)) {
        settled = false;
        result.then(
          (v) => {
            value = v;
            settled = true;
            this.wake?.();
          },
          (err: unknown) => {
            ok = false;
            settled = true;
            this.fail(err);
          },
        );
      } else value = result;
    } catch (err) {
      ok = false;
      this.fail(err);
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Let promise jobs and immediates run: they may open sockets or timers.
      await new Promise((r) => nodeSetImmediate(r));
      await new Promise((r) => nodeSetImmediate(r));
      if (this.aborted) {
        ok = false;
        break;
      }
      if (this.handles.size === 0) {
        // Nothing left that could settle a pending promise: k6 ends the iteration too.
        break;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const open = [...this.handles].map((h) => h.description).join(", ");
        this.fail(
          new Error(
            `${context} did not end within ${timeoutMs} ms${settled ? "" : " (its promise never settled)"}; still open: ${open}`,
          ),
        );
        ok = false;
        break;
      }
      await new Promise<void>((resolve) => {
        const timer = nodeSetTimeout(resolve, Math.min(left, 1000));
        this.wake = () => {
          nodeClearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    this.abort();
    this.aborted = false;
    // Callbacks of this iteration (a terminated socket's close event) never run after it.
    this.generation++;
    return { ok, value };
  }
}

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}

export const runtime = new VuRuntime();

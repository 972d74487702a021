/** The `k6/execution` module: what the VU, its scenario and the test are at the moment. */
import { runtime, TestAbort } from "../runtime.js";

const plan = () => runtime.data.scenario;

export const vu = {
  get idInInstance(): number {
    return runtime.data.vu;
  },
  get idInTest(): number {
    return runtime.data.vu;
  },
  get iterationInInstance(): number {
    return Math.max(0, runtime.iteration);
  },
  get iterationInScenario(): number {
    return Math.max(0, runtime.iteration);
  },
  tags: runtime.vuTags,
  metrics: { tags: runtime.vuTags, metadata: {} as Record<string, string> },
};

export const scenario = {
  get name(): string {
    return runtime.scenarioName;
  },
  get executor(): string {
    return plan()?.executor ?? "";
  },
  startTime: 0,
  get progress(): number {
    const p = plan();
    return p && p.iterations > 0 ? Math.min(1, Math.max(0, runtime.iteration) / p.iterations) : 0;
  },
  /** Unique across the scenario's VUs, as in k6. */
  get iterationInInstance(): number {
    const p = plan();
    return p ? Math.max(0, runtime.iteration) * p.vus + runtime.data.vuIndexInScenario : 0;
  },
  get iterationInTest(): number {
    return scenario.iterationInInstance;
  },
};

export const instance = {
  iterationsInterrupted: 0,
  iterationsCompleted: 0,
  get vusActive(): number {
    return plan()?.vus ?? 1;
  },
  get vusInitialized(): number {
    return plan()?.vus ?? 1;
  },
  get currentTestRunDuration(): number {
    return scenario.startTime ? Date.now() - scenario.startTime : 0;
  },
};

export const test = {
  /** Ends the whole run (the runner records it as an error). */
  abort(reason?: string): never {
    throw new TestAbort(`test aborted${reason ? `: ${reason}` : ""}`);
  },
  /** Marks the run failed and goes on, as in k6. */
  fail(message?: string): void {
    runtime.post({ type: "error", error: `test.fail()${message ? `: ${message}` : ""}` });
  },
  get options(): unknown {
    return runtime.data.options;
  },
};

export default { vu, scenario, instance, test };

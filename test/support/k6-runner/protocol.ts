/** Messages between the runner (main thread), its VU threads and the HTTP helper thread. */
import type { MessagePort } from "node:worker_threads";

export type MetricType = "counter" | "gauge" | "rate" | "trend";

export interface MetricDefinition {
  name: string;
  type: MetricType;
  /** "time" for Trends created with isTime (values in ms), else "default". */
  contains: "time" | "default";
}

export interface Sample {
  metric: string;
  value: number;
  tags: Record<string, string>;
  /** ms since epoch. */
  time: number;
}

/** What a VU thread runs: its role, identity and the scenario it belongs to. */
export interface VuWorkerData {
  entry: string;
  scriptUrl: string;
  role: "setup" | "vu";
  /** __VU: 0 for the setup/teardown instance, 1..N for VUs (unique across scenarios). */
  vu: number;
  env: Record<string, string>;
  scenario: ScenarioPlan | null;
  /** Index of this VU among its scenario's VUs, from 0. */
  vuIndexInScenario: number;
  iterationTimeoutMs: number;
  /** The script's options as the setup instance read them (for k6/execution test.options). */
  options: unknown;
  http: { port: MessagePort; flag: SharedArrayBuffer };
}

export interface ScenarioPlan {
  name: string;
  executor: string;
  exec: string;
  vus: number;
  iterations: number;
  startTimeMs: number;
  env: Record<string, string>;
  tags: Record<string, string>;
}

/** Runner -> VU. */
export type ToVu = { type: "run"; data: unknown } | { type: "setup" } | { type: "teardown"; data: unknown };

/** VU -> runner. */
export type FromVu =
  | { type: "ready"; definitions: MetricDefinition[]; options: unknown; exports: string[] }
  | { type: "init-error"; error: string }
  | { type: "samples"; samples: Sample[]; definitions: MetricDefinition[] }
  | { type: "error"; error: string }
  | { type: "setup-done"; data: unknown; samples: Sample[] }
  | { type: "teardown-done"; samples: Sample[] }
  | { type: "finished"; samples: Sample[] }
  | { type: "abort"; reason: string };

/** VU -> HTTP helper, over the VU's own port. */
export interface HttpRequestMessage {
  id: number;
  method: string;
  url: string;
  headers: Record<string, string>;
  /** Text, or bytes as base64 (bodyBase64). */
  body: string | null;
  bodyBase64: boolean;
  timeoutMs: number;
  followRedirects: boolean;
  binary: boolean;
}

export interface HttpResponseMessage {
  id: number;
  status: number;
  statusText: string;
  headers: Record<string, string>;
  body: string;
  bodyBase64: boolean;
  url: string;
  error: string;
  errorCode: number;
  durationMs: number;
  waitingMs: number;
  proto: string;
}

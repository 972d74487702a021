/**
 * A pool of load-generator processes (bench/loadgen/loadgen.ts), so that the client side uses
 * its own cores' worth of CPU and shows up in the CPU accounting separately from the servers.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ClientSpec, Command, ConnectCommand, LoadgenStats, PublishCommand } from "../loadgen/loadgen.js";
import { emptyHistogram, merge } from "./histogram.js";

const LOADGEN = fileURLToPath(new URL("../loadgen/loadgen.ts", import.meta.url));

export interface Loadgen {
  child: ChildProcess;
  call<T>(command: Command): Promise<T>;
}

async function startLoadgen(): Promise<Loadgen> {
  const child = fork(LOADGEN, [], {
    execArgv: ["--import", "tsx", "--max-old-space-size=2048"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const waiting = new Map<number, (value: unknown) => void>();
  let nextId = 0;
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`load generator exited (${code})`)));
    child.on("message", (message: { ready?: boolean; reqId?: number; value?: unknown }) => {
      if (message.ready) resolve();
      else if (message.reqId !== undefined) {
        waiting.get(message.reqId)?.(message.value);
        waiting.delete(message.reqId);
      }
    });
  });
  return {
    child,
    call<T>(command: Command): Promise<T> {
      const reqId = ++nextId;
      return new Promise<T>((resolve) => {
        waiting.set(reqId, resolve as (value: unknown) => void);
        child.send({ ...command, reqId });
      });
    },
  };
}

export interface Pool {
  loadgens: Loadgen[];
  pids(): number[];
  /** Spreads the clients over the processes (client i to process i % n), in parallel. */
  connect(
    options: Omit<ConnectCommand, "op" | "clients">,
    clients: ClientSpec[],
  ): Promise<{ connected: number; failed: number; errors: string[] }>;
  publish(options: Omit<PublishCommand, "op">): Promise<{ published: number; errors: number }>;
  reset(): Promise<void>;
  /** `lastOffset`: the last offset published per tracked channel (events lost are counted against it). */
  stats(lastOffset?: number): Promise<LoadgenStats>;
  closeClients(): Promise<void>;
  stop(): Promise<void>;
}

function sum(all: LoadgenStats[]): LoadgenStats {
  const min = (values: number[]) => Math.min(...values.filter((v) => v > 0), Infinity);
  const total = (key: keyof LoadgenStats) => all.reduce((n, s) => n + (s[key] as number), 0);
  const first = min(all.map((s) => s.firstDeliveryAt));
  const firstPublish = min(all.map((s) => s.firstPublishAt));
  return {
    connected: total("connected"),
    failed: total("failed"),
    errors: all.flatMap((s) => s.errors).slice(0, 20),
    deliveries: total("deliveries"),
    firstDeliveryAt: Number.isFinite(first) ? first : 0,
    lastDeliveryAt: Math.max(0, ...all.map((s) => s.lastDeliveryAt)),
    latency: all.reduce((h, s) => merge(h, s.latency), emptyHistogram()),
    cpuSeconds: total("cpuSeconds"),
    lost: total("lost"),
    duplicates: total("duplicates"),
    reconnects: total("reconnects"),
    recovered: total("recovered"),
    notRecovered: total("notRecovered"),
    clientsResubscribed: total("clientsResubscribed"),
    lastResubscribedAt: Math.max(0, ...all.map((s) => s.lastResubscribedAt)),
    lines: total("lines"),
    jobsDone: total("jobsDone"),
    published: total("published"),
    publishErrors: total("publishErrors"),
    publishLatency: all.reduce((h, s) => merge(h, s.publishLatency), emptyHistogram()),
    firstPublishAt: Number.isFinite(firstPublish) ? firstPublish : 0,
    lastPublishAt: Math.max(0, ...all.map((s) => s.lastPublishAt)),
  };
}

export async function startPool(size: number): Promise<Pool> {
  const loadgens = await Promise.all(Array.from({ length: size }, () => startLoadgen()));
  const all = <T>(command: Command) => Promise.all(loadgens.map((l) => l.call<T>(command)));
  return {
    loadgens,
    pids: () => loadgens.map((l) => l.child.pid!),
    async connect(options, clients) {
      const shares = loadgens.map((_, i) => clients.filter((__, j) => j % loadgens.length === i));
      const answers = await Promise.all(
        loadgens.map((l, i) =>
          l.call<{ connected: number; failed: number; errors: string[] }>({
            ...options,
            op: "connect",
            clients: shares[i]!,
            concurrency: Math.max(1, Math.ceil(options.concurrency / loadgens.length)),
          }),
        ),
      );
      return {
        connected: answers.reduce((n, a) => n + a.connected, 0),
        failed: answers.reduce((n, a) => n + a.failed, 0),
        errors: answers.flatMap((a) => a.errors).slice(0, 10),
      };
    },
    publish: (options) => loadgens[0]!.call({ ...options, op: "publish" }),
    async reset() {
      await all({ op: "reset" });
    },
    async stats(lastOffset) {
      return sum(await all<LoadgenStats>(lastOffset === undefined ? { op: "stats" } : { op: "stats", lastOffset }));
    },
    async closeClients() {
      await all({ op: "close" });
    },
    async stop() {
      // Wait for the exits: a dying process with thousands of sockets would weigh on the next scenario.
      await Promise.all(
        loadgens.map((l) =>
          l.child.exitCode !== null || l.child.signalCode !== null
            ? undefined
            : new Promise<void>((resolve) => {
                l.child.once("exit", () => resolve());
                l.child.kill("SIGKILL");
              }),
        ),
      );
    },
  };
}

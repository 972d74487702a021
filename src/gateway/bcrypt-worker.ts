/**
 * bcrypt password checks off the event loop: one worker thread (started at the first check,
 * then kept) runs bcryptjs's compareSync, one check at a time. A bcrypt compare is slow by
 * design (~300 ms at cost 12); on the event loop it would stall every client of the replica.
 *
 * The queue is bounded: beyond `maxPending` checks (the running one included) a check is
 * refused at once with BcryptBusyError instead of queueing, so that a burst of logins costs
 * at most that many compares of waiting. If the thread dies, the checks it had are refused
 * (rejected) and the next check starts a new thread: the process lives on.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";

/** Thrown (as a rejection) when `maxPending` checks are already queued or running. */
export class BcryptBusyError extends Error {
  override name = "BcryptBusyError";
}

interface Pending {
  resolve(match: boolean): void;
  reject(err: Error): void;
}

// Evaluated as a CommonJS script in the thread. A malformed input is a mismatch, not an error.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const bcrypt = require(workerData.bcryptPath);
parentPort.on("message", ({ id, password, hash }) => {
  let match = false;
  try {
    match = bcrypt.compareSync(password, hash) === true;
  } catch {
    match = false;
  }
  parentPort.postMessage({ id, match });
});
`;

const bcryptPath = createRequire(import.meta.url).resolve("bcryptjs");

export class BcryptWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private lastId = 0;

  constructor(
    /** Checks queued or running at most; more are refused with BcryptBusyError. */
    readonly maxPending: number,
    private readonly log: Logger,
  ) {}

  /** Whether `password` matches the bcrypt `hash`; rejects when busy or when the thread died. */
  compare(password: string, hash: string): Promise<boolean> {
    if (this.pending.size >= this.maxPending)
      return Promise.reject(new BcryptBusyError("too many password checks in progress"));
    const worker = this.worker ?? this.start();
    const id = ++this.lastId;
    return new Promise<boolean>((resolve, reject) => {
      if (this.pending.size === 0) worker.ref();
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, password, hash });
    });
  }

  /** Checks queued or running. */
  get size(): number {
    return this.pending.size;
  }

  /** Stops the thread; its checks are refused. A later compare() starts a new one. */
  async close(): Promise<void> {
    await this.worker?.terminate();
  }

  private start(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath } });
    // Referenced only while it has checks: an idle thread must not keep a stopping process alive.
    worker.unref();
    worker.on("message", ({ id, match }: { id: number; match: boolean }) => {
      const entry = this.pending.get(id);
      if (!entry) return;
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref();
      entry.resolve(match === true);
    });
    // "error" is followed by "exit": whichever comes first refuses what the thread had.
    const lost = (reason: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      const refused = [...this.pending.values()];
      this.pending.clear();
      if (refused.length > 0)
        this.log.warn({ reason, refused: refused.length }, "bcrypt worker stopped; its password checks are refused");
      for (const entry of refused) entry.reject(new Error(`bcrypt worker stopped: ${reason}`));
    };
    worker.on("error", (err) => {
      this.log.error({ err: err.message }, "bcrypt worker failed");
      lost(err.message);
    });
    worker.on("exit", (code) => lost(`exit code ${code}`));
    this.worker = worker;
    return worker;
  }
}

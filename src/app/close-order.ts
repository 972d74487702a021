/**
 * The one shutdown order of every roomcast process: what a gateway and a worker close, they
 * register under a phase, and close() runs the phases in this order. A step that fails is
 * logged and the next ones still run, so that Redis is always closed last.
 */
import type { Logger } from "pino";

export const CLOSE_PHASES = [
  /** Unready at once, and no new sessions, requests or jobs. */
  "stop accepting",
  /** Clients moved to other replicas, spread over ROOMCAST_DRAIN_S; running jobs finish or go back to the queue. */
  "drain",
  /** Requests, HTTP answers and publishes in flight finish; servers close. */
  "finish in flight",
  /** Timers and background work: lease renewals, heartbeats, the node registry entry. */
  "stop background work",
  /** Queues, then the Redis connections. */
  "close queues",
  "close redis",
] as const;

export type ClosePhase = (typeof CLOSE_PHASES)[number];

interface Step {
  phase: ClosePhase;
  name: string;
  close: () => unknown;
}

export class CloseOrder {
  private readonly steps: Step[] = [];
  private closing: Promise<void> | undefined;

  constructor(private readonly log: Logger) {}

  /** Registers `close` to run in `phase` (steps of one phase run in the order added). */
  add(phase: ClosePhase, name: string, close: () => unknown): void {
    this.steps.push({ phase, name, close });
  }

  /** Runs every step, phase by phase; once, whoever calls it. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const phase of CLOSE_PHASES) {
        for (const step of this.steps.filter((s) => s.phase === phase)) {
          try {
            await step.close();
          } catch (err) {
            this.log.warn({ err, phase, step: step.name }, "shutdown step failed");
          }
        }
      }
    })();
    return this.closing;
  }
}

/**
 * The job channel and the job API (docs/protocol.md, "Channels and authorization", "HTTP API"), declared once for the
 * gateway, the workers, the client SDK, the console and the tests.
 */
import { z } from "zod";

/**
 * A job's state as its channel shows it. `queued`: waiting for a worker; `active`: a worker
 * runs it; `retrying`: an attempt failed and another follows after a backoff; `stalled`: the
 * worker running it stopped (killed, lost) and it waits for another; the last three are final.
 */
export const JOB_STATES = ["queued", "active", "retrying", "stalled", "completed", "failed", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINAL_JOB_STATES = ["completed", "failed", "cancelled"] as const;
export type FinalJobState = (typeof FINAL_JOB_STATES)[number];

export function isFinalState(state: JobState): state is FinalJobState {
  return (FINAL_JOB_STATES as readonly string[]).includes(state);
}

export const LOG_STREAMS = ["stdout", "stderr"] as const;
export type LogStream = (typeof LOG_STREAMS)[number];
/** Lowest first: a filter on a level keeps that level and the ones after it. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One log line; `n` counts a job's lines from 1, across its attempts. */
export interface LogLine {
  n: number;
  stream: LogStream;
  text: string;
  ts: number;
  level?: LogLevel;
}

/** The job channel's snapshot: the job's state so far (docs/protocol.md, "Channels and authorization"). */
export interface JobSnapshot {
  state: JobState;
  /** 0 to 100. */
  progress: number;
  attemptsMade: number;
  /** The step the processor last announced (`ctx.status`). */
  status?: string;
  result?: unknown;
  failedReason?: string;
  lastLogLine: LogLine | null;
  /** Final jobs: when the channel and its history go away (ms since epoch). */
  expiresAt?: number;
}

/** The event types of a job channel, and their data. */
export interface JobEventData {
  state: {
    state: Exclude<JobState, FinalJobState>;
    attemptsMade: number;
    /** The attempt that starts (`active`), from 1. */
    attempt?: number;
    /** `active`: the worker (ROOMCAST_NODE_ID) running the attempt. */
    worker?: string;
    /** `active` after a failed attempt (`retry`), or after one whose worker stopped or shut down (`interrupted`). */
    restarted?: "retry" | "interrupted";
    status?: string;
    failedReason?: string;
    /** `retrying`: when the next attempt starts. */
    retryInMs?: number;
    /** `queued` again: why (for example the worker shut down). */
    reason?: string;
  };
  progress: { progress: number };
  /** `filtered`: lines a subscription's filter removed from this batch (docs/protocol.md, "Requests"). */
  log: { lines: LogLine[]; filtered?: number };
  done: {
    state: FinalJobState;
    attemptsMade: number;
    result?: unknown;
    failedReason?: string;
    durationMs?: number;
    expiresAt: number;
  };
}
export type JobEventType = keyof JobEventData;

/** Events of `env:<id>:logs`: a job's log lines, as on its own channel. */
export interface EnvLogData {
  jobId: string;
  name: string;
  lines: LogLine[];
  filtered?: number;
}

/** Job names and environment ids: what a channel name can carry. */
export const JOB_NAME = /^[A-Za-z0-9_.-]{1,100}$/;
export const ENV_ID = /^[A-Za-z0-9_.@-]{1,100}$/;

export const createJobSchema = z
  .object({
    name: z.string().regex(JOB_NAME, "letters, digits and _.- only, 1 to 100 characters"),
    envId: z.string().regex(ENV_ID, "letters, digits and _.@- only, 1 to 100 characters").optional(),
    data: z.unknown().optional(),
    opts: z
      .object({
        /** Attempts in all, the first included. */
        attempts: z.number().int().min(1).max(25).optional(),
        /** First retry delay; doubled for each later one. */
        backoffMs: z.number().int().min(0).max(3_600_000).optional(),
        /** Start no earlier than this from now. */
        delayMs: z
          .number()
          .int()
          .min(0)
          .max(7 * 24 * 3_600_000)
          .optional(),
        /** 1 is the highest; jobs without a priority go first. */
        priority: z.number().int().min(1).max(1_000_000).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type CreateJobRequest = z.infer<typeof createJobSchema>;

/** `POST /v1/jobs` answer. */
export interface CreatedJob {
  jobId: string;
  channel: string;
}

/** `GET /v1/jobs/:id` answer. */
export interface JobView extends Omit<JobSnapshot, "expiresAt"> {
  jobId: string;
  name: string;
  channel: string;
  owner: string;
  envId?: string;
  data: unknown;
  attempts: number;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  expiresAt?: number;
}

/** `DELETE /v1/jobs/:id` answer: `cancelled` at once, or `cancelling` while its worker stops it. */
export interface CancelledJob {
  jobId: string;
  state: JobState | "cancelling";
}

/** `GET /v1/jobs/stats` answer. */
export interface JobStats {
  /** Jobs per BullMQ state, queue-wide. */
  counts: { waiting: number; active: number; delayed: number; prioritized: number; completed: number; failed: number };
  /** Running jobs the caller may see, with their progress (at most 100). */
  active: {
    jobId: string;
    name: string;
    envId?: string;
    progress: number;
    status?: string;
    attempt: number;
    startedAt?: number;
  }[];
  /** Job names some worker ran in the last day. */
  processors: string[];
}

/** The channel of a job. */
export function jobChannel(jobId: string): string {
  return `job:${jobId}`;
}

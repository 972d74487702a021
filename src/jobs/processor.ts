/**
 * The processor API (`roomcast/worker`): a processor is an async function of a context that
 * streams its output to the job's channel. Workers load processors from the modules named in
 * ROOMCAST_PROCESSORS, each exporting (default, or as `processors`) an object of job name
 * to processor; `defineProcessors` gives it types. See docs/jobs.md.
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError } from "../config/load-config.js";
import { JOB_NAME, type LogStream } from "../contracts/jobs.js";
import type { LogOptions } from "./job-output.js";

export interface JobInfo<Data> {
  id: string;
  name: string;
  data: Data;
  /** The `sub` of the token that created it. */
  owner: string;
  envId?: string;
  /** This attempt, from 1. */
  attempt: number;
  /** Attempts in all. */
  attempts: number;
}

export interface ProcessorContext<Data = unknown> {
  readonly job: JobInfo<Data>;
  /**
   * Aborted when the job is cancelled (`reason` "cancelled") or its worker shuts down
   * ("shutdown": the job runs again elsewhere). Stop soon after; `sleep` rejects at once.
   */
  readonly signal: AbortSignal;
  /** Appends one log line per line of `text` (stdout unless told). Batched; never blocks. */
  log(text: string, options?: LogStream | LogOptions): void;
  /** Progress from 0 to 100 (clamped, rounded to 2 decimals); conflated (only the newest value between batches goes out). */
  progress(value: number): void;
  /** Announces the step the job is at ("compiling", "uploading"): a `state` event, sent at once. */
  status(status: string): Promise<void>;
  /** Publishes the environment's status (`env:<envId>:status`, its snapshot) at once. */
  envStatus(data: Record<string, unknown>, envId?: string): Promise<void>;
  /** Waits, unless aborted first (then rejects with the abort reason). */
  sleep(ms: number): Promise<void>;
  /** Resolves once everything logged so far is published (backpressure for chatty jobs). */
  flush(): Promise<void>;
}

/** Returns the job's result (JSON), or throws to fail the attempt. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Processor<Data = any, Result = unknown> = (ctx: ProcessorContext<Data>) => Promise<Result> | Result;
export type Processors = Record<string, Processor>;

/** Types a module's processors: `export default defineProcessors({ "acme.build": async (ctx) => ... })`. */
export function defineProcessors<P extends Processors>(processors: P): P {
  return processors;
}

/** Turns `log(text, "stderr")` and `log(text, { level })` into options. */
export function logOptions(options: LogStream | LogOptions | undefined): LogOptions {
  return typeof options === "string" ? { stream: options } : (options ?? {});
}

/** Checks a module's export and adds its processors; a clash or a bad name is a ConfigError. */
export function addProcessors(
  into: Map<string, { processor: Processor; from: string }>,
  exported: unknown,
  from: string,
): void {
  const table = (exported as { default?: unknown; processors?: unknown }) ?? {};
  const candidate = (table.default ?? table.processors) as unknown;
  if (typeof candidate !== "object" || candidate === null || Array.isArray(candidate)) {
    throw new ConfigError(
      `invalid setting ROOMCAST_PROCESSORS: ${from} must export (default, or as processors) an object of job name to processor function`,
    );
  }
  for (const [name, processor] of Object.entries(candidate)) {
    if (!JOB_NAME.test(name))
      throw new ConfigError(
        `invalid setting ROOMCAST_PROCESSORS: ${from}: job name ${JSON.stringify(name)} must match ${JOB_NAME}`,
      );
    if (typeof processor !== "function")
      throw new ConfigError(`invalid setting ROOMCAST_PROCESSORS: ${from}: ${name} is not a function`);
    const taken = into.get(name);
    if (taken)
      throw new ConfigError(
        `invalid setting ROOMCAST_PROCESSORS: ${name} is defined by both ${taken.from} and ${from}`,
      );
    into.set(name, { processor: processor as Processor, from });
  }
}

/** Imports the modules of ROOMCAST_PROCESSORS: paths (relative to the working directory) or package names. */
export async function loadProcessorModules(
  specifiers: readonly string[],
  into: Map<string, { processor: Processor; from: string }>,
): Promise<void> {
  for (const specifier of specifiers) {
    const isPath = specifier.startsWith(".") || isAbsolute(specifier);
    const target = isPath ? pathToFileURL(resolve(process.cwd(), specifier)).href : specifier;
    let exported: unknown;
    try {
      exported = await import(target);
    } catch (err) {
      throw new ConfigError(
        `invalid setting ROOMCAST_PROCESSORS: cannot load ${specifier} (${(err as Error).message.split("\n")[0]})`,
      );
    }
    addProcessors(into, exported, specifier);
  }
}

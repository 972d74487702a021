/**
 * roomcast/worker: the processor API, for modules that ROOMCAST_PROCESSORS points a worker
 * at. See docs/jobs.md.
 */
export { defineProcessors, type JobInfo, type Processor, type ProcessorContext, type Processors } from "./processor.js";
export type { LogOptions } from "./job-output.js";
export type * from "../contracts/jobs.js";

/** Helpers for job tests: the job API over HTTP, and a job channel followed to its end. */
import assert from "node:assert/strict";
import type { ChannelEvent, SubscribeOk, Unsubscribed } from "../../src/contracts/events.js";
import type { JobEventData, JobSnapshot, LogLine } from "../../src/contracts/jobs.js";
import { request, waitUntil, type TestSocket } from "./clients.js";

export const JOB_SCOPES = "jobs:read jobs:write env:read";

export async function httpJson(
  method: string,
  url: string,
  bearer: string | undefined,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method,
    headers: {
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** POST /v1/jobs; asserts 201 and returns the job id. */
export async function createJob(baseUrl: string, bearer: string, body: Record<string, unknown>): Promise<string> {
  const res = await httpJson("POST", `${baseUrl}/v1/jobs`, bearer, body);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.channel, `job:${res.body.jobId}`);
  return res.body.jobId as string;
}

/** What a subscriber of a job channel saw: the subscribe answer, then every live event. */
export interface FollowedJob {
  answer: SubscribeOk;
  live: ChannelEvent[];
  unsubscribed: Unsubscribed[];
  /** Answer events then live events, in arrival order. */
  all(): ChannelEvent[];
  done(): Promise<ChannelEvent>;
}

/** Subscribes (with `history`, default everything) and records the channel until `done`. */
export async function followJob(
  socket: TestSocket,
  jobId: string,
  options: { history?: number; filter?: Record<string, unknown>; timeoutMs?: number } = {},
): Promise<FollowedJob> {
  const channel = `job:${jobId}`;
  const live: ChannelEvent[] = [];
  const unsubscribed: Unsubscribed[] = [];
  socket.on("event", (e) => e.channel === channel && live.push(e));
  socket.on("unsubscribed", (u) => u.channel === channel && unsubscribed.push(u));
  const payload: Record<string, unknown> = { channel, history: options.history ?? 100_000 };
  if (options.filter) payload.filter = options.filter;
  const answer = await request<SubscribeOk & { ok: boolean; error?: unknown }>(socket, "subscribe", payload);
  assert.equal(answer.ok, true, JSON.stringify(answer));
  const all = () => [...answer.events, ...live];
  return {
    answer,
    live,
    unsubscribed,
    all,
    async done() {
      await waitUntil(() => all().some((e) => e.type === "done"), options.timeoutMs ?? 60_000, `done on ${channel}`);
      return all().find((e) => e.type === "done")!;
    },
  };
}

/** Asserts offsets are 1 apart, from the first event's to the last's, with no duplicate. */
export function assertContiguous(events: readonly ChannelEvent[], what: string): void {
  for (let i = 1; i < events.length; i++) {
    assert.equal(
      events[i]!.offset,
      events[i - 1]!.offset + 1,
      `${what}: offset ${events[i]!.offset} after ${events[i - 1]!.offset}`,
    );
    assert.equal(events[i]!.epoch, events[0]!.epoch, `${what}: epoch changed`);
  }
}

export function logLines(events: readonly ChannelEvent[]): LogLine[] {
  return events.filter((e) => e.type === "log").flatMap((e) => (e.data as JobEventData["log"]).lines);
}

/** Asserts line numbers run from `from` up by one. */
export function assertLinesContiguous(lines: readonly LogLine[], from: number, what: string): void {
  lines.forEach((line, i) => assert.equal(line.n, from + i, `${what}: line ${i} is n=${line.n}, expected ${from + i}`));
}

export function states(events: readonly ChannelEvent[]): string[] {
  return events.filter((e) => e.type === "state" || e.type === "done").map((e) => (e.data as { state: string }).state);
}

export function stateEvents(events: readonly ChannelEvent[]): JobEventData["state"][] {
  return events.filter((e) => e.type === "state").map((e) => e.data as JobEventData["state"]);
}

/** The `active` states that start an attempt (they name the worker; step changes do not). */
export function attemptStarts(events: readonly ChannelEvent[]): JobEventData["state"][] {
  return stateEvents(events).filter((s) => s.state === "active" && s.worker !== undefined);
}

export async function jobView(
  baseUrl: string,
  bearer: string,
  jobId: string,
): Promise<Record<string, unknown> & Partial<JobSnapshot>> {
  const res = await httpJson("GET", `${baseUrl}/v1/jobs/${jobId}`, bearer);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body as Record<string, unknown> & Partial<JobSnapshot>;
}

/** Waits until the job's progress (GET /v1/jobs/:id) reaches `percent`. */
export async function waitForProgress(
  baseUrl: string,
  bearer: string,
  jobId: string,
  percent: number,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await jobView(baseUrl, bearer, jobId);
    if ((view.progress ?? 0) >= percent) return;
    if (Date.now() > deadline)
      throw new Error(`job ${jobId} did not reach ${percent}% (at ${view.progress}%, ${view.state})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

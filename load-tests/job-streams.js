/**
 * Job streams: VUs start `sample.build` jobs over POST /v1/jobs, subscribe to each job's
 * channel `job:<id>` with history (so nothing published before the subscription is missed),
 * and follow it until `done`. Every job's log lines must be numbered from 1 with no gap and
 * no repeat (across retried attempts too), the last line must be `build ok: ...`, and the
 * job must complete.
 *
 * Measures: roomcast_job_time_to_done (POST -> `done` received), roomcast_job_time_to_first_line,
 * roomcast_job_create_duration, roomcast_job_lines (log lines received),
 * roomcast_job_line_gaps (line numbers out of sequence: must stay 0),
 * roomcast_job_offset_gaps (channel offsets skipped or repeated: must stay 0),
 * roomcast_job_completed (a Rate).
 *
 *   k6 run -e BASE_URL=http://localhost:3000 -e JWT_SECRET=... load-tests/job-streams.js
 *
 * Needs workers with ROOMCAST_SAMPLE_PROCESSORS=true (`npm start` runs one). Sizing (__ENV,
 * defaults): JOB_VUS=10 VUs for DURATION_S=120, each job LINES=200 log lines over
 * JOB_DURATION_MS=5000, FAIL_ATTEMPTS=0 attempts that fail on purpose first (each is retried:
 * line numbers go on), JOB_ENV_ID (none: the VU's own jobs; set it to also count the
 * subscriptions against that environment's connection limit), DONE_TIMEOUT_MS (the job's
 * duration times its attempts, plus 60 s for the queue). Jobs run ROOMCAST_WORKER_CONCURRENCY
 * (4) at a time per worker: with fewer worker slots than JOB_VUS, time to done includes the
 * wait in the queue. A job's events must fit in the channel's history (ROOMCAST_HISTORY_SIZE,
 * 1000): about LINES / 10 + 30 for the default pace.
 */
import { check } from "k6";
import exec from "k6/execution";
import { Counter, Rate, Trend } from "k6/metrics";
import {
  api,
  baseUrl,
  checkTarget,
  createJob,
  credentials,
  envNumber,
  envString,
  follow,
  newRunId,
  OffsetTracker,
  SocketIoClient,
  waitUntil,
} from "./lib/socketio.js";

const JOB_VUS = envNumber("JOB_VUS", 10);
const DURATION_S = envNumber("DURATION_S", 120);
const LINES = envNumber("LINES", 200);
const JOB_DURATION_MS = envNumber("JOB_DURATION_MS", 5000);
const FAIL_ATTEMPTS = envNumber("FAIL_ATTEMPTS", 0);
const JOB_ENV_ID = envString("JOB_ENV_ID", "");
const DONE_TIMEOUT_MS = envNumber("DONE_TIMEOUT_MS", JOB_DURATION_MS * (FAIL_ATTEMPTS + 1) + 60000);
const HISTORY = envNumber("HISTORY", 1000);

const timeToDone = new Trend("roomcast_job_time_to_done", true);
const timeToFirstLine = new Trend("roomcast_job_time_to_first_line", true);
const createDuration = new Trend("roomcast_job_create_duration", true);
const lines = new Counter("roomcast_job_lines");
const lineGaps = new Counter("roomcast_job_line_gaps");
const offsetGaps = new Counter("roomcast_job_offset_gaps");
const completed = new Rate("roomcast_job_completed");

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: {
    jobs: {
      executor: "constant-vus",
      exec: "jobs",
      vus: JOB_VUS,
      duration: `${DURATION_S}s`,
      gracefulStop: `${Math.ceil(DONE_TIMEOUT_MS / 1000)}s`,
    },
  },
  thresholds: {
    roomcast_job_time_to_done: [`p(95)<${JOB_DURATION_MS * (FAIL_ATTEMPTS + 1) + 10000}`],
    roomcast_job_time_to_first_line: ["p(95)<5000"],
    roomcast_job_line_gaps: ["count==0"],
    roomcast_job_offset_gaps: ["count==0"],
    roomcast_job_completed: ["rate>0.99"],
    checks: ["rate>0.99"],
  },
};

export function setup() {
  checkTarget();
  return { runId: newRunId() };
}

/** `[ 12/200] text`: the sample build's numbered lines. */
const NUMBERED = /^\[\s*(\d+)\/(\d+)\]/;

/** @param {{ runId: string }} data */
export async function jobs(data) {
  lineGaps.add(0);
  offsetGaps.add(0);
  const base = baseUrl(exec.vu.idInTest);
  const { token } = credentials(`${data.runId}-jobs-${exec.vu.idInTest}`, {
    scope: "jobs:read jobs:write",
    envs: JOB_ENV_ID ? [JOB_ENV_ID] : [],
  });
  const client = new SocketIoClient(base, { token });
  try {
    await client.ready;

    const started = Date.now();
    const created = createJob(base, token, {
      name: "sample.build",
      ...(JOB_ENV_ID ? { envId: JOB_ENV_ID } : {}),
      data: { lines: LINES, durationMs: JOB_DURATION_MS, failAttempts: FAIL_ATTEMPTS },
      opts: { attempts: FAIL_ATTEMPTS + 1 },
    });
    createDuration.add(created.durationMs);
    if (!check(created, { "job created (201)": (r) => r.status === 201 && typeof r.body.jobId === "string" })) return;
    const channel = `job:${created.body.jobId}`;

    let nextLine = 1;
    let firstLineAt = 0;
    let lastText = "";
    /** @type {any} */
    let done = null;
    let numbered = { expected: 1, ok: true, last: 0 };
    const tracker = new OffsetTracker(channel);
    const answer = await follow(client, { channel, history: HISTORY }, tracker, (event) => {
      if (event.type === "log") {
        for (const line of event.data.lines) {
          if (!firstLineAt) firstLineAt = Date.now();
          lines.add(1);
          if (line.n !== nextLine) lineGaps.add(1);
          nextLine = line.n + 1;
          lastText = line.text;
          const m = NUMBERED.exec(line.text);
          if (m) {
            const i = Number(m[1]);
            // A retried attempt starts again at [1/LINES] (under new line numbers).
            if (i === 1) numbered = { expected: 1, ok: true, last: 0 };
            if (i !== numbered.expected || Number(m[2]) !== LINES) numbered.ok = false;
            numbered.expected = i + 1;
            numbered.last = i;
          }
        }
      } else if (event.type === "done") {
        done = event.data;
      }
    });
    if (!check(answer, { "subscribed to the job channel": (a) => a.ok === true })) return;
    check(answer, {
      "history holds the job from its first event": (a) =>
        a.ok === true && (a.events.length === 0 || a.events[0]?.offset === 1),
    });

    const finished = await waitUntil(() => done !== null || client.closed, DONE_TIMEOUT_MS, 20);
    // Leave nothing running behind.
    if (done === null) api("DELETE", `${base}/v1/jobs/${created.body.jobId}`, token, undefined, "DELETE /v1/jobs/:id");
    if (done !== null) timeToDone.add(Date.now() - started);
    if (firstLineAt) timeToFirstLine.add(firstLineAt - started);
    const end = done ?? {};
    completed.add(end.state === "completed");
    offsetGaps.add(tracker.gaps + tracker.duplicates);
    check(null, {
      "job done in time": () => finished && done !== null,
      "job completed": () => end.state === "completed",
      "received the job's log lines": () => nextLine > 1,
      "the last attempt printed [1/LINES] to [LINES/LINES] in order": () => numbered.ok && numbered.last === LINES,
      "the last line is build ok": () => lastText.startsWith("build ok"),
    });
  } finally {
    client.close();
  }
}

/**
 * Jobs end to end (docs/protocol.md, "Channels and authorization", "HTTP API"): real Redis, two gateways and two workers
 * (`roomcast worker` with the sample processors), real BullMQ, real socket.io-client
 * subscribers. Thousands of lines in order on both replicas, a late subscriber, a worker
 * SIGKILLed mid-job, retries, final failures, cancels, a worker shutdown that requeues,
 * environment channels, the job API's authorization, and the channel's expiry.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import type { ChannelEvent, Unsubscribed } from "../../src/contracts/events.js";
import type { EnvLogData, JobEventData, JobSnapshot } from "../../src/contracts/jobs.js";
import { refusedWith, type Answer } from "../support/answers.js";
import { connect, nextEvent, request, token, waitUntil, type TestSocket } from "../support/clients.js";
import { LIMITS_OFF, startCluster, startTestRedis, type TestCluster, type TestRedis } from "../support/cluster.js";
import { startGateway, type GatewayProcess } from "../support/gateway-process.js";
import {
  assertContiguous,
  assertLinesContiguous,
  attemptStarts,
  createJob,
  followJob,
  httpJson,
  JOB_SCOPES,
  jobView,
  logLines,
  stateEvents,
  states,
  waitForProgress,
} from "../support/jobs.js";
import { waitReadyz } from "../support/util.js";

const SETTINGS = {
  ...LIMITS_OFF,
  // A worker that stopped is found out within about two lock periods.
  ROOMCAST_JOB_LOCK_S: "3",
  ROOMCAST_JOB_BACKOFF_MS: "200",
  ROOMCAST_DRAIN_S: "1",
};

describe("jobs", () => {
  let cluster: TestCluster;
  let a: GatewayProcess;
  let b: GatewayProcess;
  /** sub alice, env e1 granted. */
  let alice: string;
  const sockets: TestSocket[] = [];

  before(async () => {
    cluster = await startCluster({ replicas: 2, workers: 2, env: SETTINGS });
    [a, b] = cluster.gateways as [GatewayProcess, GatewayProcess];
    alice = await token({ sub: "alice", envs: ["e1"], scope: JOB_SCOPES });
  });

  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
  });

  /** it(), but a failing test shows what the workers said. */
  const test = (name: string, fn: () => Promise<void>) =>
    it(name, async () => {
      try {
        await fn();
      } catch (err) {
        for (const w of cluster.workers) console.log(`--- ${w.nodeId}\n${w.output().slice(-3000)}`);
        throw err;
      }
    });

  async function client(
    gateway: GatewayProcess,
    claims: Parameters<typeof token>[0] = { sub: "alice", envs: ["e1"], scope: JOB_SCOPES },
  ): Promise<TestSocket> {
    const socket = await connect(gateway.url, { token: await token(claims) });
    sockets.push(socket);
    return socket;
  }

  test("a job of thousands of lines arrives complete and in order at subscribers on both replicas, and on its environment's log channel", async () => {
    const total = 5000;
    const onA = await client(a);
    const onB = await client(b);
    const envLogs: ChannelEvent[] = [];
    onB.on("event", (e) => e.channel === "env:e1:logs" && envLogs.push(e));
    const envAnswer = await request<{ ok: boolean; offset: number }>(onB, "subscribe", { channel: "env:e1:logs" });
    assert.equal(envAnswer.ok, true);
    const jobId = await createJob(a.url, alice, {
      name: "sample.build",
      envId: "e1",
      data: { lines: total, durationMs: 2500 },
    });
    const [fa, fb] = await Promise.all([followJob(onA, jobId), followJob(onB, jobId)]);
    const [doneA] = await Promise.all([fa.done(), fb.done()]);
    for (const [followed, where] of [
      [fa, "replica a"],
      [fb, "replica b"],
    ] as const) {
      const events = followed.all();
      assert.equal(events[0]!.offset, 1, `${where}: history from the first event`);
      assertContiguous(events, where);
      assert.deepEqual(states(events).slice(0, 2), ["queued", "active"], where);
      assert.equal(states(events).at(-1), "completed", where);
      const lines = logLines(events);
      assertLinesContiguous(lines, 1, where);
      // Every line of the build, in order: "[i/5000] ...".
      const numbered = lines
        .map((l) => /^\[\s*(\d+)\/5000\]/.exec(l.text)?.[1])
        .filter(Boolean)
        .map(Number);
      assert.deepEqual(
        numbered,
        Array.from({ length: total }, (_, i) => i + 1),
        `${where}: every build line once, in order`,
      );
      // Batched at the source: at most 100 lines per event.
      for (const e of events.filter((x) => x.type === "log"))
        assert.ok((e.data as JobEventData["log"]).lines.length <= 100);
      const progress = events
        .filter((e) => e.type === "progress")
        .map((e) => (e.data as { progress: number }).progress);
      assert.deepEqual(
        progress,
        [...progress].sort((x, y) => x - y),
        `${where}: progress only grows`,
      );
      assert.equal(progress.at(-1), 100);
      assert.ok(
        progress.length < total / 10,
        `${where}: progress is conflated (${progress.length} events for ${total} updates)`,
      );
    }
    assert.deepEqual(
      fb.all().map((e) => e.id),
      fa.all().map((e) => e.id),
      "both replicas saw the same events",
    );
    assert.equal(doneA.priority, "critical");
    const done = doneA.data as JobEventData["done"];
    assert.equal(done.state, "completed");
    assert.deepEqual(done.result, { artifact: `build-${jobId}.tar.gz`, lines: total, attempt: 1 });
    // The environment's log channel has the same lines, tagged with the job.
    await waitUntil(
      () => logLines(fa.all()).length === envLogs.flatMap((e) => (e.data as EnvLogData).lines).length,
      10_000,
      "env log lines",
    );
    assertContiguous(envLogs, "env:e1:logs");
    assert.ok(
      envLogs.every((e) => (e.data as EnvLogData).jobId === jobId && (e.data as EnvLogData).name === "sample.build"),
    );
    assert.deepEqual(
      envLogs.flatMap((e) => (e.data as EnvLogData).lines),
      logLines(fa.all()),
    );
    const view = await jobView(b.url, alice, jobId);
    assert.equal(view.state, "completed");
    assert.equal(view.progress, 100);
    assert.equal(view.attemptsMade, 1);
    assert.equal((view.lastLogLine as { n: number }).n, logLines(fa.all()).length);
    assert.equal(typeof view.expiresAt, "number");
  });

  test("a late subscriber gets the snapshot and the last lines, then the live tail, with no gap and no duplicate", async () => {
    const jobId = await createJob(a.url, alice, {
      name: "sample.build",
      envId: "e1",
      data: { lines: 3000, durationMs: 5000 },
    });
    await waitForProgress(a.url, alice, jobId, 30);
    const late = await followJob(await client(b), jobId, { history: 20 });
    const snapshot = late.answer.snapshot as JobSnapshot;
    assert.equal(snapshot.state, "active");
    assert.ok(snapshot.progress >= 30 && snapshot.progress < 100, `progress ${snapshot.progress}`);
    assert.equal(late.answer.events.length, 20);
    assert.equal(late.answer.events.at(-1)!.offset, late.answer.offset);
    // The snapshot is the state after the answer's last event.
    const answerLines = logLines(late.answer.events);
    assert.equal(snapshot.lastLogLine?.n, answerLines.at(-1)!.n);
    await late.done();
    const events = late.all();
    assertContiguous(events, "late subscriber");
    const lines = logLines(events);
    assertLinesContiguous(lines, answerLines[0]!.n, "late subscriber");
    assert.equal(lines.at(-1)!.text.startsWith("build ok: 3000 lines"), true);
  });

  test("a worker SIGKILLed mid-job: another worker runs the job again, and subscribers see it stall and restart", async () => {
    const watcher = await client(a);
    const jobId = await createJob(a.url, alice, { name: "sample.build", data: { lines: 400, durationMs: 4000 } });
    const followed = await followJob(watcher, jobId);
    await waitUntil(() => logLines(followed.all()).length >= 50, 20_000, "first lines");
    const first = attemptStarts(followed.all())[0]!;
    const victim = cluster.workers.find((w) => w.nodeId === first.worker);
    assert.ok(victim, `the worker running it (${first.worker}) is one of ours`);
    await victim.kill();
    cluster.workers.splice(cluster.workers.indexOf(victim), 1);
    const done = await followed.done();
    assert.equal((done.data as JobEventData["done"]).state, "completed");
    const events = followed.all();
    assertContiguous(events, "across the worker's death");
    const seen = stateEvents(events);
    const stalled = seen.find((s) => s.state === "stalled");
    assert.ok(stalled, `a stalled state: ${JSON.stringify(seen)}`);
    assert.equal(stalled.reason, "worker_lost");
    const restart = attemptStarts(events)[1];
    assert.ok(restart, "a second attempt start");
    assert.equal(restart.restarted, "interrupted");
    assert.notEqual(restart.worker, first.worker);
    // Line numbers go on from the last one published before the kill: no number twice.
    assertLinesContiguous(logLines(events), 1, "line numbers");
    await cluster.addWorker(SETTINGS);
  });

  test("a failed attempt is retried after a backoff, and subscribers see the retry", async () => {
    const followed = await followJob(
      await client(a),
      await createJob(a.url, alice, { name: "sample.build", data: { lines: 40, durationMs: 200, failAttempts: 1 } }),
    );
    const done = (await followed.done()).data as JobEventData["done"];
    assert.equal(done.state, "completed");
    assert.equal(done.attemptsMade, 2);
    const seen = stateEvents(followed.all());
    const retrying = seen.find((s) => s.state === "retrying")!;
    assert.match(retrying.failedReason!, /tests failed in attempt 1/);
    assert.equal(retrying.retryInMs, 200);
    assert.equal(retrying.attemptsMade, 1);
    const second = attemptStarts(followed.all())[1]!;
    assert.equal(second.attempt, 2);
    assert.equal(second.restarted, "retry");
    assertContiguous(followed.all(), "retries");
    assertLinesContiguous(logLines(followed.all()), 1, "line numbers across attempts");
    const stderr = logLines(followed.all()).filter((l) => l.stream === "stderr" && l.level === "error");
    assert.equal(stderr.length, 1, "the failing test's line");
  });

  test("a job that fails every attempt ends failed with its reason", async () => {
    const jobId = await createJob(b.url, alice, {
      name: "sample.build",
      data: { lines: 20, durationMs: 0, failAttempts: 9 },
      opts: { attempts: 2, backoffMs: 50 },
    });
    const followed = await followJob(await client(b), jobId);
    const done = (await followed.done()).data as JobEventData["done"];
    assert.equal(done.state, "failed");
    assert.equal(done.attemptsMade, 2);
    assert.match(done.failedReason!, /tests failed in attempt 2/);
    // Consecutive repeats collapsed (each step of the build is an `active` state with its status).
    const collapsed = states(followed.all()).filter((state, i, all) => state !== all[i - 1]);
    assert.deepEqual(collapsed, ["queued", "active", "retrying", "active", "failed"]);
    const view = await jobView(a.url, alice, jobId);
    assert.equal(view.state, "failed");
    assert.match(String(view.failedReason), /tests failed/);
  });

  test("cancel: a running job's processor is aborted and it ends cancelled; a queued one is cancelled at once; a finished one stays", async () => {
    const watcher = await client(a);
    const running = await createJob(a.url, alice, { name: "sample.build", data: { lines: 1000, durationMs: 20_000 } });
    const followed = await followJob(watcher, running);
    await waitUntil(() => logLines(followed.all()).length > 5, 20_000, "a running job");
    const cancel = await httpJson("DELETE", `${b.url}/v1/jobs/${running}`, alice);
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
    assert.deepEqual(cancel.body, { jobId: running, state: "cancelling" });
    const done = (await followed.done()).data as JobEventData["done"];
    assert.equal(done.state, "cancelled");
    assert.ok(logLines(followed.all()).length < 1000, "stopped early");
    assert.equal((await jobView(a.url, alice, running)).state, "cancelled");

    const queued = await createJob(a.url, alice, {
      name: "sample.build",
      data: { lines: 5 },
      opts: { delayMs: 60_000 },
    });
    const queuedFollow = await followJob(watcher, queued);
    const now = await httpJson("DELETE", `${a.url}/v1/jobs/${queued}`, alice);
    assert.deepEqual(now.body, { jobId: queued, state: "cancelled" });
    assert.deepEqual(states(queuedFollow.all()).slice(-1), ["cancelled"]);
    assert.equal((await queuedFollow.done()).type, "done");
    assert.deepEqual(states(queuedFollow.all()), ["queued", "cancelled"], "it never ran");

    const again = await httpJson("DELETE", `${a.url}/v1/jobs/${running}`, alice);
    assert.deepEqual(again.body, { jobId: running, state: "cancelled" });
  });

  test("a worker shutting down (SIGTERM) puts its running job back in the queue without spending an attempt; another worker finishes it", async () => {
    const watcher = await client(b);
    const jobId = await createJob(a.url, alice, { name: "sample.build", data: { lines: 300, durationMs: 6000 } });
    const followed = await followJob(watcher, jobId);
    await waitUntil(() => logLines(followed.all()).length > 10, 20_000, "a running job");
    const first = attemptStarts(followed.all())[0]!;
    const leaving = cluster.workers.find((w) => w.nodeId === first.worker)!;
    assert.equal(await leaving.stop(), 0, "the worker exits 0");
    cluster.workers.splice(cluster.workers.indexOf(leaving), 1);
    const done = (await followed.done()).data as JobEventData["done"];
    assert.equal(done.state, "completed");
    assert.equal(done.attemptsMade, 1, "the interrupted attempt did not count");
    const seen = stateEvents(followed.all());
    const requeued = seen.find((s) => s.state === "queued" && s.reason === "worker_shutdown");
    assert.ok(requeued, JSON.stringify(seen));
    const restart = attemptStarts(followed.all())[1]!;
    assert.equal(restart.restarted, "interrupted");
    assert.equal(restart.attempt, 1);
    assertContiguous(followed.all(), "requeue");
    assertLinesContiguous(logLines(followed.all()), 1, "line numbers");
    await cluster.addWorker(SETTINGS);
  });

  test("log filters narrow the lines of log events (stream, level, substring), on subscribe and with control, without dropping offsets", async () => {
    const [plain, warnings, changing] = await Promise.all([client(a), client(b), client(b)]);
    const jobId = await createJob(a.url, alice, {
      name: "sample.build",
      envId: "e1",
      data: { lines: 600, durationMs: 1500 },
    });
    const envStderr: ChannelEvent[] = [];
    changing.on("event", (e) => e.channel === "env:e1:logs" && envStderr.push(e));
    assert.equal(
      (await request<{ ok: boolean }>(changing, "subscribe", { channel: "env:e1:logs", filter: { stream: "stderr" } }))
        .ok,
      true,
    );
    const [all, warn, tsc] = await Promise.all([
      followJob(plain, jobId),
      followJob(warnings, jobId, { filter: { level: "warn" } }),
      followJob(changing, jobId, { filter: { contains: "TSC: COMPILED" } }),
    ]);
    await waitUntil(() => logLines(tsc.all()).length >= 5, 20_000, "compile lines");
    const cleared = await request<{ ok: boolean; filter?: unknown; paused: boolean }>(changing, "control", {
      channel: `job:${jobId}`,
      action: "filter",
      filter: {},
    });
    assert.deepEqual(cleared, { ok: true, channel: `job:${jobId}`, action: "filter", paused: false });
    const clearedAt = tsc.all().at(-1)!.offset;
    await Promise.all([all.done(), warn.done(), tsc.done()]);
    const everything = logLines(all.all());
    for (const [followed, what] of [
      [warn, "level warn"],
      [tsc, "contains, then cleared"],
    ] as const) {
      // Every event arrives (offsets stay contiguous); only lines are narrowed.
      assertContiguous(followed.all(), what);
      assert.deepEqual(
        followed.all().map((e) => e.id),
        all.all().map((e) => e.id),
        `${what}: the same events`,
      );
      for (const e of followed.all().filter((x) => x.type === "log")) {
        const data = e.data as JobEventData["log"];
        const full = (all.all().find((x) => x.id === e.id)!.data as JobEventData["log"]).lines.length;
        assert.equal(data.lines.length + (data.filtered ?? 0), full, `${what}: kept + filtered = the batch`);
      }
    }
    const warnLines = logLines(warn.all());
    assert.ok(warnLines.length > 0, "the build has warnings");
    assert.deepEqual(
      warnLines,
      everything.filter((l) => l.level === "warn" || l.level === "error"),
    );
    const beforeClear = logLines(tsc.all().filter((e) => e.offset <= clearedAt));
    assert.ok(
      beforeClear.every((l) => l.text.includes("tsc: compiled")),
      "case-insensitive substring",
    );
    assert.deepEqual(
      logLines(tsc.all().filter((e) => e.offset > clearedAt)),
      logLines(all.all().filter((e) => e.offset > clearedAt)),
      "after clearing: every line",
    );
    await waitUntil(
      () =>
        envStderr.length > 0 && logLines(envStderr).length === everything.filter((l) => l.stream === "stderr").length,
      10_000,
      "stderr on env:e1:logs",
    );
    assert.ok(logLines(envStderr).every((l) => l.stream === "stderr"));
  });

  test("Redis connections dropped mid-job (CLIENT KILL on every node): the job goes on and subscribers lose no line", async () => {
    const watcher = await client(b);
    const total = 2000;
    const jobId = await createJob(a.url, alice, { name: "sample.build", data: { lines: total, durationMs: 3000 } });
    const followed = await followJob(watcher, jobId);
    await waitUntil(() => logLines(followed.all()).length > 300, 20_000, "a running job");
    for (const port of cluster.redis.ports)
      spawnSync("redis-cli", ["-p", String(port), "client", "kill", "type", "normal"], { stdio: "ignore" });
    await waitUntil(() => logLines(followed.all()).length > 1200, 20_000, "more lines after the drop");
    for (const port of cluster.redis.ports)
      spawnSync("redis-cli", ["-p", String(port), "client", "kill", "type", "pubsub"], { stdio: "ignore" });
    const done = (await followed.done()).data as JobEventData["done"];
    assert.equal(done.state, "completed");
    const events = followed.all();
    assertContiguous(events, "across dropped connections");
    const lines = logLines(events);
    assertLinesContiguous(lines, 1, "line numbers");
    const numbered = lines
      .map((l) => /^\[\s*(\d+)\/2000\]/.exec(l.text)?.[1])
      .filter(Boolean)
      .map(Number);
    assert.deepEqual(
      numbered,
      Array.from({ length: total }, (_, i) => i + 1),
      "every build line once, in order",
    );
    // Each replica went unready while its connections came back; the next tests connect anew.
    await Promise.all([waitReadyz(a.url, 200, 10_000), waitReadyz(b.url, 200, 10_000)]);
  });

  test("a deploy feeds its environment's status channel, whose snapshot is the newest status", async () => {
    const watcher = await client(a);
    const statuses: ChannelEvent[] = [];
    watcher.on("event", (e) => e.channel === "env:e1:status" && statuses.push(e));
    assert.equal((await request<{ ok: boolean }>(watcher, "subscribe", { channel: "env:e1:status" })).ok, true);
    const jobId = await createJob(a.url, alice, {
      name: "sample.deploy",
      envId: "e1",
      data: { version: "2.4.0", durationMs: 400 },
    });
    await (await followJob(watcher, jobId)).done();
    await waitUntil(() => statuses.length >= 2, 10_000, "two statuses");
    assert.deepEqual(
      statuses.map((e) => (e.data as { status: string }).status),
      ["deploying", "healthy"],
    );
    assert.equal((statuses[0]!.data as { version: string }).version, "2.4.0");
    const late = await request<{ ok: boolean; snapshot: { status: string; jobId: string } }>(
      await client(b),
      "subscribe",
      { channel: "env:e1:status" },
    );
    assert.equal(late.snapshot.status, "healthy");
    assert.equal(late.snapshot.jobId, jobId);
  });

  test("the job API: scopes, validation naming the field, unknown processors, environments, and who may see a job", async () => {
    const noScope = await token({ sub: "alice", envs: ["e1"] });
    const readOnly = await token({ sub: "alice", envs: ["e1"], scope: "jobs:read" });
    const teammate = await token({ sub: "bob", envs: ["e1"], scope: JOB_SCOPES });
    const stranger = await token({ sub: "mallory", envs: ["e2"], scope: JOB_SCOPES });
    const admin = await token({ sub: "root", scope: "admin jobs:read" });
    const post = (bearer: string | undefined, body: unknown) => httpJson("POST", `${a.url}/v1/jobs`, bearer, body);
    const expectError = (
      res: { status: number; body: Record<string, unknown> },
      status: number,
      code: number,
      reason: string,
      field?: string,
    ) => {
      assert.equal(res.status, status, JSON.stringify(res.body));
      refusedWith({ ok: false, error: res.body.error } as Answer, code, reason, field);
    };
    expectError(await post(undefined, { name: "sample.build" }), 401, 4401, "unauthorized");
    expectError(await post(noScope, { name: "sample.build" }), 403, 4403, "forbidden");
    expectError(await post(readOnly, { name: "sample.build" }), 403, 4403, "forbidden");
    expectError(await post(alice, {}), 400, 4400, "bad_request", "name");
    expectError(await post(alice, { name: "has space" }), 400, 4400, "bad_request", "name");
    expectError(await post(alice, { name: "sample.build", extra: 1 }), 400, 4400, "bad_request");
    expectError(
      await post(alice, { name: "sample.build", opts: { attempts: 0 } }),
      400,
      4400,
      "bad_request",
      "opts.attempts",
    );
    expectError(await post(alice, { name: "sample.build", opts: { retries: 3 } }), 400, 4400, "bad_request", "opts");
    expectError(await post(alice, { name: "sample.build", envId: "e 1" }), 400, 4400, "bad_request", "envId");
    expectError(await post(alice, "{not json"), 400, 4400, "bad_request");
    expectError(
      await post(alice, { name: "sample.build", data: { blob: "x".repeat(70_000) } }),
      413,
      4413,
      "too_large",
    );
    expectError(await post(alice, { name: "sample.biuld" }), 404, 4404, "not_found");
    expectError(await post(alice, { name: "sample.build", envId: "e2" }), 403, 4403, "forbidden");

    const jobId = await createJob(a.url, alice, {
      name: "sample.build",
      envId: "e1",
      data: { lines: 5, durationMs: 0 },
    });
    await (await followJob(await client(a), jobId)).done();
    assert.equal((await jobView(a.url, teammate, jobId)).owner, "alice", "a token of the job's environment may see it");
    assert.equal((await jobView(a.url, admin, jobId)).state, "completed");
    expectError(await httpJson("GET", `${a.url}/v1/jobs/${jobId}`, stranger), 403, 4403, "forbidden");
    expectError(await httpJson("GET", `${a.url}/v1/jobs/${jobId}`, noScope), 403, 4403, "forbidden");
    expectError(await httpJson("GET", `${a.url}/v1/jobs/jNoSuchJob`, alice), 404, 4404, "not_found");
    expectError(await httpJson("GET", `${a.url}/v1/jobs/${"x".repeat(300)}`, alice), 404, 4404, "not_found");
    expectError(await httpJson("DELETE", `${a.url}/v1/jobs/${jobId}`, stranger), 403, 4403, "forbidden");
    expectError(await httpJson("DELETE", `${a.url}/v1/jobs/${jobId}`, readOnly), 403, 4403, "forbidden");

    // The job channel follows the same rule.
    const strangerSocket = await client(a, { sub: "mallory", envs: ["e2"], scope: JOB_SCOPES });
    refusedWith(await request<Answer>(strangerSocket, "subscribe", { channel: `job:${jobId}` }), 4403, "forbidden");
    refusedWith(await request<Answer>(strangerSocket, "subscribe", { channel: "job:jNoSuchJob" }), 4404, "not_found");
    const teammateSocket = await client(a, { sub: "bob", envs: ["e1"], scope: JOB_SCOPES });
    assert.equal((await request<{ ok: boolean }>(teammateSocket, "subscribe", { channel: `job:${jobId}` })).ok, true);
  });

  test("GET /v1/jobs/stats: counts per state, the caller's running jobs with their progress, and the processors", async () => {
    const jobId = await createJob(a.url, alice, {
      name: "sample.build",
      envId: "e1",
      data: { lines: 500, durationMs: 8000 },
    });
    await waitForProgress(a.url, alice, jobId, 5);
    const stats = await httpJson("GET", `${b.url}/v1/jobs/stats`, alice);
    assert.equal(stats.status, 200);
    const body = stats.body as {
      counts: Record<string, number>;
      active: { jobId: string; progress: number; name: string; envId: string; status: string; attempt: number }[];
      processors: string[];
    };
    assert.deepEqual(Object.keys(body.counts).sort(), [
      "active",
      "completed",
      "delayed",
      "failed",
      "prioritized",
      "waiting",
    ]);
    assert.ok(body.counts.active! >= 1 && body.counts.completed! >= 1);
    const mine = body.active.find((j) => j.jobId === jobId)!;
    assert.ok(mine, JSON.stringify(body.active));
    assert.equal(mine.name, "sample.build");
    assert.equal(mine.envId, "e1");
    assert.equal(mine.attempt, 1);
    assert.ok(mine.progress >= 5);
    assert.deepEqual(body.processors, ["sample.build", "sample.deploy", "sample.env-status"]);
    const stranger = await token({ sub: "mallory", envs: ["e2"], scope: "jobs:read" });
    const theirs = (await httpJson("GET", `${b.url}/v1/jobs/stats`, stranger)).body as typeof body;
    assert.equal(
      theirs.active.some((j) => j.jobId === jobId),
      false,
      "others' jobs are not listed",
    );
    assert.equal(
      (await httpJson("GET", `${b.url}/v1/jobs/stats`, await token({ sub: "x", scope: "publish" }))).status,
      403,
    );
    await httpJson("DELETE", `${a.url}/v1/jobs/${jobId}`, alice);
  });
});

describe("job channel expiry", () => {
  let cluster: TestCluster;

  before(async () => {
    // A queue of its own, whose finished jobs are kept 2 s.
    cluster = await startCluster({
      replicas: 2,
      workers: 1,
      env: { ...SETTINGS, ROOMCAST_QUEUE: "short", ROOMCAST_JOB_RETENTION_S: "2" },
    });
  });
  after(() => cluster?.close());

  it("a finished job's channel, history and record go after the retention: subscribers get unsubscribed 4404 expired", async () => {
    const [a, b] = cluster.gateways as [GatewayProcess, GatewayProcess];
    const alice = await token({ sub: "alice", scope: JOB_SCOPES });
    const onA = await connect(a.url, { token: alice });
    const onB = await connect(b.url, { token: alice });
    try {
      const jobId = await createJob(a.url, alice, { name: "sample.build", data: { lines: 10, durationMs: 0 } });
      const followed = await followJob(onA, jobId);
      const done = (await followed.done()).data as JobEventData["done"];
      assert.ok(
        done.expiresAt > Date.now() && done.expiresAt <= Date.now() + 2500,
        `expiresAt ${done.expiresAt - Date.now()} ms ahead`,
      );
      // A subscriber that came after the end gets the final snapshot, and the notice too.
      const late = await request<{ ok: boolean; snapshot: JobSnapshot }>(onB, "subscribe", { channel: `job:${jobId}` });
      assert.equal(late.snapshot.state, "completed");
      assert.equal(late.snapshot.expiresAt, done.expiresAt);
      const [noticeA, noticeB] = await Promise.all([
        nextEvent<Unsubscribed>(onA, "unsubscribed", 10_000),
        nextEvent<Unsubscribed>(onB, "unsubscribed", 10_000),
      ]);
      for (const notice of [noticeA, noticeB])
        assert.deepEqual(notice, { channel: `job:${jobId}`, code: 4404, reason: "expired" });
      assert.ok(Date.now() >= done.expiresAt - 50, "not before the retention ended");
      refusedWith(await request<Answer>(onA, "subscribe", { channel: `job:${jobId}` }), 4404, "not_found");
      const gone = await httpJson("GET", `${b.url}/v1/jobs/${jobId}`, alice);
      assert.equal(gone.status, 404);
      const history = await httpJson("GET", `${a.url}/v1/channels/job:${jobId}/history`, alice);
      assert.equal(history.status, 404);
    } finally {
      onA.close();
      onB.close();
    }
  });
});

describe("processors from ROOMCAST_PROCESSORS", () => {
  let cluster: TestCluster;

  before(async () => {
    // The user's module alone (no samples), on a queue of its own.
    cluster = await startCluster({ replicas: 1, env: { ...SETTINGS, ROOMCAST_QUEUE: "custom" } });
    await cluster.addWorker({ ROOMCAST_PROCESSORS: "./test/fixtures/processors.mjs", ROOMCAST_SAMPLE_PROCESSORS: "0" });
  });
  after(() => cluster?.close());

  it("run with the typed context: job info, multi-line logs with streams and levels, progress, status, environment status, result", async () => {
    const [gateway] = cluster.gateways as [GatewayProcess];
    const carol = await token({ sub: "carol", envs: ["e9"], scope: JOB_SCOPES });
    const socket = await connect(gateway.url, { token: carol });
    try {
      const statuses: ChannelEvent[] = [];
      socket.on("event", (e) => e.channel === "env:e9:status" && statuses.push(e));
      await request(socket, "subscribe", { channel: "env:e9:status" });
      const jobId = await createJob(gateway.url, carol, {
        name: "acme.echo",
        envId: "e9",
        data: { hello: "world" },
        opts: { attempts: 4 },
      });
      const followed = await followJob(socket, jobId);
      const done = (await followed.done()).data as JobEventData["done"];
      assert.equal(done.state, "completed");
      assert.deepEqual(done.result, { echo: { hello: "world" }, envId: "e9" });
      const lines = logLines(followed.all());
      assert.deepEqual(
        lines.map((l) => [l.n, l.stream, l.level, l.text]),
        [
          [1, "stdout", undefined, `job ${jobId} (acme.echo) for carol, attempt 1 of 4`],
          [2, "stderr", undefined, "first line"],
          [3, "stderr", undefined, "second line"],
          [4, "stdout", "warn", "a warning"],
        ],
      );
      assert.ok(stateEvents(followed.all()).some((s) => s.status === "echoing"));
      assert.deepEqual(
        followed
          .all()
          .filter((e) => e.type === "progress")
          .map((e) => (e.data as { progress: number }).progress),
        [50, 100],
      );
      await waitUntil(() => statuses.length === 1, 5000, "the environment status");
      assert.deepEqual(statuses[0]!.data, { status: "echoed", by: jobId });
      // The samples are not on this queue's workers.
      const sample = await httpJson("POST", `${gateway.url}/v1/jobs`, carol, { name: "sample.build" });
      assert.equal(sample.status, 404);
      const stats = (await httpJson("GET", `${gateway.url}/v1/jobs/stats`, carol)).body as { processors: string[] };
      assert.deepEqual(stats.processors, ["acme.echo", "acme.wait"]);
    } finally {
      socket.close();
    }
  });

  it("a cancelled processor sees its signal's reason, and its last lines still go out", async () => {
    const [gateway] = cluster.gateways as [GatewayProcess];
    const carol = await token({ sub: "carol", scope: JOB_SCOPES });
    const socket = await connect(gateway.url, { token: carol });
    try {
      const jobId = await createJob(gateway.url, carol, { name: "acme.wait" });
      const followed = await followJob(socket, jobId);
      await waitUntil(() => attemptStarts(followed.all()).length === 1, 10_000, "the job starts");
      assert.equal((await httpJson("DELETE", `${gateway.url}/v1/jobs/${jobId}`, carol)).body.state, "cancelling");
      assert.equal(((await followed.done()).data as JobEventData["done"]).state, "cancelled");
      assert.deepEqual(
        logLines(followed.all()).map((l) => l.text),
        ["stopping: the job was cancelled (cancelled)"],
      );
    } finally {
      socket.close();
    }
  });
});

describe("a job the queue refuses", () => {
  /** A Redis user that may do everything but touch BullMQ's keys ({rc:bull}...): adding to the queue fails. */
  const USER = "rc-noqueue";
  const PASSWORD = "noqueue-password";
  let redis: TestRedis;
  let gateway: GatewayProcess;

  /** redis-cli on one node of the test's Redis, as the default user. */
  const cli = (port: number, ...args: string[]): string => {
    const out = spawnSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8" });
    assert.equal(out.status, 0, out.stderr);
    return out.stdout;
  };

  before(async () => {
    redis = await startTestRedis();
    // On every node (a Redis Cluster's too): keys under rc: only, every pub/sub channel, every command.
    for (const port of redis.ports)
      assert.match(cli(port, "ACL", "SETUSER", USER, "on", `>${PASSWORD}`, "~rc:*", "&*", "+@all"), /OK/);
    gateway = await startGateway({ redisUrl: redis.url.replace("://", `://${USER}:${PASSWORD}@`), env: SETTINGS });
  });
  after(async () => {
    await gateway?.kill();
    await redis?.stop();
  });

  it("POST /v1/jobs fails when the queue refuses the job, and leaves neither the job's record nor its channel behind", async () => {
    // A worker announced sample.build (as a worker would, with the default user).
    cli(redis.ports[0]!, "-c", "HSET", "rc:{processors}:jobs", "sample.build", String(Date.now()));
    const alice = await token({ sub: "alice", envs: ["e1"], scope: JOB_SCOPES });
    const res = await httpJson("POST", `${gateway.url}/v1/jobs`, alice, {
      name: "sample.build",
      envId: "e1",
      data: { lines: 10 },
    });
    assert.ok(res.status >= 500, `status ${res.status}: ${JSON.stringify(res.body)}`);
    assert.ok([4500, 4503].includes((res.body.error as { code: number }).code), JSON.stringify(res.body));
    // The queue refused it (the ACL), not something else: the replica logs why (its output comes through a pipe, a moment later).
    await waitUntil(() => /NOPERM/.test(gateway.output()), 5000, "NOPERM in the replica's log");
    // Neither rc:{job:<id>}:owner nor the channel's meta, history and snapshot, on any node.
    const left = redis.ports.flatMap((port) =>
      cli(port, "--scan", "--pattern", "rc:{job:*").split("\n").filter(Boolean),
    );
    assert.deepEqual(left, []);
    const stats = (await httpJson("GET", `${gateway.url}/v1/stats`, await token({ sub: "ops", scope: "admin" })))
      .status;
    assert.equal(stats, 200, "the replica is fine otherwise");
  });
});

/**
 * The live console (ROOMCAST_CONSOLE): what the gateway serves, and the real thing in headless
 * Chromium (Debian's, driven by playwright-core) against `roomcast start` itself: environment
 * tiles from the demo status feed, a sample build started from the page, its replica
 * SIGKILLed mid-job (the reconnect banner shows, the log resumes without a gap), pause and
 * resume, the progress bar at 100% and the last line shown, then a build with a level filter set
 * and cleared mid-job (the lines it hid are no gap); a second user watching an environment and the
 * job shows in their "watching" lines, and goes after leaving. Screenshot: test-artifacts/console.png.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createConnection } from "node:net";
import { networkInterfaces } from "node:os";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import bcrypt from "bcryptjs";
import { freePort } from "../../src/cluster/embedded-redis.js";
import { startCluster, startTestRedis, type TestCluster, type TestRedis } from "../support/cluster.js";
import { connect, request, token, type TestSocket } from "../support/clients.js";
import type { Page } from "playwright-core";
import { browserSkip, launchChromium } from "../support/browser.js";
import { CLI, TEST_SECRET, waitForExit, type GatewayProcess } from "../support/gateway-process.js";

const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));

describe("the console, as served", () => {
  let cluster: TestCluster;
  let on: GatewayProcess;
  let off: GatewayProcess;
  before(async () => {
    cluster = await startCluster({ replicas: 1, env: { ROOMCAST_CONSOLE: "1" } });
    on = cluster.gateways[0]!;
    off = await cluster.addGateway({ ROOMCAST_CONSOLE: "0" });
  });
  after(() => cluster?.close());

  it("serves the page, its script and style, the SDK and the socket.io-client browser build, from its own origin only", async () => {
    const page = await fetch(`${on.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /text\/html/);
    assert.match(
      page.headers.get("content-security-policy")!,
      /default-src 'self'.*script-src 'self'.*connect-src 'self'/,
    );
    const html = await page.text();
    assert.ok(
      html.includes('src="/console/console.js"') &&
        !/https?:\/\//.test(html.replace(/<p class="hint">[\s\S]*?<\/p>/, "")),
      "no third-party resources",
    );
    for (const path of [
      "/console/console.js",
      "/console/console.css",
      "/console/vendor/socket.io.esm.min.js",
      "/console/sdk/roomcast-client.js",
      "/console/sdk/backoff.js",
    ]) {
      const res = await fetch(`${on.url}${path}`);
      assert.equal(res.status, 200, path);
      assert.ok((await res.text()).length > 100, path);
    }
    const sdk = await (await fetch(`${on.url}/console/sdk/roomcast-client.js`)).text();
    assert.ok(
      sdk.includes('from "/console/vendor/socket.io.esm.min.js"') && !sdk.includes('from "socket.io-client"'),
      "the SDK imports the browser build",
    );
    for (const path of [
      "/console/sdk/index.js",
      "/console/sdk/..%2F..%2Fpackage.json",
      "/console/sdk/%2e%2e%2fcli.js",
      "/console/nope.js",
    ]) {
      const res = await fetch(`${on.url}${path}`);
      assert.equal(res.status, 404, path);
      assert.equal(((await res.json()) as { error: { code: number } }).error.code, 4404);
    }
  });

  it("is off unless ROOMCAST_CONSOLE is set", async () => {
    assert.equal((await fetch(`${off.url}/`)).status, 404);
    assert.equal((await fetch(`${off.url}/console/console.js`)).status, 404);
  });
});

/**
 * `roomcast start` on a free port and the test's Redis (or its embedded one without);
 * resolves once it printed its banner. `ownGroup`: it leads a process group, as in a terminal.
 * `env`: more settings (HOST=127.0.0.1 unless it says otherwise; `{}` leaves HOST unset).
 */
async function startLocalCluster(
  redis: TestRedis | undefined,
  ownGroup = false,
  env: Record<string, string> = { HOST: "127.0.0.1" },
): Promise<{ child: ChildProcess; port: number; consoleUrl: string; pids: Map<string, number>; output: () => string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, "start", "--port", String(port), "--replicas", "2"], {
    env: {
      PATH: process.env.PATH ?? "",
      ...(redis ? { REDIS_URL: redis.url } : {}),
      ROOMCAST_LOG_PRETTY: "0",
      LOG_LEVEL: "warn",
      ROOMCAST_JOB_LOCK_S: "5",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: ownGroup,
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 30_000;
  while (!output.includes("Ctrl-C stops everything")) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`roomcast start did not come up: ${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const consoleUrl = /console:\s+(\S+)/.exec(output)![1]!;
  const pids = new Map([...output.matchAll(/(gateway-\d+) \(pid (\d+)\)/g)].map((m) => [m[1]!, Number(m[2])]));
  return { child, port, consoleUrl, pids, output: () => output };
}

describe("the console in a browser, against roomcast start", () => {
  const skip = browserSkip;
  let redis: TestRedis;
  before(async () => {
    redis = await startTestRedis();
  });
  after(() => redis?.stop());

  it(
    "starts a build, survives the loss of its replica without a gap in the log, pauses and resumes, and ends at 100% with the last line shown; shows who is watching",
    { skip },
    async () => {
      // A secret of ours, to mint a second user's token; leaves announced a second after the last connection went.
      const local = await startLocalCluster(redis, false, {
        HOST: "127.0.0.1",
        ROOMCAST_JWT_SECRET: TEST_SECRET,
        ROOMCAST_PRESENCE_DEBOUNCE_S: "1",
      });
      const browser = await launchChromium(["--disable-quic", "--disable-sync"]);
      let alice: TestSocket | undefined;
      try {
        const origin = new URL(local.consoleUrl).origin;
        const page = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
        const foreign: string[] = [];
        const problems: string[] = [];
        page.on("request", (r) => {
          if (
            !r.url().startsWith(`${origin}/`) &&
            !r.url().startsWith("data:") &&
            !r.url().startsWith(origin.replace("http", "ws"))
          )
            foreign.push(r.url());
        });
        page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
        await page.goto(local.consoleUrl);
        assert.equal(new URL(page.url()).hash, "", "the token leaves the address bar");

        // The demo feed's environment tiles.
        for (const env of ["dev", "staging", "prod"]) {
          await page
            .locator(`.tile[data-env="${env}"] .pill`)
            .filter({ hasText: /healthy|degraded/ })
            .waitFor({ timeout: 20_000 });
        }
        // Who is watching: the page's own user ("dev", no name claim), on every tile.
        const watchingDev = page.locator('.tile[data-env="dev"] .watching');
        await watchingDev.filter({ hasText: /^watching: dev$/ }).waitFor({ timeout: 20_000 });
        await page
          .locator('.tile[data-env="prod"] .watching')
          .filter({ hasText: /^watching: dev$/ })
          .waitFor({ timeout: 20_000 });
        await page.locator('input[name="lines"]').fill("600");
        await page.locator('input[name="seconds"]').fill("14");
        await page.click("#start-job");
        const progress = async () => Number(await page.getAttribute("#progress", "aria-valuenow"));
        const deadline = Date.now() + 30_000;
        while ((await progress()) < 20) {
          assert.ok(Date.now() < deadline, "the build reaches 20%");
          await page.waitForTimeout(100);
        }

        // SIGKILL the replica this page is connected to.
        const node = /online · (gateway-\d+)/.exec((await page.textContent("#connection")) ?? "")?.[1];
        assert.ok(node && local.pids.has(node), `connected to ${node}`);
        process.kill(local.pids.get(node)!, "SIGKILL");
        await page.locator("#banner").filter({ hasText: "Connection lost" }).waitFor({ timeout: 10_000 });
        await page.locator("#banner").filter({ hasText: "Reconnected" }).waitFor({ timeout: 20_000 });
        const atReconnect = await progress();

        // Pause: no line arrives; resume: the missed ones follow.
        await page.click("#pause");
        await page.locator("#pause").filter({ hasText: "Resume" }).waitFor();
        const pausedAt = await page.locator(".log .line").count();
        await page.waitForTimeout(1500);
        assert.equal(await page.locator(".log .line").count(), pausedAt, "nothing while paused");
        await page.click("#pause");
        await page.locator("#pause").filter({ hasText: "Pause" }).waitFor();

        await page.locator("#job-state").filter({ hasText: "completed" }).waitFor({ timeout: 60_000 });
        assert.equal(await progress(), 100);
        assert.ok(atReconnect < 100, "the job was still running when the replica died");
        await assertWholeLog(page, 600, "across the reconnect and the pause");
        assert.equal(await page.getAttribute("#log-count", "data-gaps"), "0");

        // A second user watches dev and the job (it runs on dev), by the name in its token, then
        // leaves: gone from both lines. (Connected only now: the SIGKILL above could have been its replica's.)
        const jobWatching = page.locator("#job-watching");
        await jobWatching.filter({ hasText: /^watching: dev$/ }).waitFor({ timeout: 20_000 });
        const aliceToken = await token({
          sub: "alice",
          envs: ["dev"],
          scope: "env:read jobs:read",
          extra: { name: "Alice" },
        });
        alice = await connectRetrying(`http://127.0.0.1:${local.port}`, aliceToken);
        const onEnv = await request<{ ok: boolean }>(alice, "subscribe", { channel: "env:dev:status" });
        assert.equal(onEnv.ok, true, JSON.stringify(onEnv));
        await watchingDev.filter({ hasText: /^watching: dev, Alice$/ }).waitFor({ timeout: 20_000 });
        const jobChannel = `job:${await page.textContent("#job-id")}`;
        const onJob = await request<{ ok: boolean }>(alice, "subscribe", { channel: jobChannel });
        assert.equal(onJob.ok, true, JSON.stringify(onJob));
        await jobWatching.filter({ hasText: /^watching: dev, Alice$/ }).waitFor({ timeout: 20_000 });
        await page.waitForTimeout(300);
        mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: `${ARTIFACTS}console.png`, fullPage: true });
        alice.close();
        await jobWatching.filter({ hasText: /^watching: dev$/ }).waitFor({ timeout: 20_000 });
        await watchingDev.filter({ hasText: /^watching: dev$/ }).waitFor({ timeout: 20_000 });

        // A second build, with a level filter set mid-job and cleared: the lines the filter hid
        // were received (the server counts them in `filtered`), so they are no gap.
        await page.locator('input[name="lines"]').fill("300");
        await page.locator('input[name="seconds"]').fill("6");
        await page.click("#start-job");
        await page.locator("#job-state").filter({ hasText: "active" }).waitFor({ timeout: 20_000 });
        while ((await progress()) < 10) await page.waitForTimeout(50);
        await page.selectOption("#filter-level", "error");
        await page.locator(".log .marker").filter({ hasText: 'filter: {"level":"error"}' }).waitFor();
        const hiddenFrom = await progress();
        await page.waitForTimeout(1500);
        await page.selectOption("#filter-level", "");
        await page.locator(".log .marker").filter({ hasText: "filter: {}" }).waitFor();
        const hiddenTo = await progress();
        await page.locator("#job-state").filter({ hasText: "completed" }).waitFor({ timeout: 30_000 });
        assert.ok(
          hiddenTo - hiddenFrom >= 10 && hiddenTo < 100,
          `the filter hid lines mid-job (${hiddenFrom}% to ${hiddenTo}%)`,
        );
        const shown = (
          await page.locator(".log .line").evaluateAll((lines) => lines.map((l) => l.getAttribute("data-n")))
        ).map(Number);
        assert.ok(
          shown.length < shown.at(-1)!,
          `lines were hidden (${shown.length} shown, the last is #${shown.at(-1)})`,
        );
        assert.match((await page.locator(".log .line .text").last().textContent()) ?? "", /^build ok: 300 lines/);
        assert.equal(
          await page.getAttribute("#log-count", "data-gaps"),
          "0",
          (await page.textContent("#log-count")) ?? "",
        );
        assert.match((await page.textContent("#log-count")) ?? "", /no gaps/);
        assert.deepEqual(foreign, [], "requests to other origins");
        assert.deepEqual(problems, []);
      } finally {
        alice?.close();
        await browser.close();
        local.child.kill("SIGTERM");
        const code = await waitForExit(local.child);
        assert.equal(code, 0, local.output().slice(-2000));
      }
    },
  );
  it(
    "asks for a new token when the page's token expires, and goes on following the job with the new one",
    { skip },
    async () => {
      const local = await startLocalCluster(redis, false, { HOST: "127.0.0.1", ROOMCAST_JWT_SECRET: TEST_SECRET });
      const browser = await launchChromium(["--disable-quic", "--disable-sync"]);
      try {
        const claims = { sub: "dev", envs: ["*"], scope: "publish env:read jobs:read jobs:write admin" };
        const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
        const problems: string[] = [];
        page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
        const url = new URL(local.consoleUrl);
        url.hash = `token=${await token({ ...claims, ttlS: 8 })}`;
        await page.goto(url.toString());
        await page.locator('input[name="lines"]').fill("300");
        await page.locator('input[name="seconds"]').fill("20");
        await page.click("#start-job");
        await page.locator("#job-state").filter({ hasText: "active" }).waitFor({ timeout: 20_000 });

        // The token expires: the page asks for another one, mid-job.
        await page.locator("#token-panel").waitFor({ state: "visible", timeout: 20_000 });
        const progress = async () => Number(await page.getAttribute("#progress", "aria-valuenow"));
        const atExpiry = await progress();
        assert.ok(atExpiry < 100, `the job still runs when the token expires (${atExpiry}%)`);
        await page.locator("#token").fill(await token({ ...claims, ttlS: 3600 }));
        await page.locator("#token-form button[type=submit]").click();

        await page.locator("#job-state").filter({ hasText: "completed" }).waitFor({ timeout: 40_000 });
        assert.equal(await progress(), 100);
        await assertWholeLog(page, 300, "across the token change");
        assert.deepEqual(problems, []);
      } finally {
        await browser.close();
        local.child.kill("SIGTERM");
        const code = await waitForExit(local.child);
        assert.equal(code, 0, local.output().slice(-2000));
      }
    },
  );
});

describe("roomcast start with its embedded Redis", () => {
  it("listens on 127.0.0.1 by default, and stops everything at a Ctrl-C (SIGINT to its whole process group) with clients connected: the demo job cancelled, no ROOMCAST_DRAIN_S wait, no warnings, exit 0, Redis gone", async () => {
    // No HOST: its own default.
    const local = await startLocalCluster(undefined, true, {});
    const sockets: TestSocket[] = [];
    try {
      const url = /roomcast is running at (\S+)/.exec(local.output())?.[1];
      assert.match(url ?? "", new RegExp(`^http://(localhost|127\\.0\\.0\\.1):${local.port}$`), local.output());
      assert.doesNotMatch(local.output(), /admin UI/, "the admin UI is off");
      // Bound to the loopback address only: every listening socket on its port is 127.0.0.1's.
      const ss = spawnSync("ss", ["-Hltn", `sport = :${local.port}`], { encoding: "utf8" });
      if (ss.status === 0) {
        const bound = ss.stdout
          .split("\n")
          .filter(Boolean)
          .map((line) => line.trim().split(/\s+/)[3]);
        assert.deepEqual(bound, [`127.0.0.1:${local.port}`], ss.stdout);
      }
      const elsewhere = Object.values(networkInterfaces())
        .flat()
        .find((a) => a && a.family === "IPv4" && !a.internal)?.address;
      if (elsewhere) assert.equal(await connects(local.port, elsewhere), false, `it answers on ${elsewhere}`);
      assert.equal(await connects(local.port, "127.0.0.1"), true);

      // Clients on both replicas: each would leave at a random moment within ROOMCAST_DRAIN_S (10 s by default).
      const token = /export TOKEN=(\S+)/.exec(local.output())![1]!;
      for (let i = 0; i < 20; i++) sockets.push(await connectRetrying(`http://127.0.0.1:${local.port}`, token));
      const redisPort = Number(/redis:\s+embedded, redis:\/\/127\.0\.0\.1:(\d+)/.exec(local.output())?.[1]);
      assert.ok(redisPort > 0, local.output());
      const startedAt = Date.now();
      // What a terminal does: every process of the foreground group gets the SIGINT at once.
      process.kill(-local.child.pid!, "SIGINT");
      const code = await waitForExit(local.child);
      const took = Date.now() - startedAt;
      console.log(`roomcast start stopped in ${took} ms at a Ctrl-C, with ${sockets.length} clients connected`);
      assert.equal(code, 0, local.output().slice(-2000));
      // Not ROOMCAST_DRAIN_S (10 s) for the clients or the never-ending demo job, nor Redis errors.
      assert.ok(took < 8000, `took ${took} ms`);
      assert.ok(
        sockets.every((s) => !s.connected),
        "every client was let go",
      );
      const complaints = local
        .output()
        .split("\n")
        .filter((line) => /"level":(40|50|60)/.test(line));
      assert.deepEqual(complaints, []);
      for (const pid of local.pids.values()) assert.throws(() => process.kill(pid, 0), `process ${pid} is still there`);
      assert.equal(
        await connects(redisPort, "127.0.0.1"),
        false,
        `the embedded Redis still answers on port ${redisPort}`,
      );
    } finally {
      for (const socket of sockets) socket.close();
      if (local.child.exitCode === null) {
        local.child.kill("SIGTERM");
        await waitForExit(local.child);
      }
    }
  });

  it("names the admin UI's page in its banner when the admin UI is on", async () => {
    const local = await startLocalCluster(undefined, false, {
      ROOMCAST_ADMIN_USER: "ops",
      ROOMCAST_ADMIN_PASSWORD_HASH: await bcrypt.hash("admin-password", 4),
    });
    try {
      assert.match(
        local.output(),
        new RegExp(`\\n  admin UI: http://localhost:${local.port}/admin/ \\(user ops, read-only\\)\\n`),
        local.output(),
      );
      assert.equal((await fetch(`http://127.0.0.1:${local.port}/admin/`)).status, 200);
    } finally {
      local.child.kill("SIGTERM");
      assert.equal(await waitForExit(local.child), 0, local.output().slice(-2000));
    }
  });
});

/**
 * connect(), tried again when there is no answer within 5 s: through roomcast start's balancer a
 * handshake is now and then lost (the primary can read the client's first frame while it hands
 * the connection to a gateway), and this test is about stopping, not about that.
 */
/** The console's log shows a build of `lines` lines whole: every line once, in order, up to its last one. */
async function assertWholeLog(page: Page, lines: number, across: string): Promise<void> {
  const numbers = (
    await page.locator(".log .line").evaluateAll((shown) => shown.map((l) => l.getAttribute("data-n")))
  ).map(Number);
  assert.deepEqual(
    numbers,
    Array.from({ length: numbers.length }, (_, i) => i + 1),
    `every line once, in order, ${across}`,
  );
  const last = (await page.locator(".log .line .text").last().textContent()) ?? "";
  assert.ok(last.startsWith(`build ok: ${lines} lines`), `the last line shown: ${last}`);
}

async function connectRetrying(url: string, token: string): Promise<TestSocket> {
  for (let attempt = 1; ; attempt++) {
    const pending = connect(url, { token });
    const timer = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 5000).unref());
    const socket = await Promise.race([pending, timer]);
    if (socket) return socket;
    void pending.then(
      (late) => late.close(),
      () => undefined,
    );
    if (attempt === 3) throw new Error(`no handshake through ${url} in 3 attempts`);
  }
}

/** Whether a TCP connection to host:port is accepted. */
function connects(port: number, host: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const probe = createConnection(port, host);
    probe.setTimeout(2000, () => (probe.destroy(), resolve(false)));
    probe.once("connect", () => (probe.destroy(), resolve(true)));
    probe.once("error", () => resolve(false));
  });
}

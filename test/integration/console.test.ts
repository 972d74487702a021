/**
 * The live console (ROOMCAST_CONSOLE): what the gateway serves, and the real thing in headless
 * Chromium (Debian's, driven by playwright-core) against `roomcast start` itself: environment
 * tiles from the demo status feed, a sample build started from the page, its replica
 * SIGKILLed mid-job (the reconnect banner shows, the log resumes without a gap), pause and
 * resume, the progress bar at 100% and the last line shown. Screenshot:
 * test-artifacts/console.png.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { createConnection } from "node:net";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { freePort } from "../../src/cluster/embedded-redis.js";
import { startCluster, startTestRedis, type TestCluster, type TestRedis } from "../support/cluster.js";
import { CLI, waitForExit, type GatewayProcess } from "../support/gateway-process.js";

const CHROMIUM = "/usr/bin/chromium";
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
    assert.match(page.headers.get("content-security-policy")!, /default-src 'self'.*script-src 'self'.*connect-src 'self'/);
    const html = await page.text();
    assert.ok(html.includes('src="/console/console.js"') && !/https?:\/\//.test(html.replace(/<p class="hint">[\s\S]*?<\/p>/, "")), "no third-party resources");
    for (const path of ["/console/console.js", "/console/console.css", "/console/vendor/socket.io.esm.min.js", "/console/sdk/roomcast-client.js", "/console/sdk/backoff.js"]) {
      const res = await fetch(`${on.url}${path}`);
      assert.equal(res.status, 200, path);
      assert.ok((await res.text()).length > 100, path);
    }
    const sdk = await (await fetch(`${on.url}/console/sdk/roomcast-client.js`)).text();
    assert.ok(sdk.includes('from "/console/vendor/socket.io.esm.min.js"') && !sdk.includes('from "socket.io-client"'), "the SDK imports the browser build");
    for (const path of ["/console/sdk/index.js", "/console/sdk/..%2F..%2Fpackage.json", "/console/sdk/%2e%2e%2fcli.js", "/console/nope.js"]) {
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
 */
async function startLocalCluster(redis: TestRedis | undefined, ownGroup = false): Promise<{ child: ChildProcess; consoleUrl: string; pids: Map<string, number>; output: () => string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, "start", "--port", String(port), "--replicas", "2"], {
    env: { PATH: process.env.PATH ?? "", ...(redis ? { REDIS_URL: redis.url } : {}), HOST: "127.0.0.1", ROOMCAST_LOG_PRETTY: "0", LOG_LEVEL: "warn", ROOMCAST_JOB_LOCK_S: "5" },
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
  return { child, consoleUrl, pids, output: () => output };
}

describe("the console in a browser, against roomcast start", () => {
  // In CI, .ci/run installs chromium: there a missing browser is a failure, not a skip.
  const skip = !existsSync(CHROMIUM) && !process.env.CI ? `no ${CHROMIUM} here (apt-get install chromium)` : false;
  let redis: TestRedis;
  before(async () => {
    redis = await startTestRedis();
  });
  after(() => redis?.stop());

  it("starts a build, survives the loss of its replica without a gap in the log, pauses and resumes, and ends at 100% with the last line shown", { skip }, async () => {
    const local = await startLocalCluster(redis);
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"],
    });
    try {
      const origin = new URL(local.consoleUrl).origin;
      const page = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
      const foreign: string[] = [];
      const problems: string[] = [];
      page.on("request", (r) => {
        if (!r.url().startsWith(`${origin}/`) && !r.url().startsWith("data:") && !r.url().startsWith(origin.replace("http", "ws"))) foreign.push(r.url());
      });
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      await page.goto(local.consoleUrl);
      assert.equal(new URL(page.url()).hash, "", "the token leaves the address bar");

      // The demo feed's environment tiles.
      for (const env of ["dev", "staging", "prod"]) {
        await page.locator(`.tile[data-env="${env}"] .pill`).filter({ hasText: /healthy|degraded/ }).waitFor({ timeout: 20_000 });
      }
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
      const numbers = (await page.locator(".log .line").evaluateAll((lines) => lines.map((l) => l.getAttribute("data-n")))).map(Number);
      assert.deepEqual(numbers, Array.from({ length: numbers.length }, (_, i) => i + 1), "every line once, in order, across the reconnect and the pause");
      assert.match((await page.locator(".log .line .text").last().textContent()) ?? "", /^build ok: 600 lines/);
      assert.equal(await page.getAttribute("#log-count", "data-gaps"), "0");
      await page.waitForTimeout(300);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}console.png`, fullPage: true });
      assert.deepEqual(foreign, [], "requests to other origins");
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      local.child.kill("SIGTERM");
      const code = await waitForExit(local.child);
      assert.equal(code, 0, local.output().slice(-2000));
    }
  });
});

describe("roomcast start with its embedded Redis", () => {
  it("stops everything at a Ctrl-C (SIGINT to its whole process group): the demo job cancelled, no warnings, exit 0, Redis gone", async () => {
    const local = await startLocalCluster(undefined, true);
    const redisPort = Number(/redis:\s+embedded, redis:\/\/127\.0\.0\.1:(\d+)/.exec(local.output())?.[1]);
    assert.ok(redisPort > 0, local.output());
    const startedAt = Date.now();
    // What a terminal does: every process of the foreground group gets the SIGINT at once.
    process.kill(-local.child.pid!, "SIGINT");
    const code = await waitForExit(local.child);
    assert.equal(code, 0, local.output().slice(-2000));
    // Not ROOMCAST_DRAIN_S (10 s) waiting for the never-ending demo job, nor Redis errors.
    assert.ok(Date.now() - startedAt < 8000, `took ${Date.now() - startedAt} ms`);
    const complaints = local.output().split("\n").filter((line) => /"level":(40|50|60)/.test(line));
    assert.deepEqual(complaints, []);
    for (const pid of local.pids.values()) assert.throws(() => process.kill(pid, 0), `process ${pid} is still there`);
    const refused = await new Promise<boolean>((resolve) => {
      const probe = createConnection(redisPort, "127.0.0.1");
      probe.once("connect", () => (probe.destroy(), resolve(false)));
      probe.once("error", () => resolve(true));
    });
    assert.ok(refused, `the embedded Redis still answers on port ${redisPort}`);
  });
});

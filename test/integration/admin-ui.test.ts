/**
 * The Socket.IO admin UI against real gateway processes: its page and assets served by the
 * gateway itself (no third-party URL), the "/admin" namespace behind basic auth (bcrypt hash
 * from the settings) and not behind the roomcast JWT, read-only by default, sessions shared
 * by the replicas, the login limit (every attempt but an existing session, cluster-wide),
 * type confusions refused without harm, the same answer time for a wrong user as for the
 * right one, bcrypt off the event loop, and nothing at all when the settings are unset. A
 * headless Chromium logs in and saves test-artifacts/admin-ui.png.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, beforeEach, describe, it } from "node:test";
import bcrypt from "bcryptjs";
import { io, type Socket } from "socket.io-client";
import { ADMIN_LOGIN_BUSY, INVALID_CREDENTIALS, TOO_MANY_LOGINS } from "../../src/gateway/admin-login.js";
import { adminLoginKey } from "../../src/gateway/admin-login-limit.js";
import { ADMIN_LOGINS_PER_MINUTE } from "../../src/gateway/admin-ui.js";
import { connect, connectError, nextEvent, token, waitUntil } from "../support/clients.js";
import { browserSkip, launchChromium } from "../support/browser.js";
import { redisCommand, startCluster, type TestCluster } from "../support/cluster.js";
import type { GatewayProcess } from "../support/gateway-process.js";

const USER = "ops";
const PASSWORD = "correct horse battery staple";
const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));

interface ServerStats {
  serverId: string;
  namespaces: { name: string; socketsCount: number }[];
}

/**
 * Connects to namespace /admin; resolves the socket and what it received, or rejects with the
 * connect_error. `from`: the client address a trusted proxy forwards (X-Forwarded-For).
 */
function adminConnect(
  url: string,
  auth: Record<string, unknown>,
  from?: string,
): Promise<{ socket: Socket; events: [string, unknown[]][] }> {
  const extraHeaders = from === undefined ? undefined : { "x-forwarded-for": from };
  const socket = io(`${url}/admin`, {
    auth,
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
    extraHeaders,
  });
  const events: [string, unknown[]][] = [];
  socket.onAny((event: string, ...args: unknown[]) => events.push([event, args]));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error("no answer to the /admin handshake in 5 s"));
    }, 5000);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve({ socket, events });
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    });
  });
}

async function refusal(url: string, auth: Record<string, unknown>, from?: string): Promise<string> {
  try {
    const { socket } = await adminConnect(url, auth, from);
    socket.close();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`the /admin handshake with ${JSON.stringify(Object.keys(auth))} was accepted`);
}

const first = <T>(events: [string, unknown[]][], name: string) =>
  events.find(([e]) => e === name)?.[1][0] as T | undefined;

/** A refused /admin handshake: its message and how long the answer took (ms). */
async function timedRefusal(
  url: string,
  auth: Record<string, unknown>,
  from?: string,
): Promise<{ message: string; ms: number }> {
  const start = performance.now();
  const message = await refusal(url, auth, from);
  return { message, ms: performance.now() - start };
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const round = (ms: number) => Math.round(ms * 10) / 10;

describe("admin UI", () => {
  let cluster: TestCluster;
  /** Admin UI on, read-only by default. */
  let a: GatewayProcess;
  let b: GatewayProcess;
  /** Admin UI on with ROOMCAST_ADMIN_READONLY=false. */
  let writable: GatewayProcess;
  let writableB: GatewayProcess;
  /** Admin UI settings unset. */
  let off: GatewayProcess;
  /** A production-like bcrypt cost (12), behind a trusted proxy: each attempt names its client in X-Forwarded-For. */
  let slow: GatewayProcess;
  const sockets: Socket[] = [];
  /** A fresh client address for each use (TEST-NET-3), so that the login limit stays out of the way. */
  let lastHost = 0;
  const freshAddress = () => `203.0.113.${++lastHost}`;

  before(async () => {
    const env = { ROOMCAST_ADMIN_USER: USER, ROOMCAST_ADMIN_PASSWORD_HASH: await bcrypt.hash(PASSWORD, 4) };
    cluster = await startCluster({ replicas: 0 });
    a = await cluster.addGateway(env);
    b = await cluster.addGateway(env);
    writable = await cluster.addGateway({ ...env, ROOMCAST_ADMIN_READONLY: "false" });
    writableB = await cluster.addGateway({ ...env, ROOMCAST_ADMIN_READONLY: "false" });
    off = await cluster.addGateway();
    slow = await cluster.addGateway({
      ...env,
      ROOMCAST_ADMIN_PASSWORD_HASH: await bcrypt.hash(PASSWORD, 12),
      ROOMCAST_TRUST_PROXY: "1",
    });
  });

  // The login counter is cluster-wide and these tests log in from 127.0.0.1 on several
  // replicas: each test starts a fresh window, as if a minute had passed.
  beforeEach(() => {
    if (cluster) redisCommand(cluster.redis, "DEL", adminLoginKey("rc", "127.0.0.1"));
  });

  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.close();
  });

  it("serves the UI's page and every asset it loads from the gateway itself, with no third-party URL", async () => {
    const redirect = await fetch(`${a.url}/admin`, { redirect: "manual" });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get("location"), "/admin/");

    const page = await fetch(`${a.url}/admin/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
    const html = await page.text();
    assert.match(html, /<title>Socket.IO Admin UI<\/title>/);
    assert.doesNotMatch(html, /https?:\/\//, "index.html still points at a third-party host");

    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(
      assets.some((p) => /^js\/app\.[0-9a-f]+\.js$/.test(p)),
      `no app bundle in ${assets.join(", ")}`,
    );
    assert.ok(assets.includes("vendor/mdi/css/materialdesignicons.min.css"));
    for (const asset of assets) {
      const res = await fetch(new URL(asset, `${a.url}/admin/`));
      assert.equal(res.status, 200, `${asset}: ${res.status}`);
      const type = res.headers.get("content-type") ?? "";
      const body = await res.text();
      if (asset.endsWith(".js")) {
        assert.match(type, /javascript/, asset);
        assert.ok(body.length > 1000, asset);
      }
      if (/^js\/app\./.test(asset))
        assert.ok(
          body.includes("serverUrl:this.initialServerUrl||window.location.origin,"),
          "the login form does not default to this origin",
        );
      if (asset.endsWith(".css")) {
        // The fonts the stylesheets load are served here too.
        for (const [, url] of body.matchAll(/url\(["']?([^"')?#]+)/g)) {
          if (url!.startsWith("data:") || url!.endsWith(".eot") || url!.endsWith(".ttf") || url!.endsWith(".woff"))
            continue;
          const font = await fetch(new URL(url!, new URL(asset, `${a.url}/admin/`)));
          assert.equal(font.status, 200, `${url} from ${asset}`);
          await font.arrayBuffer();
        }
      }
    }
    // Not the rest of the packages whose files it serves.
    for (const path of ["vendor/mdi/package.json", "vendor/roboto/package.json", "nothing-here.js"]) {
      const res = await fetch(`${a.url}/admin/${path}`);
      assert.equal(res.status, 404, path);
      assert.equal(((await res.json()) as { error: { reason: string } }).error.reason, "not_found");
    }
  });

  it("refuses wrong or malformed credentials on namespace /admin, and survives them", async () => {
    assert.equal(await refusal(a.url, { username: USER, password: "wrong" }), "invalid credentials");
    assert.equal(await refusal(a.url, { username: "root", password: PASSWORD }), "invalid credentials");
    assert.equal(await refusal(a.url, {}), "invalid credentials");
    // A roomcast token is no admin credential.
    assert.equal(await refusal(a.url, { token: "eyJhbGciOiJIUzI1NiJ9.e30.x" }), "invalid credentials");
    // bcryptjs rejects a non-string password: without the guard, an unhandled rejection.
    assert.equal(await refusal(a.url, { username: USER }), "invalid credentials");
    assert.equal(await refusal(a.url, { username: USER, password: 42 }), "invalid credentials");
    assert.equal(await refusal(a.url, { sessionId: "0123456789abcdef" }), "invalid credentials");
    assert.equal(a.process.exitCode, null, a.output());
    assert.equal((await fetch(`${a.url}/readyz`)).status, 200);
  });

  it("connects with the right credentials, without a roomcast JWT, read-only, and reports every admin replica by its node id", async () => {
    const { socket, events } = await adminConnect(a.url, { username: USER, password: PASSWORD });
    sockets.push(socket);
    await waitUntil(() => events.some(([e]) => e === "config"), 5000, "config");
    // Read-only: no emit, join, leave or disconnect.
    assert.deepEqual(first<{ supportedFeatures: string[] }>(events, "config")?.supportedFeatures, [
      "AGGREGATED_EVENTS",
    ]);
    assert.match(first<string>(events, "session") ?? "", /^[0-9a-f]{16}$/);
    // Stats of each replica with the admin UI reach any of them (the Redis adapter).
    const ids = () =>
      new Set(events.filter(([e]) => e === "server_stats").map(([, [s]]) => (s as ServerStats).serverId));
    await waitUntil(
      () => [a, b, writable].every((g) => ids().has(g.nodeId)),
      8000,
      "server_stats of a, b and the writable replica",
    );
    assert.ok(!ids().has(off.nodeId));
    const stats = events
      .filter(([e]) => e === "server_stats")
      .map(([, [s]]) => s as ServerStats)
      .find((s) => s.serverId === a.nodeId)!;
    assert.deepEqual(stats.namespaces.map((n) => n.name).sort(), ["/", "/admin"]);
    // Production mode: no socket list (it would carry every client's headers and token).
    assert.ok(!events.some(([e]) => e === "all_sockets"));

    // Read-only: the package's commands have no handler; a roomcast client is left alone.
    const client = await connect(a.url, { token: await token({ sub: "watched" }) });
    try {
      socket.emit("_disconnect", "/", true);
      socket.emit("join", "/", "user:watched");
      socket.emit("emit", "/", "", "event", { channel: "user:watched", offset: 999 });
      const got: string[] = [];
      (client as unknown as Socket).onAny((event: string) => event !== "welcome" && got.push(event));
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(client.connected, "read-only admin disconnected a client");
      assert.deepEqual(got, []);
    } finally {
      client.close();
    }
  });

  it("keeps the login in Redis: the session id from one replica connects to another", async () => {
    const { socket, events } = await adminConnect(a.url, { username: USER, password: PASSWORD });
    await waitUntil(() => first<string>(events, "session") !== undefined, 5000, "session");
    socket.close();
    const sessionId = first<string>(events, "session")!;
    const other = await adminConnect(b.url, { sessionId });
    sockets.push(other.socket);
    assert.ok(other.socket.connected);

    // A session is no login attempt: more reconnects than the limit, and the password still works.
    for (let i = 0; i < ADMIN_LOGINS_PER_MINUTE + 2; i++)
      (await adminConnect(i % 2 ? a.url : b.url, { sessionId })).socket.close();
    const again = await adminConnect(a.url, { username: USER, password: PASSWORD });
    again.socket.close();
  });

  it("refuses type confusions with `invalid credentials`, without bcrypt, and stays up", async () => {
    const confusions: Record<string, unknown>[] = [
      // An unknown session id with a number for a password: the package's middleware
      // handed it to bcryptjs, whose rejection went unhandled and ended the process.
      { sessionId: "x", username: USER, password: 1 },
      { sessionId: "x", username: USER, password: {} },
      { username: USER, password: {} },
      { username: [USER], password: PASSWORD },
      { sessionId: 42 },
      { sessionId: { length: 16 }, username: USER },
      { sessionId: "f".repeat(2000) },
      { username: USER, password: "x".repeat(1025) },
    ];
    for (const auth of confusions)
      assert.equal(await refusal(a.url, auth), INVALID_CREDENTIALS, JSON.stringify(auth).slice(0, 80));
    assert.equal(a.process.exitCode, null, a.output());
    assert.equal((await fetch(`${a.url}/readyz`)).status, 200);
    const client = await connect(a.url, { token: await token({ sub: "after-confusions" }) });
    assert.ok(client.connected);
    client.close();
    // And the right password still logs in (the ninth attempt of this window).
    (await adminConnect(a.url, { username: USER, password: PASSWORD })).socket.close();
    assert.doesNotMatch(a.output(), /unhandled|TypeError|Illegal arguments/i);
  });

  it("counts unknown session ids as login attempts, cluster-wide; an existing session still connects", async () => {
    const login = await adminConnect(a.url, { username: USER, password: PASSWORD });
    await waitUntil(() => first<string>(login.events, "session") !== undefined, 5000, "session");
    const sessionId = first<string>(login.events, "session")!;
    login.socket.close();
    // The login and 9 unknown session ids, spread over two replicas: the window's 10 attempts.
    for (let i = 1; i < ADMIN_LOGINS_PER_MINUTE; i++) {
      assert.equal(
        await refusal(i % 2 ? a.url : b.url, { sessionId: `bogus${i}`.padEnd(16, "0") }),
        INVALID_CREDENTIALS,
        `bogus session ${i}`,
      );
    }
    // Over the limit: the right password, more unknown session ids and malformed ones are refused on any replica.
    assert.equal(await refusal(a.url, { username: USER, password: PASSWORD }), TOO_MANY_LOGINS);
    assert.equal(await refusal(b.url, { username: USER, password: PASSWORD }), TOO_MANY_LOGINS);
    assert.equal(await refusal(b.url, { sessionId: "0123456789abcdef" }), TOO_MANY_LOGINS);
    assert.equal(await refusal(a.url, { sessionId: 42 }), TOO_MANY_LOGINS);
    // A session from before is no attempt: it connects.
    const resumed = await adminConnect(b.url, { sessionId });
    assert.ok(resumed.socket.connected);
    resumed.socket.close();
  });

  it("answers a wrong user after as long as the right user with a wrong password (no username oracle)", async () => {
    // The first check starts the bcrypt thread: not measured.
    await refusal(slow.url, { username: USER, password: "warm-up" }, freshAddress());
    const rightUser: number[] = [];
    const wrongUser: number[] = [];
    for (let i = 0; i < 5; i++) {
      const right = await timedRefusal(slow.url, { username: USER, password: `wrong-${i}` }, freshAddress());
      const wrong = await timedRefusal(
        slow.url,
        { username: `not-${USER}-${i}`, password: `wrong-${i}` },
        freshAddress(),
      );
      assert.equal(right.message, INVALID_CREDENTIALS);
      assert.equal(wrong.message, INVALID_CREDENTIALS);
      rightUser.push(right.ms);
      wrongUser.push(wrong.ms);
    }
    const [rightMedian, wrongMedian] = [quantile(rightUser, 0.5), quantile(wrongUser, 0.5)];
    console.log(
      `admin login refusal, bcrypt cost 12: right user median ${round(rightMedian)} ms (${rightUser.map(round).join(", ")}), wrong user median ${round(wrongMedian)} ms (${wrongUser.map(round).join(", ")})`,
    );
    // A behaviour check with a generous band, not a performance assertion.
    assert.ok(
      wrongMedian >= 0.5 * rightMedian,
      `a wrong user is refused in ${round(wrongMedian)} ms, the right one in ${round(rightMedian)} ms`,
    );
    assert.ok(
      wrongMedian <= 2 * rightMedian,
      `a wrong user is refused in ${round(wrongMedian)} ms, the right one in ${round(rightMedian)} ms`,
    );
  });

  it("keeps the event loop free while passwords are checked (bcrypt in a worker thread, a bounded queue)", async () => {
    const healthz = async () => {
      const start = performance.now();
      const res = await fetch(`${slow.url}/healthz`);
      await res.arrayBuffer();
      assert.equal(res.status, 200);
      return performance.now() - start;
    };
    const idle: number[] = [];
    for (let i = 0; i < 10; i++) idle.push(await healthz());
    const compare = await timedRefusal(slow.url, { username: USER, password: "one-alone" }, freshAddress());

    // 8 password checks in flight, each from its own address.
    let settled = false;
    const attempts = Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        refusal(slow.url, { username: USER, password: `burst-${i}` }, freshAddress()),
      ),
    );
    void attempts.finally(() => (settled = true)).catch(() => undefined);
    const busy: number[] = [];
    while (!settled || busy.length < 5) {
      busy.push(await healthz());
      await new Promise((r) => setTimeout(r, 10));
    }
    const answers = await attempts;
    const p50 = quantile(busy, 0.5);
    console.log(
      `GET /healthz idle p50 ${round(quantile(idle, 0.5))} ms; one cost-12 login refusal ${round(compare.ms)} ms; ` +
        `during 8 logins (${answers.filter((m) => m === ADMIN_LOGIN_BUSY).length} refused as busy): p50 ${round(p50)} ms, max ${round(Math.max(...busy))} ms over ${busy.length} requests`,
    );
    assert.ok(
      p50 < 100,
      `GET /healthz p50 ${round(p50)} ms while passwords are checked (one check: ${round(compare.ms)} ms)`,
    );
    for (const answer of answers) assert.ok([INVALID_CREDENTIALS, ADMIN_LOGIN_BUSY].includes(answer), answer);
    // Beyond the queue, refused at once rather than queued.
    assert.ok(answers.includes(ADMIN_LOGIN_BUSY), answers.join(", "));
  });

  it("still requires the roomcast JWT on namespace /", async () => {
    const err = await connectError(a.url);
    assert.equal(err.data.code, 4401);
  });

  it("offers emit, join, leave and disconnect with ROOMCAST_ADMIN_READONLY=false, and limits password checks per IP", async () => {
    const { socket, events } = await adminConnect(writable.url, { username: USER, password: PASSWORD });
    sockets.push(socket);
    await waitUntil(() => events.some(([e]) => e === "config"), 5000, "config");
    const features = first<{ supportedFeatures: string[] }>(events, "config")!.supportedFeatures;
    for (const feature of ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "AGGREGATED_EVENTS"])
      assert.ok(features.includes(feature), `${feature} in ${features.join(", ")}`);
    assert.ok(!features.includes("ALL_EVENTS"), "production mode");
    // The commands act (what read-only turns off): disconnect one client by its socket id.
    const client = await connect(writable.url, { token: await token({ sub: "kicked-by-ui" }) });
    const disconnected = nextEvent<string>(client, "disconnect");
    socket.emit("_disconnect", "/", true, client.id);
    assert.equal(await disconnected, "io server disconnect");
    // And one on another replica, through the adapter: sockets there keep their own-id room too.
    const remote = await connect(writableB.url, { token: await token({ sub: "kicked-on-b" }) });
    const remoteDisconnected = nextEvent<string>(remote, "disconnect");
    socket.emit("_disconnect", "/", true, remote.id);
    assert.equal(await remoteDisconnected, "io server disconnect");

    for (let i = 1; i < ADMIN_LOGINS_PER_MINUTE; i++)
      assert.equal(await refusal(writable.url, { username: USER, password: `guess-${i}` }), "invalid credentials");
    assert.match(await refusal(writable.url, { username: USER, password: PASSWORD }), /too many login attempts/);
  });

  it("is not there without its settings: /admin/ is a JSON 404 and namespace /admin is refused", async () => {
    for (const path of ["/admin/", "/admin", "/admin/index.html"]) {
      const res = await fetch(`${off.url}${path}`);
      assert.equal(res.status, 404, path);
      assert.match(res.headers.get("content-type") ?? "", /application\/json/);
      assert.deepEqual(await res.json(), {
        error: { code: 4404, reason: "not_found", message: `no route GET ${path}` },
      });
    }
    assert.equal(await refusal(off.url, { username: USER, password: PASSWORD }), "Invalid namespace");
  });

  const skip = browserSkip;
  it(
    "renders in a browser: log in from /admin/ and see this cluster's servers (test-artifacts/admin-ui.png)",
    { skip },
    async () => {
      const browser = await launchChromium();
      try {
        const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
        const foreign: string[] = [];
        const problems: string[] = [];
        page.on("request", (r) => {
          if (!r.url().startsWith(`${a.url}/`) && !r.url().startsWith("data:")) foreign.push(r.url());
        });
        page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
        page.on("console", (m) => {
          if (m.type() === "error") problems.push(`console: ${m.text()}`);
        });

        await page.goto(`${a.url}/admin/`);
        // The login form defaults to this gateway: only the user and password are typed.
        const serverUrl = page.getByLabel("Server URL");
        await serverUrl.waitFor({ timeout: 15_000 });
        assert.equal(await serverUrl.inputValue(), a.url);
        await page.getByLabel("Username").fill(USER);
        await page.getByLabel("Password").fill(PASSWORD);
        await page.getByRole("button", { name: "Connect" }).click();

        await page.getByText("connected", { exact: true }).first().waitFor({ timeout: 15_000 });
        await page.getByRole("cell", { name: "/admin" }).first().waitFor({ timeout: 15_000 });

        // Every replica with the admin UI, by its ROOMCAST_NODE_ID; not the one without.
        await page.getByRole("link", { name: "Servers" }).click();
        for (const g of [a, b, writable])
          await page.getByRole("cell", { name: g.nodeId, exact: true }).waitFor({ timeout: 15_000 });
        assert.equal(await page.getByRole("cell", { name: off.nodeId, exact: true }).count(), 0);
        mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: `${ARTIFACTS}admin-ui-servers.png` });

        await page.getByRole("link", { name: "Dashboard" }).click();
        await page.getByRole("cell", { name: "/admin" }).first().waitFor({ timeout: 15_000 });
        await page.waitForTimeout(1500); // the charts' animation
        await page.screenshot({ path: `${ARTIFACTS}admin-ui.png` });

        assert.deepEqual(foreign, [], "requests to other origins");
        assert.deepEqual(problems, []);
      } finally {
        await browser.close();
      }
    },
  );
});

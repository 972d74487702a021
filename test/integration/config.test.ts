/**
 * docs/protocol.md, "Running it": a gateway that cannot start exits non-zero with one clear line
 * naming the setting; `roomcast token` mints a token a gateway accepts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeJwt } from "jose";
import { freePort } from "../../src/cluster/embedded-redis.js";
import { connect, request } from "../support/clients.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { runCli, TEST_SECRET } from "../support/gateway-process.js";

/** A Redis URL nobody answers: startup must fail before it is ever used, or on it. */
const UNUSED_REDIS = "redis://127.0.0.1:1";

/** Runs the command and asserts: exit code 1, one stderr line that names the setting (and says `includes`). */
async function startupFails(
  args: string[],
  env: Record<string, string>,
  setting: string,
  includes?: string,
): Promise<string> {
  const result = await runCli(args, env, 20_000);
  assert.equal(result.code, 1, `exit code; stderr: ${result.stderr}`);
  const lines = result.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `exactly one stderr line, got: ${JSON.stringify(result.stderr)}`);
  assert.ok(result.stderr.endsWith("\n"));
  const line = lines[0]!;
  assert.ok(line.includes(setting), `${JSON.stringify(line)} should name ${setting}`);
  if (includes) assert.ok(line.includes(includes), `${JSON.stringify(line)} should say ${includes}`);
  assert.ok(!line.includes("    at "), "no stack trace");
  assert.ok(!line.includes(TEST_SECRET), "never prints the secret");
  return line;
}

describe("gateway start-up failures", { concurrency: 4 }, () => {
  let dir: string;
  const base = () => ({ REDIS_URL: UNUSED_REDIS, ROOMCAST_JWT_SECRET: TEST_SECRET, HOST: "127.0.0.1", PORT: "0" });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "roomcast-config-test-"));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `roomcast gateway`: exit code 1, one stderr line that names the setting. */
  const failsNaming = (env: Record<string, string>, setting: string, extraArgs: string[] = []) =>
    startupFails(["gateway", ...extraArgs], env, setting);

  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  // First, since it waits out the gateway's 5 s Redis timeout while the others run.
  it("Redis unreachable (a free port with nothing on it)", async () => {
    const port = await freePort();
    const line = await failsNaming({ ...base(), REDIS_URL: `redis://127.0.0.1:${port}` }, "REDIS_URL");
    assert.ok(line.includes(String(port)), line);
  });

  it("missing REDIS_URL", async () => {
    const { REDIS_URL: _unused, ...env } = base();
    await failsNaming(env, "REDIS_URL");
  });

  it("a REDIS_URL that is not a redis URL", async () => {
    await failsNaming({ ...base(), REDIS_URL: "http://127.0.0.1:6379" }, "REDIS_URL");
  });

  it("PORT=abc", async () => {
    await failsNaming({ ...base(), PORT: "abc" }, "PORT");
  });

  it("PORT out of range", async () => {
    await failsNaming({ ...base(), PORT: "70000" }, "PORT");
  });

  it("ROOMCAST_HISTORY_SIZE=-1", async () => {
    await failsNaming({ ...base(), ROOMCAST_HISTORY_SIZE: "-1" }, "ROOMCAST_HISTORY_SIZE");
  });

  it("LOG_LEVEL=loud", async () => {
    await failsNaming({ ...base(), LOG_LEVEL: "loud" }, "LOG_LEVEL");
  });

  it("ROOMCAST_TOKEN_QUERY=maybe", async () => {
    await failsNaming({ ...base(), ROOMCAST_TOKEN_QUERY: "maybe" }, "ROOMCAST_TOKEN_QUERY");
  });

  it("a bad value given as a flag names the setting too", async () => {
    await failsNaming(base(), "ROOMCAST_MAX_SUBSCRIPTIONS", ["--max-subscriptions", "lots"]);
  });

  it("an HS256 secret shorter than 32 bytes (a guessable key), never echoed", async () => {
    const line = await startupFails(
      ["gateway"],
      { ...base(), ROOMCAST_JWT_SECRET: "x" },
      "ROOMCAST_JWT_SECRET",
      "at least 32 bytes",
    );
    assert.ok(!line.includes('"x"'), line);
    await startupFails(
      ["gateway"],
      { ...base(), ROOMCAST_JWT_SECRET: "s".repeat(31) },
      "ROOMCAST_JWT_SECRET",
      "at least 32 bytes",
    );
    await startupFails(
      ["token", "--sub", "x"],
      { ROOMCAST_JWT_SECRET: "short" },
      "ROOMCAST_JWT_SECRET",
      "at least 32 bytes",
    );
  });

  it("roomcast token --ttl longer than ROOMCAST_MAX_TOKEN_LIFETIME_S", async () => {
    await startupFails(
      ["token", "--sub", "x", "--ttl", "90d"],
      { ROOMCAST_JWT_SECRET: TEST_SECRET },
      "--ttl",
      "ROOMCAST_MAX_TOKEN_LIFETIME_S",
    );
  });

  it("no key setting", async () => {
    const { ROOMCAST_JWT_SECRET: _unused, ...env } = base();
    await failsNaming(env, "ROOMCAST_JWT_SECRET");
  });

  it("two key settings", async () => {
    const jwks = file("two-keys.json", JSON.stringify({ keys: [] }));
    const line = await failsNaming({ ...base(), ROOMCAST_JWKS_FILE: jwks }, "ROOMCAST_JWT_SECRET");
    assert.ok(line.includes("ROOMCAST_JWKS_FILE"), line);
  });

  it("an unreadable public key file", async () => {
    const { ROOMCAST_JWT_SECRET: _unused, ...env } = base();
    await failsNaming(
      { ...env, ROOMCAST_JWT_PUBLIC_KEY_FILE: join(dir, "missing.pem") },
      "ROOMCAST_JWT_PUBLIC_KEY_FILE",
    );
  });

  it("a public key file without a PEM key", async () => {
    const { ROOMCAST_JWT_SECRET: _unused, ...env } = base();
    await failsNaming(
      { ...env, ROOMCAST_JWT_PUBLIC_KEY_FILE: file("garbage.pem", "not a key\n") },
      "ROOMCAST_JWT_PUBLIC_KEY_FILE",
    );
  });

  it("a JWKS file that is not a JWKS", async () => {
    const { ROOMCAST_JWT_SECRET: _unused, ...env } = base();
    await failsNaming({ ...env, ROOMCAST_JWKS_FILE: file("bad-jwks.json", '{"nokeys": true}') }, "ROOMCAST_JWKS_FILE");
  });

  it("an unreadable ROOMCAST_CONFIG", async () => {
    await failsNaming({ ...base(), ROOMCAST_CONFIG: join(dir, "does-not-exist.yaml") }, "ROOMCAST_CONFIG");
  });

  it("a ROOMCAST_CONFIG that does not parse", async () => {
    await failsNaming({ ...base(), ROOMCAST_CONFIG: file("broken.yaml", "port: [1, 2\n") }, "ROOMCAST_CONFIG");
    await failsNaming({ ...base(), ROOMCAST_CONFIG: file("broken.json", "{ port: ") }, "ROOMCAST_CONFIG");
  });

  it("a config file with an unknown key", async () => {
    const line = await failsNaming(
      { ...base(), ROOMCAST_CONFIG: file("unknown-key.yaml", "historySize: 10\nbogusSetting: 1\n") },
      "bogusSetting",
    );
    assert.ok(line.includes("ROOMCAST_CONFIG"), line);
  });

  it("a config file with a bad value", async () => {
    await failsNaming(
      { ...base(), ROOMCAST_CONFIG: file("bad-value.yaml", "historySize: lots\n") },
      "ROOMCAST_HISTORY_SIZE",
    );
  });

  it("a config file with a bad namespace", async () => {
    const badRule = file("bad-ns.yaml", "namespaces:\n  chat:\n    subscribe: { match: everyone }\n");
    const line = await failsNaming({ ...base(), ROOMCAST_CONFIG: badRule }, "namespaces.chat.subscribe.match");
    assert.ok(line.includes("ROOMCAST_CONFIG"), line);
    await failsNaming(
      { ...base(), ROOMCAST_CONFIG: file("bad-ns-name.yaml", "namespaces:\n  Chat:\n    subscribe: { match: any }\n") },
      "namespaces.Chat",
    );
    await failsNaming(
      {
        ...base(),
        ROOMCAST_CONFIG: file(
          "bad-ns-key.json",
          JSON.stringify({ namespaces: { chat: { subscribe: { match: "any" }, colour: "blue" } } }),
        ),
      },
      "namespaces.chat",
    );
  });
});

describe("worker start-up failures", { concurrency: 4 }, () => {
  const base = () => ({ REDIS_URL: UNUSED_REDIS, HOST: "127.0.0.1", PORT: "0" });
  const fixture = (name: string) => `./test/fixtures/${name}`;

  const workerFails = (env: Record<string, string>, setting: string, includes?: string) =>
    startupFails(["worker"], env, setting, includes);

  it("Redis unreachable", async () => {
    await workerFails({ ...base(), REDIS_URL: `redis://127.0.0.1:${await freePort()}` }, "REDIS_URL");
  });
  it("missing REDIS_URL", async () => {
    const { REDIS_URL: _unused, ...env } = base();
    await workerFails(env, "REDIS_URL", "worker");
  });
  it("a processor module that does not exist", async () => {
    await workerFails({ ...base(), ROOMCAST_PROCESSORS: fixture("missing.mjs") }, "ROOMCAST_PROCESSORS", "missing.mjs");
  });
  it("a processor module that exports no object of processors", async () => {
    await workerFails(
      { ...base(), ROOMCAST_PROCESSORS: fixture("not-processors.mjs") },
      "ROOMCAST_PROCESSORS",
      "must export",
    );
  });
  it("a processor with a name a channel cannot carry", async () => {
    await workerFails(
      { ...base(), ROOMCAST_PROCESSORS: fixture("bad-name-processors.mjs") },
      "ROOMCAST_PROCESSORS",
      "has space",
    );
  });
  it("a processor defined twice (a module and the samples)", async () => {
    await workerFails(
      { ...base(), ROOMCAST_SAMPLE_PROCESSORS: "1", ROOMCAST_PROCESSORS: fixture("clashing-processors.mjs") },
      "ROOMCAST_PROCESSORS",
      "sample.build",
    );
  });
  it("ROOMCAST_WORKER_CONCURRENCY=0", async () => {
    await workerFails({ ...base(), ROOMCAST_WORKER_CONCURRENCY: "0" }, "ROOMCAST_WORKER_CONCURRENCY");
  });
  it("ROOMCAST_JOB_LOCK_S=1", async () => {
    await workerFails({ ...base(), ROOMCAST_JOB_LOCK_S: "1" }, "ROOMCAST_JOB_LOCK_S");
  });
  it("ROOMCAST_QUEUE with a colon", async () => {
    await workerFails({ ...base(), ROOMCAST_QUEUE: "a:b" }, "ROOMCAST_QUEUE");
  });
});

describe("roomcast token", () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster({ replicas: 1 });
  });
  after(async () => {
    await cluster?.close();
  });

  it("prints a JWT that a gateway accepts", async () => {
    const result = await runCli(
      ["token", "--sub", "x", "--envs", "e1,e2", "--scope", "env:read jobs:read", "--ttl", "10m"],
      { ROOMCAST_JWT_SECRET: TEST_SECRET },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    const jwt = result.stdout.trim();
    assert.match(jwt, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assert.equal(result.stdout, `${jwt}\n`);
    const claims = decodeJwt(jwt);
    assert.equal(claims.sub, "x");
    assert.deepEqual(claims.envs, ["e1", "e2"]);
    assert.equal(claims.scope, "env:read jobs:read");
    const ttl = (claims.exp as number) - Math.floor(Date.now() / 1000);
    assert.ok(ttl > 590 && ttl <= 600, `ttl ${ttl}`);

    const socket = await connect(cluster.gateways[0]!.url, { token: jwt });
    try {
      assert.equal((await request(socket, "subscribe", { channel: "user:x" })).ok, true);
      assert.equal((await request(socket, "subscribe", { channel: "env:e2:logs" })).ok, true);
    } finally {
      socket.close();
    }
  });

  it("without --sub, or without the secret, exits 1 with one line", async () => {
    const noSub = await runCli(["token"], { ROOMCAST_JWT_SECRET: TEST_SECRET });
    assert.equal(noSub.code, 1);
    assert.equal(noSub.stdout, "");
    assert.equal(noSub.stderr.trim().split("\n").length, 1);
    assert.match(noSub.stderr, /--sub/);
    const noSecret = await runCli(["token", "--sub", "x"], {});
    assert.equal(noSecret.code, 1);
    assert.equal(noSecret.stdout, "");
    assert.equal(noSecret.stderr.trim().split("\n").length, 1);
    assert.match(noSecret.stderr, /ROOMCAST_JWT_SECRET/);
  });
});

describe("the command line: --help, --version, unknown flags", { concurrency: 4 }, () => {
  const VERSION = (
    JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
  ).version;
  /** Enough to get past the settings checks, with a Redis nobody answers: nothing may start. */
  const ENV = { REDIS_URL: UNUSED_REDIS, ROOMCAST_JWT_SECRET: TEST_SECRET };

  for (const [command, helpFlag, mentions] of [
    ["start", "--help", "--replicas"],
    ["start", "-h", "--replicas"],
    ["token", "--help", "--sub"],
    ["token", "-h", "--ttl"],
    ["gateway", "--help", "ROOMCAST_HISTORY_SIZE"],
    ["worker", "-h", "ROOMCAST_PROCESSORS"],
  ] as const) {
    it(`roomcast ${command} ${helpFlag} prints that command's usage and exits 0, starting nothing`, async () => {
      // Also after other flags: roomcast start --port 4000 --help.
      const result = await runCli([command, "--port", "4000", helpFlag], ENV, 10_000);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      assert.equal(result.stderr, "");
      assert.ok(result.stdout.startsWith(`usage: roomcast ${command} `), result.stdout);
      assert.ok(result.stdout.includes(mentions), `mentions ${mentions}: ${result.stdout}`);
      assert.doesNotMatch(result.stdout, /roomcast is running/);
    });
  }

  it("roomcast --version, -v and version print the package's version and exit 0", async () => {
    for (const args of [["--version"], ["-v"], ["version"]]) {
      const result = await runCli(args, {});
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `${VERSION}\n`, args.join(" "));
      assert.equal(result.stderr, "");
    }
  });

  for (const [args, unknown] of [
    [["gateway", "--histroy-size", "5"], "--histroy-size"],
    [["worker", "--concurrency=2"], "--concurrency"],
    [["start", "--replica", "3"], "--replica"],
    [["token", "--sub", "x", "--scopes", "admin"], "--scopes"],
    [["gateway", "--history-size", "5", "-x"], "-x"],
  ] as const) {
    it(`roomcast ${args.join(" ")} exits 1 with one line naming ${unknown}`, async () => {
      const line = await startupFails([...args], ENV, unknown, "unknown flag");
      assert.ok(line.includes(`roomcast ${args[0]} --help`), line);
    });
  }

  it("a flag without its value exits 1 with one line naming it", async () => {
    await startupFails(["token", "--sub"], ENV, "--sub", "needs a value");
  });

  it("every setting's flag is known, long (--roomcast-history-size) and short (--history-size), and --config", async () => {
    const dir = mkdtempSync(join(tmpdir(), "roomcast-flags-"));
    try {
      const file = join(dir, "settings.yaml");
      writeFileSync(file, "historySize: 7\n");
      const result = await runCli(
        [
          "token",
          "--sub",
          "x",
          "--ttl=10m",
          "--jwt-secret",
          TEST_SECRET,
          "--roomcast-history-size",
          "5",
          "--history-size=6",
          "--config",
          file,
          "--log-level",
          "warn",
          "--tenant",
          "t1",
        ],
        {},
      );
      assert.equal(result.code, 0, result.stderr);
      assert.equal(decodeJwt(result.stdout.trim()).tenant, "t1");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

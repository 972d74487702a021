/** loadConfig: defaults, file < env < flags, validation, frozen result, namespaces. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseRedisUrl, redactUrl } from "../../src/config/redis-url.js";
import { ConfigError, loadConfig, requireServerSettings } from "../../src/config/load-config.js";
import { BUILT_IN_NAMESPACES } from "../../src/config/namespaces.js";

/** A bcrypt hash (of "pw", cost 4). */
const BCRYPT = "$2a$04$OBCLNttAtWFyRrq3SasuuuFjLClqXzXEYJpHcuDGYeFLaR/Lb3eu6";

describe("loadConfig", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "roomcast-unit-config-"));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it("has the defaults of docs/protocol.md (Limits, Running it)", () => {
    const config = loadConfig({ env: {}, argv: [] });
    assert.equal(config.port, 3000);
    assert.equal(config.host, "0.0.0.0");
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.jwtSecret, undefined);
    assert.equal(config.jwtPublicKeyFile, undefined);
    assert.equal(config.jwksFile, undefined);
    assert.equal(config.tokenQuery, false);
    assert.deepEqual(config.allowedTenants, []);
    assert.equal(config.maxConnectionsPerUser, 50);
    assert.equal(config.maxConnectionsPerEnv, 1000);
    assert.equal(config.maxConnectionsPerUserPerEnv, 20);
    assert.equal(config.maxUnauthenticatedPerIp, 100);
    assert.equal(config.maxUnauthenticatedPerNode, 5000);
    assert.equal(config.authTimeoutS, 5);
    assert.equal(config.maxTokenLifetimeS, 30 * 24 * 3600);
    assert.equal(config.redisSilentS, 5);
    assert.equal(config.maxConnectionsPerIp, 100);
    assert.equal(config.maxConnectionsPerNode, 20000);
    assert.equal(config.maxSubscriptions, 50);
    assert.equal(config.rateLimit, 10);
    assert.equal(config.rateBurst, 50);
    assert.equal(config.maxMessageBytes, 65536);
    assert.equal(config.historySize, 1000);
    assert.equal(config.historyTtlS, 3600);
    assert.equal(config.drainS, 10);
    assert.equal(config.adminUser, undefined);
    assert.equal(config.adminPasswordHash, undefined);
    assert.equal(config.adminReadonly, true);
    assert.equal(config.logLevel, "info");
    assert.match(config.nodeId, new RegExp(`-${process.pid}$`));
    assert.deepEqual(Object.keys(config.namespaces).sort(), ["env", "job", "user"]);
  });

  it("reads environment variables, converting each kind", () => {
    const config = loadConfig({
      env: {
        PORT: "8080",
        HOST: "127.0.0.1",
        REDIS_URL: "redis://10.0.0.1:6380/2",
        ROOMCAST_JWT_SECRET: "s3cret",
        ROOMCAST_ALLOWED_TENANTS: " acme, globex ,,",
        ROOMCAST_TOKEN_QUERY: "yes",
        ROOMCAST_NODE_ID: "gw-1",
        ROOMCAST_RATE_LIMIT: "2.5",
        ROOMCAST_MAX_SUBSCRIPTIONS: "0",
        LOG_LEVEL: "debug",
      },
    });
    assert.equal(config.port, 8080);
    assert.equal(config.host, "127.0.0.1");
    assert.equal(config.redisUrl, "redis://10.0.0.1:6380/2");
    assert.equal(config.jwtSecret, "s3cret");
    assert.deepEqual(config.allowedTenants, ["acme", "globex"]);
    assert.equal(config.tokenQuery, true);
    assert.equal(config.nodeId, "gw-1");
    assert.equal(config.rateLimit, 2.5);
    assert.equal(config.maxSubscriptions, 0);
    assert.equal(config.logLevel, "debug");
  });

  it("lets environment variables override the file, and flags override both", () => {
    const path = file(
      "layers.yaml",
      [
        "port: 4000",
        "historySize: 10",
        "historyTtlS: 60",
        "logLevel: warn",
        "tokenQuery: true",
        "allowedTenants: [a, b]",
        "",
      ].join("\n"),
    );
    const fileOnly = loadConfig({ env: { ROOMCAST_CONFIG: path } });
    assert.equal(fileOnly.port, 4000);
    assert.equal(fileOnly.historySize, 10);
    assert.equal(fileOnly.historyTtlS, 60);
    assert.equal(fileOnly.logLevel, "warn");
    assert.equal(fileOnly.tokenQuery, true);
    assert.deepEqual(fileOnly.allowedTenants, ["a", "b"]);

    const env = { ROOMCAST_CONFIG: path, PORT: "5000", ROOMCAST_HISTORY_SIZE: "20", LOG_LEVEL: "error" };
    const withEnv = loadConfig({ env });
    assert.equal(withEnv.port, 5000);
    assert.equal(withEnv.historySize, 20);
    assert.equal(withEnv.historyTtlS, 60, "the file still applies where no variable is set");
    assert.equal(withEnv.logLevel, "error");

    const withFlags = loadConfig({
      env,
      argv: ["--port", "6000", "--history-size=30", "--roomcast-history-ttl-s", "90"],
    });
    assert.equal(withFlags.port, 6000);
    assert.equal(withFlags.historySize, 30);
    assert.equal(withFlags.historyTtlS, 90);
    assert.equal(withFlags.logLevel, "error");
  });

  it("takes the config file from a --roomcast-config flag over ROOMCAST_CONFIG", () => {
    const fromEnv = file("from-env.json", JSON.stringify({ port: 1111 }));
    const fromFlag = file("from-flag.json", JSON.stringify({ port: 2222 }));
    assert.equal(loadConfig({ env: { ROOMCAST_CONFIG: fromEnv } }).port, 1111);
    assert.equal(loadConfig({ env: { ROOMCAST_CONFIG: fromEnv }, argv: ["--config", fromFlag] }).port, 2222);
    assert.equal(loadConfig({ env: { ROOMCAST_CONFIG: fromEnv }, argv: ["--roomcast-config", fromFlag] }).port, 2222);
  });

  it("reads the admin UI settings: both or neither, a bcrypt hash ($2a$, $2b$, $2y$), read-only unless false", () => {
    const config = loadConfig({ env: { ROOMCAST_ADMIN_USER: "ops", ROOMCAST_ADMIN_PASSWORD_HASH: BCRYPT } });
    assert.equal(config.adminUser, "ops");
    assert.equal(config.adminPasswordHash, BCRYPT);
    assert.equal(config.adminReadonly, true);
    for (const version of ["2b", "2y"]) {
      const hash = BCRYPT.replace("$2a$", `$${version}$`);
      assert.equal(
        loadConfig({ env: { ROOMCAST_ADMIN_USER: "ops", ROOMCAST_ADMIN_PASSWORD_HASH: hash } }).adminPasswordHash,
        hash,
      );
    }
    assert.equal(loadConfig({ env: { ROOMCAST_ADMIN_READONLY: "false" } }).adminReadonly, false);
  });

  it("returns a deeply frozen config", () => {
    const path = file("frozen.yaml", "namespaces:\n  chat:\n    subscribe: { match: any }\n");
    const config = loadConfig({ env: { ROOMCAST_CONFIG: path, ROOMCAST_ALLOWED_TENANTS: "a" } });
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.namespaces));
    assert.ok(Object.isFrozen(config.namespaces.chat));
    assert.ok(Object.isFrozen(config.namespaces.chat!.subscribe));
    assert.ok(Object.isFrozen(config.allowedTenants));
    assert.throws(() => {
      (config as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => {
      (config.allowedTenants as string[]).push("b");
    }, TypeError);
    assert.throws(() => {
      (config.namespaces as Record<string, unknown>).other = {};
    }, TypeError);
    // Loading does not freeze the shared built-in definitions in a way that leaks between loads.
    assert.equal(loadConfig({ env: {} }).namespaces.chat, undefined);
  });

  it("merges namespaces from the file with the built-in ones", () => {
    const path = file(
      "namespaces.yaml",
      [
        "namespaces:",
        "  chat:",
        "    subscribe: { match: any }",
        "    publish: { match: any, scope: chat:write }",
        "    historySize: 50",
        "    policy: conflate",
        "  user:",
        "    subscribe: { match: user }",
        "    historySize: 5",
        "",
      ].join("\n"),
    );
    const { namespaces } = loadConfig({ env: { ROOMCAST_CONFIG: path } });
    assert.deepEqual(Object.keys(namespaces).sort(), ["chat", "env", "job", "user"]);
    assert.deepEqual(namespaces.chat, {
      subscribe: { match: "any" },
      publish: { match: "any", scope: "chat:write" },
      historySize: 50,
      policy: "conflate",
      snapshot: "none",
      presence: false,
      joinLeave: false,
    });
    // A file entry for a built-in namespace replaces it; schema defaults fill the rest.
    assert.deepEqual(namespaces.user, {
      subscribe: { match: "user" },
      publish: false,
      historySize: 5,
      policy: "reliable",
      snapshot: "none",
      presence: false,
      joinLeave: false,
    });
    assert.deepEqual(namespaces.env, BUILT_IN_NAMESPACES.env);
    assert.deepEqual(namespaces.job, BUILT_IN_NAMESPACES.job);
  });

  describe("refuses bad values with one line naming the setting", () => {
    const cases: [string, () => unknown, RegExp][] = [
      ["PORT=abc", () => loadConfig({ env: { PORT: "abc" } }), /^invalid setting PORT: /],
      ["PORT=70000", () => loadConfig({ env: { PORT: "70000" } }), /^invalid setting PORT: /],
      [
        "negative history size",
        () => loadConfig({ env: { ROOMCAST_HISTORY_SIZE: "-1" } }),
        /^invalid setting ROOMCAST_HISTORY_SIZE: /,
      ],
      [
        "fractional int",
        () => loadConfig({ env: { ROOMCAST_MAX_SUBSCRIPTIONS: "1.5" } }),
        /^invalid setting ROOMCAST_MAX_SUBSCRIPTIONS: /,
      ],
      ["LOG_LEVEL=loud", () => loadConfig({ env: { LOG_LEVEL: "loud" } }), /^invalid setting LOG_LEVEL: /],
      [
        "bad bool",
        () => loadConfig({ env: { ROOMCAST_TOKEN_QUERY: "maybe" } }),
        /^invalid setting ROOMCAST_TOKEN_QUERY: /,
      ],
      ["bad flag", () => loadConfig({ env: {}, argv: ["--port=x"] }), /^invalid setting PORT: /],
      [
        "history ttl 0",
        () => loadConfig({ env: { ROOMCAST_HISTORY_TTL_S: "0" } }),
        /^invalid setting ROOMCAST_HISTORY_TTL_S: /,
      ],
      [
        "rate burst 0",
        () => loadConfig({ env: { ROOMCAST_RATE_BURST: "0" } }),
        /^invalid setting ROOMCAST_RATE_BURST: /,
      ],
      ["REDIS_URL scheme", () => loadConfig({ env: { REDIS_URL: "http://x" } }), /^invalid setting REDIS_URL: /],
      [
        "webhook URLs without a secret",
        () => loadConfig({ env: { ROOMCAST_WEBHOOK_URLS: "https://example.com/hooks" } }),
        /^missing setting ROOMCAST_WEBHOOK_SECRET: /,
      ],
      [
        "short webhook secret",
        () => loadConfig({ env: { ROOMCAST_WEBHOOK_URLS: "https://example.com/h", ROOMCAST_WEBHOOK_SECRET: "short" } }),
        /^invalid setting ROOMCAST_WEBHOOK_SECRET: must be at least 32 bytes/,
      ],
      [
        "webhook URL scheme",
        () => loadConfig({ env: { ROOMCAST_WEBHOOK_URLS: "ftp://x", ROOMCAST_WEBHOOK_SECRET: "x".repeat(32) } }),
        /^invalid setting ROOMCAST_WEBHOOK_URLS: expected http/,
      ],
      [
        "unknown webhook event",
        () => loadConfig({ env: { ROOMCAST_WEBHOOK_EVENTS: "member_added,member_left" } }),
        /^invalid setting ROOMCAST_WEBHOOK_EVENTS: "member_left" is none of/,
      ],
      [
        "presence lease under 3 s",
        () => loadConfig({ env: { ROOMCAST_PRESENCE_LEASE_S: "2" } }),
        /^invalid setting ROOMCAST_PRESENCE_LEASE_S: /,
      ],
      [
        "redis prefix",
        () => loadConfig({ env: { ROOMCAST_REDIS_PREFIX: "a b" } }),
        /^invalid setting ROOMCAST_REDIS_PREFIX: /,
      ],
      [
        "unreadable file",
        () => loadConfig({ env: { ROOMCAST_CONFIG: "/nonexistent/roomcast.yaml" } }),
        /^invalid setting ROOMCAST_CONFIG: .*ENOENT/,
      ],
      [
        "admin user without hash",
        () => loadConfig({ env: { ROOMCAST_ADMIN_USER: "ops" } }),
        /^missing setting ROOMCAST_ADMIN_PASSWORD_HASH: /,
      ],
      [
        "admin hash without user",
        () => loadConfig({ env: { ROOMCAST_ADMIN_PASSWORD_HASH: BCRYPT } }),
        /^missing setting ROOMCAST_ADMIN_USER: /,
      ],
      [
        "admin password in clear",
        () => loadConfig({ env: { ROOMCAST_ADMIN_USER: "ops", ROOMCAST_ADMIN_PASSWORD_HASH: "hunter2" } }),
        /^invalid setting ROOMCAST_ADMIN_PASSWORD_HASH: (?!.*hunter2)/,
      ],
      [
        "admin read-only not a bool",
        () => loadConfig({ env: { ROOMCAST_ADMIN_READONLY: "sometimes" } }),
        /^invalid setting ROOMCAST_ADMIN_READONLY: /,
      ],
    ];
    for (const [name, load, message] of cases) {
      it(name, () => {
        assert.throws(load, (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.match(err.message, message);
          assert.ok(!err.message.includes("\n"), "one line");
          return true;
        });
      });
    }

    it("file problems: unknown key, bad value, bad namespace, not an object", () => {
      const fileCases: [string, string, RegExp][] = [
        ["unknown.yaml", "bogus: 1\n", /^invalid setting bogus \(ROOMCAST_CONFIG\)/],
        ["env-name.yaml", "PORT: 1\n", /^invalid setting PORT \(ROOMCAST_CONFIG\): unknown setting/],
        ["bad-value.yaml", "historySize: lots\n", /^invalid setting ROOMCAST_HISTORY_SIZE: /],
        [
          "bad-ns.yaml",
          "namespaces:\n  chat:\n    subscribe: { match: everyone }\n",
          /^invalid setting namespaces\.chat\.subscribe\.match \(ROOMCAST_CONFIG\)/,
        ],
        [
          "ns-name.yaml",
          "namespaces:\n  Chat:\n    subscribe: { match: any }\n",
          /^invalid setting namespaces\.Chat \(ROOMCAST_CONFIG\)/,
        ],
        [
          "ns-extra.yaml",
          "namespaces:\n  chat:\n    subscribe: { match: any }\n    colour: blue\n",
          /^invalid setting namespaces\.chat\b.*\(ROOMCAST_CONFIG\).*colour/,
        ],
        [
          "ns-join-leave.yaml",
          "namespaces:\n  chat:\n    subscribe: { match: any }\n    joinLeave: true\n",
          /^invalid setting namespaces\.chat\.joinLeave \(ROOMCAST_CONFIG\).*needs presence/,
        ],
        ["ns-list.yaml", "namespaces: [a]\n", /^invalid setting namespaces \(ROOMCAST_CONFIG\)/],
        ["list.yaml", "- 1\n", /^invalid setting ROOMCAST_CONFIG: .* must hold an object/],
        ["broken.json", "{", /^invalid setting ROOMCAST_CONFIG: .* not valid JSON/],
      ];
      for (const [name, text, message] of fileCases) {
        const path = file(name, text);
        assert.throws(
          () => loadConfig({ env: { ROOMCAST_CONFIG: path } }),
          (err: unknown) => {
            assert.ok(err instanceof ConfigError, `${name}: ${String(err)}`);
            assert.match(err.message, message, name);
            assert.ok(!err.message.includes("\n"), `${name}: one line`);
            return true;
          },
        );
      }
      // An empty file is no settings.
      assert.equal(loadConfig({ env: { ROOMCAST_CONFIG: file("empty.yaml", "") } }).port, 3000);
    });
  });

  describe("requireServerSettings", () => {
    it("needs REDIS_URL and exactly one key setting", () => {
      const check = (env: Record<string, string>) => () => requireServerSettings(loadConfig({ env }));
      const SECRET = "s".repeat(32);
      // A short HS256 secret is a guessable key: refused at start, without echoing it.
      assert.throws(
        check({ REDIS_URL: "redis://x", ROOMCAST_JWT_SECRET: "x" }),
        /^ConfigError: invalid setting ROOMCAST_JWT_SECRET: must be at least 32 bytes \(it is 1\)/,
      );
      assert.throws(
        check({ REDIS_URL: "redis://x", ROOMCAST_JWT_SECRET: "s".repeat(31) }),
        (err: Error) => !err.message.includes("s".repeat(31)),
      );
      assert.throws(check({ ROOMCAST_JWT_SECRET: SECRET }), /^ConfigError: missing setting REDIS_URL/);
      assert.throws(check({ REDIS_URL: "redis://x" }), /^ConfigError: missing setting ROOMCAST_JWT_SECRET/);
      assert.throws(
        check({ REDIS_URL: "redis://x", ROOMCAST_JWT_SECRET: SECRET, ROOMCAST_JWKS_FILE: "/k" }),
        /set only one of/,
      );
      assert.doesNotThrow(check({ REDIS_URL: "redis+cluster://a:1,b:2", ROOMCAST_JWT_SECRET: SECRET }));
      assert.throws(
        check({ REDIS_URL: "http://x", ROOMCAST_JWT_SECRET: SECRET }),
        /^ConfigError: invalid setting REDIS_URL/,
      );
      assert.throws(
        check({ REDIS_URL: "redis://x", ROOMCAST_JWT_SECRET: SECRET, ROOMCAST_ADAPTER: "fast" }),
        /^ConfigError: invalid setting ROOMCAST_ADAPTER: expected one of auto, classic, sharded/,
      );
      assert.doesNotThrow(check({ REDIS_URL: "redis://x", ROOMCAST_JWT_SECRET: SECRET }));
      assert.doesNotThrow(check({ REDIS_URL: "rediss://x", ROOMCAST_JWT_PUBLIC_KEY_FILE: "/k.pem" }));
    });
  });
});

describe("parseRedisUrl", () => {
  it("reads Redis Cluster seeds and credentials, and leaves single URLs to ioredis", () => {
    assert.deepEqual(parseRedisUrl("redis://h:1/0"), { cluster: false, url: "redis://h:1/0" });
    assert.deepEqual(parseRedisUrl("redis+cluster://10.0.0.1:7000,10.0.0.2:7001"), {
      cluster: true,
      seeds: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 7001 },
      ],
      username: undefined,
      password: undefined,
      tls: false,
    });
    assert.deepEqual(parseRedisUrl("rediss+cluster://user:p%40ss@h"), {
      cluster: true,
      seeds: [{ host: "h", port: 6379 }],
      username: "user",
      password: "p@ss",
      tls: true,
    });
    assert.equal(redactUrl("redis+cluster://user:secret@h:1"), "redis+cluster://[redacted]@h:1");
  });
});

#!/usr/bin/env node
/**
 * roomcast gateway | worker | start | token, each with --help; roomcast --version.
 */
import { readFileSync } from "node:fs";
import { parseDuration, mintToken } from "./auth/mint-token.js";
import { allSettingFlags, checkFlags, flagValue } from "./config/cli-flags.js";
import { ConfigError, loadConfig, requireKeySetting } from "./config/load-config.js";
import { SETTINGS } from "./config/settings.js";
import { RedisUnavailableError } from "./cluster/redis-clients.js";
import { runGateway } from "./app/run-gateway.js";
import { runWorker } from "./app/run-worker.js";
import { LOCAL_DEFAULTS, runLocalCluster } from "./app/local-cluster.js";

const SETTINGS_HELP = `settings (environment variables, or the same name as a --kebab-case flag; ROOMCAST_ ones also without the prefix):
${Object.values(SETTINGS)
  .filter((s) => !("internal" in s))
  .map((s) => `  ${s.env.padEnd(36)} ${s.doc}${"default" in s ? ` (default ${JSON.stringify(s.default)})` : ""}`)
  .join("\n")}
  ROOMCAST_CONFIG                      a YAML or JSON file with the settings above and namespaces (--config)
`;

interface CommandSpec {
  /** What follows `roomcast <command>` in its usage line. */
  synopsis: string;
  summary: string;
  /** Its own flags (besides the settings), with what they mean. */
  flags: Record<string, string>;
  /** Whether its usage lists every setting (token needs only its secret). */
  settings: boolean;
  /** Said after the summary. */
  notes?: string;
}

const COMMANDS: Record<string, CommandSpec> = {
  gateway: {
    synopsis: "[--setting value ...]",
    summary: "start one gateway replica (needs REDIS_URL and a JWT key setting)",
    flags: {},
    settings: true,
  },
  worker: {
    synopsis: "[--setting value ...]",
    summary: "start one BullMQ worker running the processors (needs REDIS_URL; /healthz, /readyz, /metrics on PORT)",
    flags: {},
    settings: true,
  },
  start: {
    synopsis: "[--replicas N] [--setting value ...]",
    summary:
      "a whole local cluster: Redis (embedded unless REDIS_URL is set), --replicas N gateways on one port, one worker",
    flags: { "--replicas": "gateway replicas behind the one port, 1 to 64 (default 2)" },
    settings: true,
    notes: `Its own defaults: HOST ${LOCAL_DEFAULTS.host} (it prints an admin token: set HOST=0.0.0.0 or --host to be reachable from elsewhere), ROOMCAST_DRAIN_S ${LOCAL_DEFAULTS.drainS}.`,
  },
  token: {
    synopsis: `--sub <id> [--envs a,b] [--scope "a b"] [--ttl 1h] [--tenant t]`,
    summary:
      "mint an HS256 token, signed with ROOMCAST_JWT_SECRET (the variable, --jwt-secret, or a ROOMCAST_CONFIG file)",
    flags: {
      "--sub": "the token's user id (required)",
      "--envs": "environments it grants, comma-separated (* for all)",
      "--scope": `its scopes, space-separated ("publish env:read jobs:read jobs:write admin")`,
      "--ttl": "how long it is valid: 90s, 10m, 1h, 7d (default 1h)",
      "--tenant": "its tenant",
    },
    settings: false,
  },
};

const USAGE = `usage: roomcast <command> [--flags]
       roomcast <command> --help     that command's flags
       roomcast --version            the version

commands:
${Object.entries(COMMANDS)
  .map(([name, spec]) => `  ${name.padEnd(9)} ${spec.summary}`)
  .join("\n")}

${SETTINGS_HELP}`;

function commandUsage(name: string, spec: CommandSpec): string {
  const flags = Object.entries(spec.flags).map(([flag, doc]) => `  ${flag.padEnd(12)} ${doc}`);
  return `usage: roomcast ${name} ${spec.synopsis}

${spec.summary}
${spec.notes ? `${spec.notes}\n` : ""}${flags.length > 0 ? `\nflags:\n${flags.join("\n")}\n` : ""}${spec.settings ? `\n${SETTINGS_HELP}` : ""}`;
}

function version(): string {
  // dist/cli.js and src/cli.ts are both one level below the package root.
  return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

function flag(argv: readonly string[], name: string): string | undefined {
  return flagValue(argv, [`--${name}`]);
}

async function tokenCommand(argv: readonly string[]): Promise<void> {
  const config = loadConfig({ argv });
  requireKeySetting(config);
  if (!config.jwtSecret)
    throw new ConfigError(
      "invalid setting ROOMCAST_JWT_SECRET: `roomcast token` signs with the HS256 secret; mint asymmetric tokens with your identity provider",
    );
  const sub = flag(argv, "sub");
  if (!sub) throw new ConfigError("missing flag --sub: the token's user id");
  const envs = flag(argv, "envs");
  const ttlS = parseDuration(flag(argv, "ttl") ?? "1h");
  if (config.maxTokenLifetimeS > 0 && ttlS > config.maxTokenLifetimeS) {
    throw new ConfigError(
      `invalid flag --ttl: gateways refuse tokens living longer than ROOMCAST_MAX_TOKEN_LIFETIME_S (${config.maxTokenLifetimeS} s)`,
    );
  }
  const token = await mintToken({
    secret: config.jwtSecret,
    sub,
    envs: envs
      ? envs
          .split(",")
          .map((e) => e.trim())
          .filter(Boolean)
      : undefined,
    scope: flag(argv, "scope"),
    tenant: flag(argv, "tenant"),
    ttlS,
  });
  process.stdout.write(token + "\n");
}

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    const spec = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
    process.stdout.write(spec ? commandUsage(rest[0]!, spec) : USAGE);
    return;
  }
  if (command === "--version" || command === "-v" || command === "version") {
    process.stdout.write(`${version()}\n`);
    return;
  }
  const spec = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!spec) {
    process.stderr.write(`roomcast: unknown command ${command}\n${USAGE}`);
    process.exit(2);
  }
  const checked = checkFlags(rest, new Set([...allSettingFlags(), ...Object.keys(spec.flags)]));
  if ("help" in checked) {
    process.stdout.write(commandUsage(command, spec));
    return;
  }
  if ("problem" in checked) throw new ConfigError(`${checked.problem} (roomcast ${command} --help lists the flags)`);
  switch (command) {
    case "gateway":
      await runGateway(loadConfig({ argv: rest }));
      return;
    case "worker":
      await runWorker(loadConfig({ argv: rest }));
      return;
    case "start":
      await runLocalCluster(rest);
      return;
    case "token":
      await tokenCommand(rest);
      return;
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof RedisUnavailableError) {
    process.stderr.write(`roomcast: ${err.message}\n`);
  } else {
    process.stderr.write(`roomcast: ${(err as Error)?.stack ?? String(err)}\n`);
  }
  process.exit(1);
});

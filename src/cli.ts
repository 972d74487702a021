#!/usr/bin/env node
/**
 * roomcast gateway | worker | start | token
 */
import { parseDuration, mintToken } from "./auth/mint-token.js";
import { ConfigError, loadConfig, requireKeySetting } from "./config/load-config.js";
import { SETTINGS } from "./config/settings.js";
import { RedisUnavailableError } from "./cluster/redis-clients.js";
import { runGateway } from "./lifecycle/run-gateway.js";
import { runWorker } from "./lifecycle/run-worker.js";
import { runLocalCluster } from "./lifecycle/local-cluster.js";

const USAGE = `usage: roomcast <command> [--flags]

commands:
  gateway   start one gateway replica (needs REDIS_URL and a JWT key setting)
  worker    start one BullMQ worker running the processors (needs REDIS_URL; /healthz, /readyz, /metrics on PORT)
  start     a whole local cluster: Redis (embedded unless REDIS_URL is set), --replicas N gateways on one port, one worker
  token     mint a token: --sub <id> [--envs a,b] [--scope "a b"] [--ttl 1h] [--tenant t]

settings (environment variables, or the same name as a --kebab-case flag):
${Object.values(SETTINGS)
  .map((s) => `  ${s.env.padEnd(36)} ${s.doc}${"default" in s ? ` (default ${JSON.stringify(s.default)})` : ""}`)
  .join("\n")}
  ROOMCAST_CONFIG                      a YAML or JSON file with the settings above and namespaces
`;

function flag(argv: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  argv.forEach((arg, i) => {
    if (arg === `--${name}`) value = argv[i + 1];
    else if (arg.startsWith(`--${name}=`)) value = arg.slice(name.length + 3);
  });
  return value;
}

async function tokenCommand(argv: readonly string[]): Promise<void> {
  const config = loadConfig({ argv });
  requireKeySetting(config);
  if (!config.jwtSecret) throw new ConfigError("invalid setting ROOMCAST_JWT_SECRET: `roomcast token` signs with the HS256 secret; mint asymmetric tokens with your identity provider");
  const sub = flag(argv, "sub");
  if (!sub) throw new ConfigError("missing flag --sub: the token's user id");
  const envs = flag(argv, "envs");
  const ttlS = parseDuration(flag(argv, "ttl") ?? "1h");
  if (config.maxTokenLifetimeS > 0 && ttlS > config.maxTokenLifetimeS) {
    throw new ConfigError(`invalid flag --ttl: gateways refuse tokens living longer than ROOMCAST_MAX_TOKEN_LIFETIME_S (${config.maxTokenLifetimeS} s)`);
  }
  const token = await mintToken({
    secret: config.jwtSecret,
    sub,
    envs: envs ? envs.split(",").map((e) => e.trim()).filter(Boolean) : undefined,
    scope: flag(argv, "scope"),
    tenant: flag(argv, "tenant"),
    ttlS,
  });
  process.stdout.write(token + "\n");
}

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case "gateway":
      await runGateway(loadConfig({ argv: rest }), { stickyWorker: process.env.ROOMCAST_STICKY_WORKER === "1" });
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
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`roomcast: unknown command ${command}\n${USAGE}`);
      process.exit(2);
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

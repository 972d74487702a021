/**
 * Parses the settings once, from (lowest first) defaults, a ROOMCAST_CONFIG file,
 * environment variables and kebab-case flags; validates them; returns a frozen Config.
 * A bad value throws ConfigError whose message is one line naming the setting.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { parse as parseYaml } from "yaml";
import { BUILT_IN_NAMESPACES, namespaceSchema, type NamespaceConfig } from "./namespaces.js";
import { flagValue, settingFlags } from "./cli-flags.js";
import { SETTINGS, type SettingKey, type SettingSpec } from "./settings.js";
import { redactUrl, type RedisTimeouts } from "../cluster/redis-clients.js";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export interface Config {
  port: number;
  host: string;
  redisUrl: string | undefined;
  adapter: "auto" | "classic" | "sharded";
  redisPrefix: string;
  jwtSecret: string | undefined;
  maxTokenLifetimeS: number;
  jwtPublicKeyFile: string | undefined;
  jwksFile: string | undefined;
  jwtIssuer: string | undefined;
  jwtAudience: string | undefined;
  allowedTenants: readonly string[];
  corsOrigins: readonly string[];
  tokenQuery: boolean;
  trustProxy: number;
  nodeId: string;
  maxConnectionsPerUser: number;
  maxConnectionsPerEnv: number;
  maxConnectionsPerUserPerEnv: number;
  maxConnectionsPerIp: number;
  maxConnectionsPerNode: number;
  maxUnauthenticatedPerIp: number;
  maxUnauthenticatedPerNode: number;
  authTimeoutS: number;
  maxSubscriptions: number;
  rateLimit: number;
  rateBurst: number;
  maxMessageBytes: number;
  quotaLeaseS: number;
  slowConsumerPackets: number;
  slowConsumerBytes: number;
  httpRateLimit: number;
  httpRateLimitPublishers: boolean;
  maxBatchEvents: number;
  maxBatchBytes: number;
  maxReadBytes: number;
  historySize: number;
  historyTtlS: number;
  idempotencyTtlS: number;
  redisSilentS: number;
  redisCommandTimeoutMs: number;
  drainS: number;
  queueName: string;
  workerConcurrency: number;
  processors: readonly string[];
  sampleProcessors: boolean;
  jobAttempts: number;
  jobBackoffMs: number;
  jobLockS: number;
  jobRetentionS: number;
  console: boolean;
  adminUser: string | undefined;
  adminPasswordHash: string | undefined;
  adminReadonly: boolean;
  logLevel: string;
  logPretty: boolean;
  namespaces: Readonly<Record<string, NamespaceConfig>>;
}

/** The shortest HS256 secret accepted: 256 bits, the hash's own size. */
export const MIN_SECRET_BYTES = 32;

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const NAMESPACE_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
/** What bcryptjs (the admin UI's password check) accepts: $2$, $2a$, $2b$ or $2y$ hashes. */
const BCRYPT_HASH = /^\$2[aby]?\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

function convert(name: string, spec: SettingSpec, raw: unknown): unknown {
  const fail = (expected: string): never => {
    throw new ConfigError(`invalid setting ${name}: expected ${expected}, got ${JSON.stringify(raw)}`);
  };
  const text = typeof raw === "string" ? raw.trim() : raw;
  switch (spec.kind) {
    case "int": {
      const n = typeof text === "number" ? text : /^\d+$/.test(String(text)) ? Number(text) : NaN;
      if (!Number.isSafeInteger(n) || n < 0) fail("a whole number >= 0");
      if (name === "PORT" && n > 65535) fail("a port number (0-65535)");
      return n;
    }
    case "number": {
      const n = typeof text === "number" ? text : /^\d+(\.\d+)?$/.test(String(text)) ? Number(text) : NaN;
      if (!Number.isFinite(n) || n < 0) fail("a number >= 0");
      return n;
    }
    case "bool": {
      if (typeof text === "boolean") return text;
      const s = String(text).toLowerCase();
      if (["1", "true", "yes", "on"].includes(s)) return true;
      if (["0", "false", "no", "off", ""].includes(s)) return false;
      return fail("true or false");
    }
    case "list":
      if (Array.isArray(text)) return text.map(String);
      return String(text).split(",").map((s) => s.trim()).filter(Boolean);
    case "level":
      if (!LEVELS.includes(String(text))) fail(`one of ${LEVELS.join(", ")}`);
      return String(text);
    case "string":
      if (typeof text !== "string" || text === "") fail("a non-empty string");
      return text;
    case "choice":
      if (!spec.choices?.includes(String(text))) fail(`one of ${spec.choices?.join(", ")}`);
      return String(text);
  }
}

/** `--redis-url x`, `--redis-url=x`, and for ROOMCAST_ settings also the short `--history-size`. */
function readFlag(argv: readonly string[], env: string): string | undefined {
  return flagValue(argv, settingFlags(env));
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`invalid setting ROOMCAST_CONFIG: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  let parsed: unknown;
  try {
    parsed = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(`invalid setting ROOMCAST_CONFIG: ${path} is not valid ${path.endsWith(".json") ? "JSON" : "YAML"} (${(err as Error).message.split("\n")[0]})`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) throw new ConfigError(`invalid setting ROOMCAST_CONFIG: ${path} must hold an object`);
  return parsed as Record<string, unknown>;
}

function parseNamespaces(fromFile: unknown): Record<string, NamespaceConfig> {
  const namespaces: Record<string, NamespaceConfig> = { ...BUILT_IN_NAMESPACES };
  if (fromFile === undefined) return namespaces;
  if (typeof fromFile !== "object" || fromFile === null || Array.isArray(fromFile)) {
    throw new ConfigError("invalid setting namespaces (ROOMCAST_CONFIG): expected an object of namespace name to settings");
  }
  for (const [name, value] of Object.entries(fromFile)) {
    if (!NAMESPACE_NAME.test(name)) throw new ConfigError(`invalid setting namespaces.${name} (ROOMCAST_CONFIG): a namespace name must match ${NAMESPACE_NAME}`);
    const result = namespaceSchema.safeParse(value);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      const where = [name, ...issue.path].join(".");
      throw new ConfigError(`invalid setting namespaces.${where} (ROOMCAST_CONFIG): ${issue.message}`);
    }
    namespaces[name] = result.data;
  }
  return namespaces;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  argv?: readonly string[];
  /** A command's own defaults, in place of the settings' (a flag, the variable or the file still wins). */
  defaults?: Partial<Record<SettingKey, number | string | boolean>>;
}

export function loadConfig({ env = process.env, argv = [], defaults = {} }: LoadOptions = {}): Config {
  const configPath = readFlag(argv, "ROOMCAST_CONFIG") ?? env.ROOMCAST_CONFIG;
  const file = configPath ? readConfigFile(configPath) : {};
  const known = new Set<string>([...Object.keys(SETTINGS), "namespaces"]);
  for (const key of Object.keys(file)) {
    if (!known.has(key)) throw new ConfigError(`invalid setting ${key} (ROOMCAST_CONFIG): unknown setting; known: ${[...known].join(", ")}`);
  }
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SETTINGS) as [SettingKey, SettingSpec][]) {
    const raw = readFlag(argv, spec.env) ?? env[spec.env] ?? file[key];
    values[key] = raw === undefined || raw === "" ? (defaults[key] ?? spec.default) : convert(spec.env, spec, raw);
  }
  values.nodeId ??= `${hostname()}-${process.pid}`;
  values.namespaces = parseNamespaces(file.namespaces);
  const config = values as unknown as Config;
  if (config.rateLimit > 0 && config.rateBurst < 1) throw new ConfigError("invalid setting ROOMCAST_RATE_BURST: must be at least 1 when ROOMCAST_RATE_LIMIT is on");
  if (config.historyTtlS < 1) throw new ConfigError("invalid setting ROOMCAST_HISTORY_TTL_S: must be at least 1");
  if (config.quotaLeaseS < 3) throw new ConfigError("invalid setting ROOMCAST_QUOTA_LEASE_S: must be at least 3");
  if (config.authTimeoutS < 1) throw new ConfigError("invalid setting ROOMCAST_AUTH_TIMEOUT_S: must be at least 1");
  if (config.redisSilentS < 1) throw new ConfigError("invalid setting ROOMCAST_REDIS_SILENT_S: must be at least 1");
  if (config.redisCommandTimeoutMs < 100) throw new ConfigError("invalid setting ROOMCAST_REDIS_COMMAND_TIMEOUT_MS: must be at least 100");
  if (config.maxBatchEvents < 1) throw new ConfigError("invalid setting ROOMCAST_MAX_BATCH_EVENTS: must be at least 1");
  if (config.idempotencyTtlS < 1) throw new ConfigError("invalid setting ROOMCAST_IDEMPOTENCY_TTL_S: must be at least 1");
  if (config.redisUrl !== undefined && !/^rediss?(\+cluster)?:\/\/./.test(config.redisUrl)) {
    throw new ConfigError(`invalid setting REDIS_URL: expected a redis://, rediss:// or redis+cluster:// URL, got ${JSON.stringify(redactUrl(config.redisUrl))}`);
  }
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(config.queueName)) throw new ConfigError("invalid setting ROOMCAST_QUEUE: letters, digits, _ and - only, at most 64");
  if (config.workerConcurrency < 1) throw new ConfigError("invalid setting ROOMCAST_WORKER_CONCURRENCY: must be at least 1");
  if (config.jobAttempts < 1) throw new ConfigError("invalid setting ROOMCAST_JOB_ATTEMPTS: must be at least 1");
  if (config.jobLockS < 2) throw new ConfigError("invalid setting ROOMCAST_JOB_LOCK_S: must be at least 2");
  if (config.jobRetentionS < 1) throw new ConfigError("invalid setting ROOMCAST_JOB_RETENTION_S: must be at least 1");
  if (!/^[A-Za-z0-9_.-]+$/.test(config.redisPrefix)) throw new ConfigError("invalid setting ROOMCAST_REDIS_PREFIX: letters, digits and _.- only");
  if ((config.adminUser === undefined) !== (config.adminPasswordHash === undefined)) {
    const missing = config.adminUser === undefined ? "ROOMCAST_ADMIN_USER" : "ROOMCAST_ADMIN_PASSWORD_HASH";
    throw new ConfigError(`missing setting ${missing}: the admin UI needs both ROOMCAST_ADMIN_USER and ROOMCAST_ADMIN_PASSWORD_HASH (set neither to turn it off)`);
  }
  // Never echo the value: it is a password hash.
  if (config.adminPasswordHash !== undefined && !BCRYPT_HASH.test(config.adminPasswordHash)) {
    throw new ConfigError("invalid setting ROOMCAST_ADMIN_PASSWORD_HASH: expected a bcrypt hash ($2b$, a cost of 04 to 31, $, then 53 characters of ./A-Za-z0-9)");
  }
  return deepFreeze(config);
}

/** The Redis timeouts of a replica or a worker. */
export function redisTimeoutsOf(config: Config): RedisTimeouts {
  return { silentMs: config.redisSilentS * 1000, commandTimeoutMs: config.redisCommandTimeoutMs };
}

/** Checks made only by commands that need them (gateway, worker), not by `token` or `start`. */
export function requireServerSettings(config: Config): void {
  requireRedisSetting(config, "gateway");
  requireKeySetting(config);
}

export function requireRedisSetting(config: Config, who: "gateway" | "worker"): void {
  if (!config.redisUrl) throw new ConfigError(`missing setting REDIS_URL: the ${who} needs Redis (for example REDIS_URL=redis://127.0.0.1:6379)`);
}

export function requireKeySetting(config: Config): void {
  const keys = [config.jwtSecret, config.jwtPublicKeyFile, config.jwksFile].filter(Boolean).length;
  if (keys === 0) throw new ConfigError("missing setting ROOMCAST_JWT_SECRET: set it, ROOMCAST_JWT_PUBLIC_KEY_FILE or ROOMCAST_JWKS_FILE");
  if (keys > 1) throw new ConfigError("invalid setting ROOMCAST_JWT_SECRET: set only one of ROOMCAST_JWT_SECRET, ROOMCAST_JWT_PUBLIC_KEY_FILE, ROOMCAST_JWKS_FILE");
  // HS256 with a short secret is a guessable key: anyone could mint tokens. Never echo it.
  if (config.jwtSecret !== undefined && Buffer.byteLength(config.jwtSecret, "utf8") < MIN_SECRET_BYTES) {
    throw new ConfigError(`invalid setting ROOMCAST_JWT_SECRET: must be at least ${MIN_SECRET_BYTES} bytes (it is ${Buffer.byteLength(config.jwtSecret, "utf8")}); make one with: openssl rand -base64 32`);
  }
}


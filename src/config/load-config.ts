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
import { WEBHOOK_EVENTS } from "../contracts/webhooks.js";
import { SETTINGS, type SettingKey, type Settings, type SettingSpec } from "./settings.js";

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The settings, parsed once and frozen: their types derive from the SETTINGS table. */
export type Config = Omit<Settings, "nodeId"> & {
  /** ROOMCAST_NODE_ID, or the host name and pid. */
  readonly nodeId: string;
  readonly namespaces: Readonly<Record<string, NamespaceConfig>>;
};

/** The shortest HS256 secret accepted: 256 bits, the hash's own size. */
export const MIN_SECRET_BYTES = 32;

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const NAMESPACE_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
/** A value from a flag, a variable or the file, converted to its kind and checked against its range or pattern. */
function convert(name: string, spec: SettingSpec, raw: unknown): unknown {
  const fail = (expected: string): never => {
    const shown = spec.secret
      ? ""
      : `, got ${JSON.stringify(spec.redact && typeof raw === "string" ? spec.redact(raw) : raw)}`;
    throw new ConfigError(`invalid setting ${name}: expected ${expected}${shown}`);
  };
  const inRange = (n: number): number => {
    if (spec.min !== undefined && n < spec.min)
      fail(spec.max === undefined ? `at least ${spec.min}` : `${spec.min} to ${spec.max}`);
    if (spec.max !== undefined && n > spec.max) fail(`${spec.min ?? 0} to ${spec.max}`);
    return n;
  };
  const text = typeof raw === "string" ? raw.trim() : raw;
  switch (spec.kind) {
    case "int": {
      const n = typeof text === "number" ? text : /^\d+$/.test(String(text)) ? Number(text) : NaN;
      if (!Number.isSafeInteger(n) || n < 0) fail("a whole number >= 0");
      return inRange(n);
    }
    case "number": {
      const n = typeof text === "number" ? text : /^\d+(\.\d+)?$/.test(String(text)) ? Number(text) : NaN;
      if (!Number.isFinite(n) || n < 0) fail("a number >= 0");
      return inRange(n);
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
      return String(text)
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    case "level":
      if (!LEVELS.includes(String(text))) fail(`one of ${LEVELS.join(", ")}`);
      return String(text);
    case "string":
      if (typeof text !== "string" || text === "") fail("a non-empty string");
      if (spec.pattern && !spec.pattern.test(text as string)) fail(spec.patternDoc ?? `a match of ${spec.pattern}`);
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
    throw new ConfigError(
      `invalid setting ROOMCAST_CONFIG: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  let parsed: unknown;
  try {
    parsed = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      `invalid setting ROOMCAST_CONFIG: ${path} is not valid ${path.endsWith(".json") ? "JSON" : "YAML"} (${(err as Error).message.split("\n")[0]})`,
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed))
    throw new ConfigError(`invalid setting ROOMCAST_CONFIG: ${path} must hold an object`);
  return parsed as Record<string, unknown>;
}

function parseNamespaces(fromFile: unknown): Record<string, NamespaceConfig> {
  const namespaces: Record<string, NamespaceConfig> = { ...BUILT_IN_NAMESPACES };
  if (fromFile === undefined) return namespaces;
  if (typeof fromFile !== "object" || fromFile === null || Array.isArray(fromFile)) {
    throw new ConfigError(
      "invalid setting namespaces (ROOMCAST_CONFIG): expected an object of namespace name to settings",
    );
  }
  for (const [name, value] of Object.entries(fromFile)) {
    if (!NAMESPACE_NAME.test(name))
      throw new ConfigError(
        `invalid setting namespaces.${name} (ROOMCAST_CONFIG): a namespace name must match ${NAMESPACE_NAME}`,
      );
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
    if (!known.has(key))
      throw new ConfigError(
        `invalid setting ${key} (ROOMCAST_CONFIG): unknown setting; known: ${[...known].join(", ")}`,
      );
  }
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SETTINGS) as [SettingKey, SettingSpec][]) {
    const raw = readFlag(argv, spec.env) ?? env[spec.env] ?? file[key];
    values[key] = raw === undefined || raw === "" ? (defaults[key] ?? spec.default) : convert(spec.env, spec, raw);
  }
  values.nodeId ??= `${hostname()}-${process.pid}`;
  values.namespaces = parseNamespaces(file.namespaces);
  const config = values as unknown as Config;
  // What one setting's range cannot say: rules between settings.
  if (config.rateLimit > 0 && config.rateBurst < 1)
    throw new ConfigError("invalid setting ROOMCAST_RATE_BURST: must be at least 1 when ROOMCAST_RATE_LIMIT is on");
  if (config.webhookUrls.length > 0) {
    if (config.webhookSecret === undefined)
      throw new ConfigError(
        "missing setting ROOMCAST_WEBHOOK_SECRET: webhooks are signed (set it with ROOMCAST_WEBHOOK_URLS)",
      );
    if (Buffer.byteLength(config.webhookSecret, "utf8") < MIN_SECRET_BYTES) {
      throw new ConfigError(
        `invalid setting ROOMCAST_WEBHOOK_SECRET: must be at least ${MIN_SECRET_BYTES} bytes; make one with: openssl rand -base64 32`,
      );
    }
    const bad = config.webhookUrls.find((url) => !/^https?:\/\/./.test(url));
    if (bad !== undefined)
      throw new ConfigError(
        `invalid setting ROOMCAST_WEBHOOK_URLS: expected http:// or https:// URLs, got ${JSON.stringify(bad)}`,
      );
  }
  const unknownEvent = config.webhookEvents.find((e) => !(WEBHOOK_EVENTS as readonly string[]).includes(e));
  if (unknownEvent !== undefined)
    throw new ConfigError(
      `invalid setting ROOMCAST_WEBHOOK_EVENTS: ${JSON.stringify(unknownEvent)} is none of ${WEBHOOK_EVENTS.join(", ")}`,
    );
  if ((config.adminUser === undefined) !== (config.adminPasswordHash === undefined)) {
    const missing = config.adminUser === undefined ? "ROOMCAST_ADMIN_USER" : "ROOMCAST_ADMIN_PASSWORD_HASH";
    throw new ConfigError(
      `missing setting ${missing}: the admin UI needs both ROOMCAST_ADMIN_USER and ROOMCAST_ADMIN_PASSWORD_HASH (set neither to turn it off)`,
    );
  }
  return deepFreeze(config);
}

/** This process's environment with some variables set: for the processes `roomcast start` runs. */
export function environmentWith(overrides: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, ...overrides };
}

/** Checks made only by commands that need them (gateway, worker), not by `token` or `start`. */
export function requireServerSettings(config: Config): void {
  requireRedisSetting(config, "gateway");
  requireKeySetting(config);
}

export function requireRedisSetting(config: Config, who: "gateway" | "worker"): void {
  if (!config.redisUrl)
    throw new ConfigError(
      `missing setting REDIS_URL: the ${who} needs Redis (for example REDIS_URL=redis://127.0.0.1:6379)`,
    );
}

export function requireKeySetting(config: Config): void {
  const keys = [config.jwtSecret, config.jwtPublicKeyFile, config.jwksFile].filter(Boolean).length;
  if (keys === 0)
    throw new ConfigError(
      "missing setting ROOMCAST_JWT_SECRET: set it, ROOMCAST_JWT_PUBLIC_KEY_FILE or ROOMCAST_JWKS_FILE",
    );
  if (keys > 1)
    throw new ConfigError(
      "invalid setting ROOMCAST_JWT_SECRET: set only one of ROOMCAST_JWT_SECRET, ROOMCAST_JWT_PUBLIC_KEY_FILE, ROOMCAST_JWKS_FILE",
    );
  // HS256 with a short secret is a guessable key: anyone could mint tokens. Never echo it.
  if (config.jwtSecret !== undefined && Buffer.byteLength(config.jwtSecret, "utf8") < MIN_SECRET_BYTES) {
    throw new ConfigError(
      `invalid setting ROOMCAST_JWT_SECRET: must be at least ${MIN_SECRET_BYTES} bytes (it is ${Buffer.byteLength(config.jwtSecret, "utf8")}); make one with: openssl rand -base64 32`,
    );
  }
}

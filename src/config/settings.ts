/**
 * Every setting (docs/protocol.md, "Running it"; README, Configuration), once: its variable,
 * its key in a ROOMCAST_CONFIG file, its kind, default and range, and what it means. Config
 * (load-config.ts) is derived from this table; nothing else reads process.env.
 */
import { WEBHOOK_EVENTS } from "../contracts/webhooks.js";
import { redactUrl } from "./redis-url.js";

export type SettingKind = "int" | "number" | "string" | "bool" | "list" | "level" | "choice";

export interface SettingSpec {
  env: string;
  kind: SettingKind;
  default?: number | string | boolean | readonly string[];
  /** The allowed values of a "choice". */
  choices?: readonly string[];
  /** The smallest and largest allowed (int, number). */
  min?: number;
  max?: number;
  /** What a string must match, and how a refusal says it. */
  pattern?: RegExp;
  patternDoc?: string;
  /** A secret: a refusal never shows the value. */
  secret?: boolean;
  /** Redacted in a refusal (a URL's password). */
  redact?: (value: string) => string;
  /** Set by roomcast for the processes it starts, not by users: in no table. */
  internal?: boolean;
  doc: string;
}

export const SETTINGS = {
  port: { env: "PORT", kind: "int", max: 65535, default: 3000, doc: "listen port" },
  host: {
    env: "HOST",
    kind: "string",
    default: "0.0.0.0",
    doc: "listen address (roomcast start: 127.0.0.1 unless set, since it prints an admin token)",
  },
  redisUrl: {
    env: "REDIS_URL",
    kind: "string",
    pattern: /^rediss?(\+cluster)?:\/\/./,
    patternDoc: "a redis://, rediss:// or redis+cluster:// URL",
    redact: redactUrl,
    doc: "Redis URL (redis://, rediss://), or Redis Cluster seeds (redis+cluster://host:port,host:port); required for gateway and worker",
  },
  adapter: {
    env: "ROOMCAST_ADAPTER",
    kind: "choice",
    choices: ["auto", "classic", "sharded"],
    default: "auto",
    doc: "pub/sub between replicas: classic (PUBLISH) or sharded (SPUBLISH, Redis 7+); auto: sharded on a Redis Cluster, classic on a single Redis",
  },
  redisPrefix: {
    env: "ROOMCAST_REDIS_PREFIX",
    kind: "string",
    pattern: /^[A-Za-z0-9_.-]+$/,
    patternDoc: "letters, digits and _.- only",
    default: "rc",
    doc: "prefix of every Redis key and pub/sub channel",
  },
  jwtSecret: { env: "ROOMCAST_JWT_SECRET", kind: "string", secret: true, doc: "HS256 shared secret" },
  maxTokenLifetimeS: {
    env: "ROOMCAST_MAX_TOKEN_LIFETIME_S",
    kind: "int",
    default: 2592000,
    doc: "tokens whose lifetime (exp after iat, or after now without iat) is longer are refused 4401 (s; 30 days by default; 0: no bound)",
  },
  jwtPublicKeyFile: {
    env: "ROOMCAST_JWT_PUBLIC_KEY_FILE",
    kind: "string",
    doc: "PEM public key file (RS256, ES256 or EdDSA)",
  },
  jwksFile: { env: "ROOMCAST_JWKS_FILE", kind: "string", doc: "JWKS file" },
  jwtIssuer: { env: "ROOMCAST_JWT_ISSUER", kind: "string", doc: "required `iss` claim, if set" },
  jwtAudience: { env: "ROOMCAST_JWT_AUDIENCE", kind: "string", doc: "required `aud` claim, if set" },
  allowedTenants: {
    env: "ROOMCAST_ALLOWED_TENANTS",
    kind: "list",
    default: [],
    doc: "tenants allowed to connect (comma-separated); a valid token of another tenant is refused 4403; empty: any",
  },
  corsOrigins: {
    env: "ROOMCAST_CORS_ORIGINS",
    kind: "list",
    default: [],
    doc: "origins whose pages may connect with credentials (cookies: load-balancer stickiness for long-polling), comma-separated; empty: any origin, without credentials",
  },
  tokenQuery: {
    env: "ROOMCAST_TOKEN_QUERY",
    kind: "bool",
    default: false,
    doc: "accept ?token= in the handshake URL (it leaks into proxy logs)",
  },
  trustProxy: {
    env: "ROOMCAST_TRUST_PROXY",
    kind: "int",
    default: 0,
    doc: "proxies in front of the gateways whose X-Forwarded-For names the client (per-IP quota, HTTP rate limit, admin logins): 0 none, 1 behind one load balancer or ingress controller",
  },
  nodeId: {
    env: "ROOMCAST_NODE_ID",
    kind: "string",
    doc: "replica name in logs and stats (default: host name and pid)",
  },
  maxConnectionsPerUser: {
    env: "ROOMCAST_MAX_CONNECTIONS_PER_USER",
    kind: "int",
    default: 50,
    doc: "connections per user, cluster-wide (0: off)",
  },
  maxConnectionsPerEnv: {
    env: "ROOMCAST_MAX_CONNECTIONS_PER_ENV",
    kind: "int",
    default: 1000,
    doc: "connections subscribed to an environment's channels, cluster-wide; tokens with scope admin are exempt (0: off)",
  },
  maxConnectionsPerUserPerEnv: {
    env: "ROOMCAST_MAX_CONNECTIONS_PER_USER_PER_ENV",
    kind: "int",
    default: 20,
    doc: "connections of one user subscribed to an environment's channels, cluster-wide, so that one user cannot fill the environment's pool; tokens with scope admin are exempt (0: off)",
  },
  maxConnectionsPerIp: {
    env: "ROOMCAST_MAX_CONNECTIONS_PER_IP",
    kind: "int",
    default: 100,
    doc: "connections per IP, cluster-wide (0: off)",
  },
  maxConnectionsPerNode: {
    env: "ROOMCAST_MAX_CONNECTIONS_PER_NODE",
    kind: "int",
    default: 20000,
    doc: "connections per replica (0: off)",
  },
  maxUnauthenticatedPerIp: {
    env: "ROOMCAST_MAX_UNAUTHENTICATED_PER_IP",
    kind: "int",
    default: 100,
    doc: "Engine.IO sessions of one IP that have not completed the Socket.IO CONNECT yet, per replica; more are refused with HTTP 429 at the handshake (0: off)",
  },
  maxUnauthenticatedPerNode: {
    env: "ROOMCAST_MAX_UNAUTHENTICATED_PER_NODE",
    kind: "int",
    default: 5000,
    doc: "Engine.IO sessions that have not completed the Socket.IO CONNECT yet, per replica; more are refused with HTTP 503 at the handshake (0: off)",
  },
  authTimeoutS: {
    env: "ROOMCAST_AUTH_TIMEOUT_S",
    kind: "int",
    min: 1,
    default: 5,
    doc: "an Engine.IO session that has not completed the Socket.IO CONNECT (authenticated) within this time is closed (s)",
  },
  maxSubscriptions: {
    env: "ROOMCAST_MAX_SUBSCRIPTIONS",
    kind: "int",
    default: 50,
    doc: "subscriptions per connection (0: off)",
  },
  rateLimit: {
    env: "ROOMCAST_RATE_LIMIT",
    kind: "number",
    default: 10,
    doc: "client requests per second per connection (0: off)",
  },
  rateBurst: { env: "ROOMCAST_RATE_BURST", kind: "int", default: 50, doc: "request burst per connection" },
  maxMessageBytes: {
    env: "ROOMCAST_MAX_MESSAGE_BYTES",
    kind: "int",
    default: 65536,
    doc: "message size limit in bytes (socket requests and HTTP bodies)",
  },
  quotaLeaseS: {
    env: "ROOMCAST_QUOTA_LEASE_S",
    kind: "int",
    min: 3,
    default: 30,
    doc: "lease of a connection's entry in the cluster-wide quotas: a dead replica's connections stop counting after it (s)",
  },
  slowConsumerPackets: {
    env: "ROOMCAST_SLOW_CONSUMER_PACKETS",
    kind: "int",
    default: 1000,
    doc: "packets buffered for a client before it counts as a slow consumer (0: off)",
  },
  slowConsumerBytes: {
    env: "ROOMCAST_SLOW_CONSUMER_BYTES",
    kind: "int",
    default: 1048576,
    doc: "bytes buffered for a client before it counts as a slow consumer (0: off)",
  },
  httpRateLimit: {
    env: "ROOMCAST_HTTP_RATE_LIMIT",
    kind: "int",
    default: 200,
    doc: "HTTP API requests per second per token, cluster-wide; callers without a valid token count per IP; a publish-scoped token's 2xx answers do not count unless ROOMCAST_HTTP_RATE_LIMIT_PUBLISHERS is on (0: off)",
  },
  httpRateLimitPublishers: {
    env: "ROOMCAST_HTTP_RATE_LIMIT_PUBLISHERS",
    kind: "bool",
    default: false,
    doc: "count a publish-scoped token's successful requests toward ROOMCAST_HTTP_RATE_LIMIT too (off: a backend that publishes thousands of events a second is never throttled)",
  },
  maxBatchEvents: {
    env: "ROOMCAST_MAX_BATCH_EVENTS",
    kind: "int",
    min: 1,
    default: 1000,
    doc: "events per POST /v1/publish batch",
  },
  maxBatchBytes: {
    env: "ROOMCAST_MAX_BATCH_BYTES",
    kind: "int",
    default: 4194304,
    doc: "body size limit of POST /v1/publish in bytes (each event is also held to ROOMCAST_MAX_MESSAGE_BYTES)",
  },
  maxReadBytes: {
    env: "ROOMCAST_MAX_READ_BYTES",
    kind: "int",
    default: 524288,
    doc: "history one read may return in bytes of JSON: a subscribe answer (the rest of a recovery follows as events), one step of a catch-up, an HTTP history page (at least one event; 0: no bound)",
  },
  historySize: {
    env: "ROOMCAST_HISTORY_SIZE",
    kind: "int",
    default: 1000,
    doc: "default history per channel (events)",
  },
  historyTtlS: {
    env: "ROOMCAST_HISTORY_TTL_S",
    kind: "int",
    min: 1,
    default: 3600,
    doc: "default history time to live after the last publish (s)",
  },
  idempotencyTtlS: {
    env: "ROOMCAST_IDEMPOTENCY_TTL_S",
    kind: "int",
    min: 1,
    default: 300,
    doc: "window in which a repeated idempotencyKey returns the first answer (s)",
  },
  redisSilentS: {
    env: "ROOMCAST_REDIS_SILENT_S",
    kind: "int",
    min: 1,
    default: 5,
    doc: "a Redis connection that answers nothing this long (a partition, a half-open TCP link) counts as lost: the replica turns unready, moves its clients to other replicas, refuses new ones and reconnects by itself (s)",
  },
  redisCommandTimeoutMs: {
    env: "ROOMCAST_REDIS_COMMAND_TIMEOUT_MS",
    kind: "int",
    min: 100,
    default: 2000,
    doc: "a Redis command without a reply this long fails (the request is answered 4503 unavailable) instead of waiting (ms)",
  },
  presenceLeaseS: {
    env: "ROOMCAST_PRESENCE_LEASE_S",
    kind: "int",
    min: 3,
    default: 15,
    doc: "lease of a connection's presence on a channel, renewed by its replica: a replica that dies drops out of every channel's presence within it, and the leaves are announced (s)",
  },
  presenceDebounceS: {
    env: "ROOMCAST_PRESENCE_DEBOUNCE_S",
    kind: "int",
    default: 5,
    doc: "a user's last connection leaving a channel is announced this long after it went, unless one comes back meanwhile (a reconnect, a replica move, a reload): no leave and join in between (s)",
  },
  presenceMaxMembers: {
    env: "ROOMCAST_PRESENCE_MAX_MEMBERS",
    kind: "int",
    min: 1,
    default: 1000,
    doc: "above this many users on a channel, a presence answer holds only the counts, never a partial list",
  },
  webhookUrls: {
    env: "ROOMCAST_WEBHOOK_URLS",
    kind: "list",
    default: [],
    doc: "http(s) URLs that get the presence webhooks (channel_occupied, channel_vacated, member_added, member_removed), comma-separated, delivered by the workers; empty: off",
  },
  webhookSecret: {
    env: "ROOMCAST_WEBHOOK_SECRET",
    kind: "string",
    secret: true,
    doc: "the key of the webhooks' HMAC-SHA256 signature (X-Roomcast-Signature); required with ROOMCAST_WEBHOOK_URLS, at least 32 bytes",
  },
  webhookEvents: {
    env: "ROOMCAST_WEBHOOK_EVENTS",
    kind: "list",
    default: [...WEBHOOK_EVENTS],
    doc: "the webhook events sent, comma-separated (any of channel_occupied, channel_vacated, member_added, member_removed)",
  },
  drainS: {
    env: "ROOMCAST_DRAIN_S",
    kind: "int",
    default: 10,
    doc: "time to spread disconnects over on SIGTERM (s); a worker's time for running jobs to finish",
  },
  queueName: {
    env: "ROOMCAST_QUEUE",
    kind: "string",
    pattern: /^[A-Za-z0-9_-]{1,64}$/,
    patternDoc: "letters, digits, _ and - only, at most 64",
    default: "jobs",
    doc: "the BullMQ queue of jobs (gateways add to it, workers take from it)",
  },
  workerConcurrency: {
    env: "ROOMCAST_WORKER_CONCURRENCY",
    kind: "int",
    min: 1,
    default: 4,
    doc: "jobs a worker runs at once",
  },
  processors: {
    env: "ROOMCAST_PROCESSORS",
    kind: "list",
    default: [],
    doc: "modules a worker loads processors from (comma-separated paths or package names; see docs/jobs.md)",
  },
  sampleProcessors: {
    env: "ROOMCAST_SAMPLE_PROCESSORS",
    kind: "bool",
    default: false,
    doc: "a worker also runs the built-in sample processors (sample.build, sample.deploy, sample.env-status); on under roomcast start",
  },
  jobAttempts: {
    env: "ROOMCAST_JOB_ATTEMPTS",
    kind: "int",
    min: 1,
    default: 3,
    doc: "attempts of a job unless POST /v1/jobs sets opts.attempts",
  },
  jobBackoffMs: {
    env: "ROOMCAST_JOB_BACKOFF_MS",
    kind: "int",
    default: 1000,
    doc: "delay before a job's first retry, doubled for each later one (ms)",
  },
  jobLockS: {
    env: "ROOMCAST_JOB_LOCK_S",
    kind: "int",
    min: 2,
    default: 30,
    doc: "a job whose worker stopped renewing its lock this long is run again by another worker (s)",
  },
  jobRetentionS: {
    env: "ROOMCAST_JOB_RETENTION_S",
    kind: "int",
    min: 1,
    default: 300,
    doc: "how long a finished job, its channel and its history are kept; then subscribers get unsubscribed 4404 expired (s)",
  },
  console: {
    env: "ROOMCAST_CONSOLE",
    kind: "bool",
    default: false,
    doc: "serve the live console (a web page for jobs, logs and environments) at /; on under roomcast start",
  },
  adminUser: {
    env: "ROOMCAST_ADMIN_USER",
    kind: "string",
    doc: "admin UI user; the Socket.IO admin UI at /admin/ is off unless this and ROOMCAST_ADMIN_PASSWORD_HASH are set",
  },
  adminPasswordHash: {
    env: "ROOMCAST_ADMIN_PASSWORD_HASH",
    kind: "string",
    secret: true,
    pattern: /^\$2[aby]?\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/,
    patternDoc: "a bcrypt hash ($2b$, a cost of 04 to 31, $, then 53 characters of ./A-Za-z0-9)",
    doc: "admin UI password as a bcrypt hash ($2a$, $2b$ or $2y$)",
  },
  adminReadonly: {
    env: "ROOMCAST_ADMIN_READONLY",
    kind: "bool",
    default: true,
    doc: "admin UI read-only: namespace /admin takes no emit, join, leave or disconnect commands (false takes them, bypassing channel authorization, offsets and history)",
  },
  logLevel: { env: "LOG_LEVEL", kind: "level", default: "info", doc: "pino level" },
  stickyWorker: {
    env: "ROOMCAST_STICKY_WORKER",
    kind: "bool",
    default: false,
    internal: true,
    doc: "a gateway behind roomcast start's load balancer: it takes connections from it instead of listening",
  },
  supervised: {
    env: "ROOMCAST_SUPERVISED",
    kind: "bool",
    default: false,
    internal: true,
    doc: "a process roomcast start runs and stops: it ignores the terminal's Ctrl-C and stops when the launcher goes",
  },
  logPretty: { env: "ROOMCAST_LOG_PRETTY", kind: "bool", default: false, doc: "human-readable logs instead of JSON" },
} as const satisfies Record<string, SettingSpec>;

export type SettingKey = keyof typeof SETTINGS;

/** The value a setting of this spec holds: its kind's type, or one of its choices. */
type ValueOf<S> = S extends { kind: "int" | "number" }
  ? number
  : S extends { kind: "bool" }
    ? boolean
    : S extends { kind: "list" }
      ? readonly string[]
      : S extends { kind: "choice"; choices: readonly (infer C)[] }
        ? C
        : string;

/** Every setting's value: settings with a default always have one, the others may be unset. */
export type Settings = {
  readonly [K in SettingKey]: (typeof SETTINGS)[K] extends { default: unknown }
    ? ValueOf<(typeof SETTINGS)[K]>
    : ValueOf<(typeof SETTINGS)[K]> | undefined;
};

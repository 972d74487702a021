/**
 * Redis connections of a replica, on a single Redis or a Redis Cluster: `commands`
 * (scripts, reads; the socket.io adapter publishes on it too) and `subscriber` (pub/sub for
 * the adapter and the channel feed). Start-up waits until both are ready, or fails with
 * one line; afterwards commands fail fast while Redis is away or silent (no offline queue,
 * a command timeout), so that a publish is refused (503), never silently queued or sent
 * twice. A health probe (redis-health.ts) tells a silent link from a working one.
 */
import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import { parseRedisUrl, redactUrl, type RedisTarget } from "../config/redis-url.js";
import type { Config } from "../config/load-config.js";
import { RoomcastError } from "../contracts/error-codes.js";
import { RedisHealth, type LinkState } from "./redis-health.js";

export type RedisClient = Redis | Cluster;

export interface RedisClients {
  commands: RedisClient;
  subscriber: RedisClient;
  /** True on a Redis Cluster (redis+cluster:// seeds). */
  cluster: boolean;
  /** Where they connect: for more clients (BullMQ's). */
  target: RedisTarget;
  /** How they connect and time out: for more clients. */
  timeouts: RedisTimeouts;
  /** Whether every connection is up and answered lately (the health probe). */
  isUp(): boolean;
  /** `ready`, `unready` (a connection dropped or answers slowly), `lost` (silent for the limit). */
  linkState(): LinkState;
  /** Called when the link state changes. */
  onLinkState(listener: (state: LinkState) => void): void;
  close(): Promise<void>;
}

export interface RedisTimeouts {
  /** A connection that answers nothing this long is destroyed and reconnected, and counts as lost (ms). */
  silentMs: number;
  /** A command without a reply this long fails (ms). */
  commandTimeoutMs: number;
}

export const DEFAULT_TIMEOUTS: RedisTimeouts = Object.freeze({ silentMs: 5000, commandTimeoutMs: 2000 });

/** The Redis timeouts of a replica or a worker. */
export function redisTimeoutsOf(config: Config): RedisTimeouts {
  return { silentMs: config.redisSilentS * 1000, commandTimeoutMs: config.redisCommandTimeoutMs };
}

export type { RedisTarget };

export class RedisUnavailableError extends Error {
  override name = "RedisUnavailableError";
}

const UNAVAILABLE =
  /Connection is closed|Stream isn't writeable|Command timed out|Socket timeout|CLUSTERDOWN|TRYAGAIN|LOADING|READONLY|MASTERDOWN|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|redirections|Cluster is ended|Failed to refresh slots|No sharded subscriber|All channels must hash/;

/**
 * Whether an error means Redis (or the Redis Cluster shard) could not be reached or was
 * failing over, as opposed to a bug: the caller answers `unavailable` (503), and the client
 * retries.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (["MaxRetriesPerRequestError", "ClusterAllFailedError", "AbortError"].includes(err.name)) return true;
  return UNAVAILABLE.test(err.message);
}

/**
 * Whether an unexpected failure is Redis being away or failing over (answered 4503
 * unavailable, the client retries) rather than a bug (4500). Client-facing refusals
 * (RoomcastError) are never reclassified.
 */
export function failedBecauseRedis(err: unknown, redisUp: boolean): boolean {
  return !(err instanceof RoomcastError) && (!redisUp || isRedisUnavailable(err));
}

function waitReady(client: RedisClient, url: string, timeoutMs: number): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new RedisUnavailableError(
          `Redis unreachable at ${redactUrl(url)} (REDIS_URL; no answer within ${timeoutMs} ms)`,
        ),
      );
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      client.off("ready", onReady);
    };
    client.on("ready", onReady);
  });
}

/**
 * BullMQ's workers need the opposite of our fail-fast defaults: commands wait (and blocking
 * ones are resent) across a Redis reconnect.
 */
export const WAIT_FOR_REDIS: Partial<RedisOptions> = {
  maxRetriesPerRequest: null,
  enableOfflineQueue: true,
  autoResendUnfulfilledCommands: true,
};

/** For connections without blocking commands: a silent link fails commands and is reconnected. */
export function failFastOptions(timeouts: RedisTimeouts): Partial<RedisOptions> {
  return {
    // No reply this long: the command fails (503), instead of requests piling up behind it.
    commandTimeout: timeouts.commandTimeoutMs,
    // No data this long while a command waits (the health probe sends one each second): the
    // socket is destroyed and the retry strategy reconnects, so a half-open link heals itself.
    socketTimeout: timeouts.silentMs,
    connectTimeout: timeouts.silentMs,
  };
}

export function createRedis(
  target: RedisTarget,
  log: Logger,
  role: string,
  overrides: Partial<RedisOptions> = {},
): RedisClient {
  const options: RedisOptions = {
    connectionName: `roomcast-${role}`,
    // Fail fast while Redis is away (the caller answers 503), and never resend a publish
    // script whose reply was lost: it may have run, and running it twice would publish twice.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (times) => Math.min(100 * times, 2000),
    // The command client: commands issued in one tick (quota checks of a burst of handshakes,
    // publishes) go out in one write, fewer syscalls; order is kept. Not for pub/sub or BullMQ.
    enableAutoPipelining: role === "commands",
    ...overrides,
  };
  const client: RedisClient = target.cluster
    ? new Cluster(target.seeds, {
        redisOptions: {
          ...options,
          username: target.username,
          password: target.password,
          ...(target.tls ? { tls: {} } : {}),
        },
        enableOfflineQueue: options.enableOfflineQueue ?? false,
        enableAutoPipelining: options.enableAutoPipelining ?? false,
        // Sharded pub/sub (SSUBSCRIBE) goes to the shard that owns each channel's slot.
        shardedSubscribers: role === "subscriber",
        clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        slotsRefreshTimeout: 2000,
      })
    : new Redis(target.url, options);
  let lastError = "";
  client.on("error", (err: Error) => {
    // One line per distinct error, not one per retry.
    if (err.message !== lastError) log.warn({ role, err: err.message }, "redis error");
    lastError = err.message;
  });
  client.on("ready", () => {
    if (lastError) log.info({ role }, "redis connection restored");
    lastError = "";
  });
  return client;
}

export async function connectRedis(
  url: string,
  log: Logger,
  timeouts: RedisTimeouts = DEFAULT_TIMEOUTS,
  startTimeoutMs = 5000,
): Promise<RedisClients> {
  const target = parseRedisUrl(url);
  const commands = createRedis(target, log, "commands", failFastOptions(timeouts));
  const subscriber = createRedis(target, log, "subscriber", failFastOptions(timeouts));
  try {
    await Promise.all([waitReady(commands, url, startTimeoutMs), waitReady(subscriber, url, startTimeoutMs)]);
  } catch (err) {
    commands.disconnect();
    subscriber.disconnect();
    throw err;
  }
  const health = new RedisHealth(
    [
      { client: commands, role: "commands" },
      { client: subscriber, role: "subscriber" },
    ],
    { silentMs: timeouts.silentMs, log: log.child({ module: "redis-health" }) },
  );
  return {
    commands,
    subscriber,
    cluster: target.cluster,
    target,
    timeouts,
    isUp: () => commands.status === "ready" && subscriber.status === "ready" && health.state() === "ready",
    linkState: () => health.state(),
    onLinkState: (listener) => health.onChange(listener),
    close: async () => {
      health.close();
      await Promise.allSettled([commands.quit(), subscriber.quit()]);
      commands.disconnect();
      subscriber.disconnect();
    },
  };
}

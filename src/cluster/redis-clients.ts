/**
 * Redis connections of a replica: `commands` (scripts, reads; the adapter publishes on it
 * too) and `subscriber` (the adapter's pub/sub). Start-up waits until both are ready, or
 * fails with one line; afterwards commands fail fast while Redis is away, so that a
 * publish is refused (503), never silently queued.
 */
import { Redis } from "ioredis";
import type { Logger } from "pino";

export interface RedisClients {
  commands: Redis;
  subscriber: Redis;
  isUp(): boolean;
  close(): Promise<void>;
}

export class RedisUnavailableError extends Error {
  override name = "RedisUnavailableError";
}

function waitReady(client: Redis, url: string, timeoutMs: number): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new RedisUnavailableError(`Redis unreachable at ${redactUrl(url)} (REDIS_URL; no answer within ${timeoutMs} ms)`));
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

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, "//[redacted]@");
}

export function createRedis(url: string, log: Logger, role: string): Redis {
  const client = new Redis(url, {
    connectionName: `roomcast-${role}`,
    // Fail fast while Redis is away (the caller answers 503), and never resend a publish
    // script whose reply was lost: it may have run, and running it twice would publish twice.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (times) => Math.min(100 * times, 2000),
  });
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

export async function connectRedis(url: string, log: Logger, timeoutMs = 5000): Promise<RedisClients> {
  const commands = createRedis(url, log, "commands");
  const subscriber = createRedis(url, log, "subscriber");
  try {
    await Promise.all([waitReady(commands, url, timeoutMs), waitReady(subscriber, url, timeoutMs)]);
  } catch (err) {
    commands.disconnect();
    subscriber.disconnect();
    throw err;
  }
  return {
    commands,
    subscriber,
    isUp: () => commands.status === "ready" && subscriber.status === "ready",
    close: async () => {
      await Promise.allSettled([commands.quit(), subscriber.quit()]);
      commands.disconnect();
      subscriber.disconnect();
    },
  };
}

/**
 * Notices a silent Redis link. A partition or a half-open TCP connection gives no error and
 * no answer: ioredis keeps its status `ready` and every command waits. So every connection
 * a process relies on (commands and pub/sub; on a Redis Cluster every master's command
 * connection and every sharded subscriber) gets a PING each second; the link is healthy
 * while each of them answered within `silentMs`. ioredis's `socketTimeout` (set to the
 * same value in createRedis) destroys a connection that stays silent that long, and its
 * retry strategy reconnects and resubscribes by itself when the link heals.
 */
import { Cluster, type Redis } from "ioredis";
import type { Logger } from "pino";
import type { RedisClient } from "./redis-clients.js";

const PROBE_MS = 1000;

/** The sharded subscribers of an ioredis Cluster: internal fields, held by test/unit/redis-health.test.ts. */
interface ClusterInternals {
  shardedSubscribers?: { shardedSubscribers?: Map<string, { getInstance(): Redis | null }> };
  subscriber?: { getInstance(): Redis | null };
}

/** The single connections behind a client: itself, or a Cluster's masters and subscribers. */
export function connectionsOf(client: RedisClient, role: "commands" | "subscriber"): Redis[] {
  if (!(client instanceof Cluster)) return [client];
  if (role === "commands") return client.nodes("master");
  const internals = client as unknown as ClusterInternals;
  const connections: Redis[] = [];
  for (const sharded of internals.shardedSubscribers?.shardedSubscribers?.values() ?? []) {
    const instance = sharded.getInstance();
    if (instance) connections.push(instance);
  }
  const classic = internals.subscriber?.getInstance();
  // The classic cluster subscriber connects lazily: probe it only once something subscribed on it.
  if (classic && classic.status !== "wait") connections.push(classic);
  return connections;
}

export interface RedisHealthOptions {
  /** A connection silent this long counts as lost (ms). */
  silentMs: number;
  log: Logger;
  probeMs?: number;
}

/**
 * `ready`: every connection is connected and answered lately. `unready`: one is reconnecting
 * or has not answered for a moment. `lost`: one has answered nothing for `silentMs`.
 */
export type LinkState = "ready" | "unready" | "lost";

export class RedisHealth {
  /** When each connection last answered a probe (ms); from when it was first seen until its first answer. */
  private readonly answeredAt = new WeakMap<Redis, number>();
  /** Connections that answered at least once: only those count as dropped while they reconnect. */
  private readonly answered = new WeakSet<Redis>();
  private readonly probing = new WeakSet<Redis>();
  private readonly timer: NodeJS.Timeout;
  private readonly listeners: ((state: LinkState) => void)[] = [];
  private current: LinkState = "ready";
  /** The connections of the last probe. */
  private watched: Redis[] = [];

  constructor(
    private readonly clients: readonly { client: RedisClient; role: "commands" | "subscriber" }[],
    private readonly options: RedisHealthOptions,
  ) {
    this.timer = setInterval(() => this.probe(), options.probeMs ?? PROBE_MS);
    this.timer.unref();
    this.probe();
  }

  /** The state of the last probe, or `unready` as soon as a connection dropped since. */
  state(): LinkState {
    if (this.current === "ready" && this.watched.some((c) => c.status !== "ready" && this.answered.has(c)))
      return "unready";
    return this.current;
  }

  /** Called on every change, with the new state. */
  onChange(listener: (state: LinkState) => void): void {
    this.listeners.push(listener);
  }

  private connections(): Redis[] {
    return this.clients.flatMap(({ client, role }) => connectionsOf(client, role));
  }

  private probe(): void {
    const now = Date.now();
    let state: LinkState = "ready";
    this.watched = this.connections();
    for (const connection of this.watched) {
      // A Cluster connects to a node (or a shard's subscriber) only once something is sent
      // there: one never used yet is idle on purpose, not silent.
      if (connection.status === "wait" || !this.answeredAt.has(connection)) this.answeredAt.set(connection, now);
      if (connection.status === "wait") continue;
      const silentFor = now - this.answeredAt.get(connection)!;
      // A connection still starting (a Cluster node or shard subscriber used for the first
      // time) is not a dropped one; it only counts once it stays silent past the limit.
      const starting = !this.answered.has(connection);
      if (silentFor > this.options.silentMs) state = "lost";
      else if (state === "ready" && !starting && (connection.status !== "ready" || silentFor > PROBE_MS * 2))
        state = "unready";
      if (connection.status !== "ready" || this.probing.has(connection)) continue;
      this.probing.add(connection);
      connection.ping().then(
        () => {
          this.probing.delete(connection);
          this.answeredAt.set(connection, Date.now());
          this.answered.add(connection);
        },
        () => this.probing.delete(connection),
      );
    }
    this.update(state);
  }

  private update(state: LinkState): void {
    if (state === this.current) return;
    const before = this.current;
    this.current = state;
    if (state === "ready") this.options.log.info({ before }, "Redis link healthy again");
    else if (state === "lost")
      this.options.log.warn({ silentMs: this.options.silentMs }, "Redis link lost: no answer within the silence limit");
    for (const listener of this.listeners) listener(state);
  }

  close(): void {
    clearInterval(this.timer);
  }
}

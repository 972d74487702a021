/**
 * Every metric of a gateway replica and of a worker, declared once: `roomcast_` prefix,
 * `_total` and `_seconds` suffixes, bounded labels only (namespace, reason, event, outcome,
 * transport, processor, state, node; never a channel, user or job id). Node's defaults
 * (event loop lag, heap, GC) too.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { WEBHOOK_EVENTS } from "../contracts/webhooks.js";

export type RedisOperation = "publish" | "read" | "quota";

/** What the publish path (ChannelStore) records, on gateways and workers alike. */
export interface PublishPathMetrics {
  published: Counter<"namespace">;
  /** Times a Redis call for the Redis latency and error metrics. */
  timeRedis<T>(operation: RedisOperation, call: () => Promise<T>): Promise<T>;
}

export interface GatewayMetrics extends PublishPathMetrics {
  registry: Registry;
  connectionAttempts: Counter;
  connectionRefusals: Counter<"reason">;
  requests: Counter<"event" | "outcome">;
  delivered: Counter<"namespace">;
  deliveryLatency: Histogram;
  fanout: Histogram;
  recoveries: Counter<"outcome">;
  lagNotices: Counter;
  slowConsumerDisconnects: Counter;
  rateLimited: Counter<"kind">;
  draining: Gauge;
  drainRemaining: Gauge;
  /** New Engine.IO sessions refused at the handshake, by reason (unavailable, unauthenticated_ip, unauthenticated_node). */
  gateRefusals: Counter<"reason">;
  /** Clients moved off this replica because its Redis link was lost. */
  redisLinkMoves: Counter;
  httpRequests: Counter<"route" | "status">;
  httpDuration: Histogram<"route">;
  /** Users per channel, observed as this replica renews its connections' presence there. */
  presenceUsers: Histogram;
  /** Joins and leaves this replica announced (a user's first connection came, its last one went). */
  presenceChanges: Counter<"action">;
}

export interface LiveCounts {
  /** Whether this replica's Redis connections are up. */
  redisUp(): boolean;
  /** Connections by transport ("websocket", "polling"). */
  connectionsByTransport(): Map<string, number>;
  /** Subscriptions by namespace. */
  subscriptionsByNamespace(): Map<string, number>;
  /** Engine.IO sessions that have not completed the Socket.IO CONNECT yet. */
  unauthenticatedSessions(): number;
  /** Channels with presence this replica renews, and its connections present on them. */
  presence(): { channels: number; connections: number };
}

/** Label values known up front: their series exist from the start (at 0), so rate() sees the first burst. */
export interface KnownLabels {
  namespaces: readonly string[];
  events: readonly string[];
}

const TRANSPORTS = ["websocket", "polling"];
const REFUSAL_REASONS = ["unauthorized", "forbidden", "too_many_connections", "unavailable", "internal"];
const REDIS_OPERATIONS: RedisOperation[] = ["publish", "read", "quota"];

/** A registry with the node label and Node's default metrics. */
function newRegistry(nodeId: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ node: nodeId });
  collectDefaultMetrics({ register: registry, prefix: "roomcast_" });
  return registry;
}

/** roomcast_redis_up, Redis latency and errors, and events published: on gateways and workers. */
function publishPathMetrics(
  registers: Registry[],
  namespaces: readonly string[],
  redisUp: () => boolean,
): PublishPathMetrics {
  new Gauge({
    name: "roomcast_redis_up",
    help: "1 while this process's Redis connections are up.",
    registers,
    collect() {
      this.set(redisUp() ? 1 : 0);
    },
  });
  const redisDuration = new Histogram({
    name: "roomcast_redis_command_duration_seconds",
    help: "Latency of the Redis scripts and commands of the publish path, history and quotas.",
    labelNames: ["operation"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers,
  });
  const redisErrors = new Counter({
    name: "roomcast_redis_errors_total",
    help: "Redis calls that failed, by operation.",
    labelNames: ["operation"],
    registers,
  });
  const published = new Counter({
    name: "roomcast_events_published_total",
    help: "Events published through this process, by namespace.",
    labelNames: ["namespace"],
    registers,
  });
  for (const operation of REDIS_OPERATIONS) {
    redisErrors.inc({ operation }, 0);
    redisDuration.zero({ operation });
  }
  for (const namespace of namespaces) published.inc({ namespace }, 0);
  return {
    published,
    async timeRedis(operation, call) {
      const end = redisDuration.startTimer({ operation });
      try {
        return await call();
      } catch (err) {
        redisErrors.inc({ operation });
        throw err;
      } finally {
        end();
      }
    },
  };
}

export function createMetrics(nodeId: string, live: LiveCounts, known: KnownLabels): GatewayMetrics {
  const registry = newRegistry(nodeId);
  const registers = [registry];

  new Gauge({
    name: "roomcast_connections",
    help: "Connected clients on this replica, by transport.",
    labelNames: ["transport"],
    registers,
    collect() {
      this.reset();
      for (const transport of TRANSPORTS) this.set({ transport }, 0);
      for (const [transport, n] of live.connectionsByTransport()) this.set({ transport }, n);
    },
  });
  new Gauge({
    name: "roomcast_subscriptions",
    help: "Channel subscriptions on this replica, by namespace.",
    labelNames: ["namespace"],
    registers,
    collect() {
      this.reset();
      for (const namespace of known.namespaces) this.set({ namespace }, 0);
      for (const [namespace, n] of live.subscriptionsByNamespace()) this.set({ namespace }, n);
    },
  });
  new Gauge({
    name: "roomcast_unauthenticated_sessions",
    help: "Engine.IO sessions on this replica that have not completed the Socket.IO CONNECT (authentication) yet.",
    registers,
    collect() {
      this.set(live.unauthenticatedSessions());
    },
  });
  new Gauge({
    name: "roomcast_presence_channels",
    help: "Channels with presence on which this replica has connections (and renews their leases).",
    registers,
    collect() {
      this.set(live.presence().channels);
    },
  });
  new Gauge({
    name: "roomcast_presence_connections",
    help: "This replica's connections present on channels (one per connection and channel).",
    registers,
    collect() {
      this.set(live.presence().connections);
    },
  });
  const publishPath = publishPathMetrics(registers, known.namespaces, live.redisUp);

  const metrics: GatewayMetrics = {
    ...publishPath,
    registry,
    connectionAttempts: new Counter({
      name: "roomcast_connection_attempts_total",
      help: "Handshakes started: Socket.IO CONNECTs, and new Engine.IO sessions refused at the handshake gate.",
      registers,
    }),
    connectionRefusals: new Counter({
      name: "roomcast_connection_refusals_total",
      help: "Handshakes refused, by reason.",
      labelNames: ["reason"],
      registers,
    }),
    requests: new Counter({
      name: "roomcast_requests_total",
      help: "Client requests, by event and outcome (ok or the error reason).",
      labelNames: ["event", "outcome"],
      registers,
    }),
    delivered: new Counter({
      name: "roomcast_events_delivered_total",
      help: "Event deliveries written to clients on this replica, by namespace.",
      labelNames: ["namespace"],
      registers,
    }),
    deliveryLatency: new Histogram({
      name: "roomcast_delivery_latency_seconds",
      help: "From publish time to the write to the subscribers' sockets on this replica.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    fanout: new Histogram({
      name: "roomcast_broadcast_fanout",
      help: "Local subscribers an event was written to, per event on this replica.",
      buckets: [1, 2, 5, 10, 50, 100, 500, 1000, 5000, 20000],
      registers,
    }),
    recoveries: new Counter({
      name: "roomcast_recoveries_total",
      help: "Subscribes with since, by outcome (recovered, not_recovered).",
      labelNames: ["outcome"],
      registers,
    }),
    lagNotices: new Counter({
      name: "roomcast_lag_notices_total",
      help: "lag notices sent (conflated or unfillable gaps).",
      registers,
    }),
    slowConsumerDisconnects: new Counter({
      name: "roomcast_slow_consumer_disconnects_total",
      help: "Clients closed with 4008 slow_consumer.",
      registers,
    }),
    rateLimited: new Counter({
      name: "roomcast_rate_limited_total",
      help: "Requests refused by a rate limit, by kind (socket, http, abuse_close).",
      labelNames: ["kind"],
      registers,
    }),
    draining: new Gauge({ name: "roomcast_draining", help: "1 while this replica drains for shutdown.", registers }),
    drainRemaining: new Gauge({
      name: "roomcast_drain_remaining_connections",
      help: "Connections still to be moved away by the drain.",
      registers,
    }),
    gateRefusals: new Counter({
      name: "roomcast_handshake_gate_refusals_total",
      help: "New Engine.IO sessions refused at the handshake (HTTP 503/429), by reason: unavailable (draining or Redis lost), unauthenticated_ip, unauthenticated_node.",
      labelNames: ["reason"],
      registers,
    }),
    redisLinkMoves: new Counter({
      name: "roomcast_redis_link_moves_total",
      help: "Clients moved off this replica (closing 4503 unavailable) because its Redis link was lost.",
      registers,
    }),
    httpRequests: new Counter({
      name: "roomcast_http_requests_total",
      help: "HTTP API requests, by route pattern and status.",
      labelNames: ["route", "status"],
      registers,
    }),
    httpDuration: new Histogram({
      name: "roomcast_http_request_duration_seconds",
      help: "HTTP API request latency, by route pattern.",
      labelNames: ["route"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    presenceUsers: new Histogram({
      name: "roomcast_presence_channel_users",
      help: "Users present on a channel, observed each time this replica renews its connections there.",
      buckets: [1, 2, 5, 10, 50, 100, 500, 1000, 5000, 20000, 100000],
      registers,
    }),
    presenceChanges: new Counter({
      name: "roomcast_presence_changes_total",
      help: "Presence joins and leaves this replica announced (a user's first connection on a channel came, its last one went), by action.",
      labelNames: ["action"],
      registers,
    }),
  };
  for (const action of ["join", "leave"]) metrics.presenceChanges.inc({ action }, 0);
  for (const reason of REFUSAL_REASONS) metrics.connectionRefusals.inc({ reason }, 0);
  for (const event of known.events) metrics.requests.inc({ event, outcome: "ok" }, 0);
  for (const namespace of known.namespaces) metrics.delivered.inc({ namespace }, 0);
  for (const outcome of ["recovered", "not_recovered"]) metrics.recoveries.inc({ outcome }, 0);
  for (const kind of ["socket", "http", "abuse_close"]) metrics.rateLimited.inc({ kind }, 0);
  for (const reason of ["unavailable", "unauthenticated_ip", "unauthenticated_node"])
    metrics.gateRefusals.inc({ reason }, 0);
  return metrics;
}

/** How an attempt of a job ended. */
export type AttemptOutcome = "completed" | "failed" | "retried" | "cancelled" | "requeued";
const ATTEMPT_OUTCOMES: AttemptOutcome[] = ["completed", "failed", "retried", "cancelled", "requeued"];
export const QUEUE_STATES = ["waiting", "active", "delayed", "prioritized", "completed", "failed"] as const;

export interface WorkerMetrics extends PublishPathMetrics {
  registry: Registry;
  attempts: Counter<"processor" | "outcome">;
  attemptDuration: Histogram<"processor" | "outcome">;
  logLines: Counter<"processor">;
  stalled: Counter;
  publishRetries: Counter;
  /** Webhook POSTs, by event and outcome (delivered: a 2xx; failed: retried later). */
  webhooks: Counter<"event" | "outcome">;
  webhookDuration: Histogram;
}

export interface WorkerLiveCounts {
  redisUp(): boolean;
  /** Attempts running now, by processor. */
  running(): Map<string, number>;
  /** Jobs of the queue per BullMQ state (queue-wide: every worker reports the same). */
  queueCounts(): Promise<Partial<Record<(typeof QUEUE_STATES)[number], number>>>;
}

export function createWorkerMetrics(
  nodeId: string,
  live: WorkerLiveCounts,
  known: { processors: readonly string[]; namespaces: readonly string[] },
): WorkerMetrics {
  const registry = newRegistry(nodeId);
  const registers = [registry];
  new Gauge({
    name: "roomcast_jobs_running",
    help: "Job attempts running on this worker, by processor.",
    labelNames: ["processor"],
    registers,
    collect() {
      this.reset();
      for (const processor of known.processors) this.set({ processor }, 0);
      for (const [processor, n] of live.running()) this.set({ processor }, n);
    },
  });
  new Gauge({
    name: "roomcast_queue_jobs",
    help: "Jobs in the queue, by BullMQ state (queue-wide: every worker reports the same numbers; use max).",
    labelNames: ["state"],
    registers,
    async collect() {
      // A scrape while Redis is away still answers, without these numbers.
      const counts = await live.queueCounts().catch(() => undefined);
      this.reset();
      if (!counts) return;
      for (const state of QUEUE_STATES) this.set({ state }, counts[state] ?? 0);
    },
  });
  const metrics: WorkerMetrics = {
    ...publishPathMetrics(registers, known.namespaces, live.redisUp),
    registry,
    attempts: new Counter({
      name: "roomcast_job_attempts_total",
      help: "Job attempts ended on this worker, by processor and outcome (completed, failed: final, retried: another attempt follows, cancelled, requeued: the worker shut down).",
      labelNames: ["processor", "outcome"],
      registers,
    }),
    attemptDuration: new Histogram({
      name: "roomcast_job_attempt_duration_seconds",
      help: "How long job attempts ran, by processor and outcome.",
      labelNames: ["processor", "outcome"],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    }),
    logLines: new Counter({
      name: "roomcast_job_log_lines_total",
      help: "Log lines published by jobs on this worker, by processor.",
      labelNames: ["processor"],
      registers,
    }),
    stalled: new Counter({
      name: "roomcast_jobs_stalled_total",
      help: "Jobs this worker found stalled (their worker stopped) and put back in the queue.",
      registers,
    }),
    publishRetries: new Counter({
      name: "roomcast_job_publish_retries_total",
      help: "Job channel publishes retried after a failure (Redis away).",
      registers,
    }),
    webhooks: new Counter({
      name: "roomcast_webhook_deliveries_total",
      help: "Presence webhook POSTs from this worker, by event and outcome (delivered: a 2xx; failed: retried with backoff).",
      labelNames: ["event", "outcome"],
      registers,
    }),
    webhookDuration: new Histogram({
      name: "roomcast_webhook_duration_seconds",
      help: "How long webhook receivers took to answer.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
  for (const event of WEBHOOK_EVENTS)
    for (const outcome of ["delivered", "failed"]) metrics.webhooks.inc({ event, outcome }, 0);
  for (const processor of known.processors) {
    metrics.logLines.inc({ processor }, 0);
    for (const outcome of ATTEMPT_OUTCOMES) {
      metrics.attempts.inc({ processor, outcome }, 0);
      metrics.attemptDuration.zero({ processor, outcome });
    }
  }
  return metrics;
}

/**
 * Every metric of a gateway replica, declared once: `roomcast_` prefix, `_total` and
 * `_seconds` suffixes, bounded labels only (namespace, reason, event, outcome, transport,
 * node; never a channel, user or job id). Node's defaults (event loop lag, heap, GC) too.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export type RedisOperation = "publish" | "read" | "quota";

export interface GatewayMetrics {
  registry: Registry;
  connectionAttempts: Counter;
  connectionRefusals: Counter<"reason">;
  requests: Counter<"event" | "outcome">;
  published: Counter<"namespace">;
  delivered: Counter<"namespace">;
  deliveryLatency: Histogram;
  fanout: Histogram;
  recoveries: Counter<"outcome">;
  lagNotices: Counter;
  slowConsumerDisconnects: Counter;
  rateLimited: Counter<"kind">;
  redisDuration: Histogram<"operation">;
  redisErrors: Counter<"operation">;
  draining: Gauge;
  drainRemaining: Gauge;
  httpRequests: Counter<"route" | "status">;
  httpDuration: Histogram<"route">;
  /** Times a Redis call for the Redis latency and error metrics. */
  timeRedis<T>(operation: RedisOperation, call: () => Promise<T>): Promise<T>;
}

export interface LiveCounts {
  /** Whether this replica's Redis connections are up. */
  redisUp(): boolean;
  /** Connections by transport ("websocket", "polling"). */
  connectionsByTransport(): Map<string, number>;
  /** Subscriptions by namespace. */
  subscriptionsByNamespace(): Map<string, number>;
}

/** Label values known up front: their series exist from the start (at 0), so rate() sees the first burst. */
export interface KnownLabels {
  namespaces: readonly string[];
  events: readonly string[];
}

const TRANSPORTS = ["websocket", "polling"];
const REFUSAL_REASONS = ["unauthorized", "forbidden", "too_many_connections", "unavailable", "internal"];
const REDIS_OPERATIONS: RedisOperation[] = ["publish", "read", "quota"];

export function createMetrics(nodeId: string, live: LiveCounts, known: KnownLabels): GatewayMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: nodeId });
  collectDefaultMetrics({ register: registry, prefix: "roomcast_" });
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
    name: "roomcast_redis_up",
    help: "1 while this replica's Redis connections are up.",
    registers,
    collect() {
      this.set(live.redisUp() ? 1 : 0);
    },
  });

  const redisDuration = new Histogram({
    name: "roomcast_redis_command_duration_seconds",
    help: "Latency of the Redis scripts and commands of the publish path, history and quotas.",
    labelNames: ["operation"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers,
  });
  const redisErrors = new Counter({ name: "roomcast_redis_errors_total", help: "Redis calls that failed, by operation.", labelNames: ["operation"], registers });

  const metrics: GatewayMetrics = {
    registry,
    connectionAttempts: new Counter({ name: "roomcast_connection_attempts_total", help: "Socket.IO handshakes started.", registers }),
    connectionRefusals: new Counter({ name: "roomcast_connection_refusals_total", help: "Handshakes refused, by reason.", labelNames: ["reason"], registers }),
    requests: new Counter({ name: "roomcast_requests_total", help: "Client requests, by event and outcome (ok or the error reason).", labelNames: ["event", "outcome"], registers }),
    published: new Counter({ name: "roomcast_events_published_total", help: "Events published through this replica, by namespace.", labelNames: ["namespace"], registers }),
    delivered: new Counter({ name: "roomcast_events_delivered_total", help: "Event deliveries written to clients on this replica, by namespace.", labelNames: ["namespace"], registers }),
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
    recoveries: new Counter({ name: "roomcast_recoveries_total", help: "Subscribes with since, by outcome (recovered, not_recovered).", labelNames: ["outcome"], registers }),
    lagNotices: new Counter({ name: "roomcast_lag_notices_total", help: "lag notices sent (conflated or unfillable gaps).", registers }),
    slowConsumerDisconnects: new Counter({ name: "roomcast_slow_consumer_disconnects_total", help: "Clients closed with 4008 slow_consumer.", registers }),
    rateLimited: new Counter({ name: "roomcast_rate_limited_total", help: "Requests refused by a rate limit, by kind (socket, http, abuse_close).", labelNames: ["kind"], registers }),
    redisDuration,
    redisErrors,
    draining: new Gauge({ name: "roomcast_draining", help: "1 while this replica drains for shutdown.", registers }),
    drainRemaining: new Gauge({ name: "roomcast_drain_remaining_connections", help: "Connections still to be moved away by the drain.", registers }),
    httpRequests: new Counter({ name: "roomcast_http_requests_total", help: "HTTP API requests, by route pattern and status.", labelNames: ["route", "status"], registers }),
    httpDuration: new Histogram({
      name: "roomcast_http_request_duration_seconds",
      help: "HTTP API request latency, by route pattern.",
      labelNames: ["route"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
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
  for (const reason of REFUSAL_REASONS) metrics.connectionRefusals.inc({ reason }, 0);
  for (const event of known.events) metrics.requests.inc({ event, outcome: "ok" }, 0);
  for (const namespace of known.namespaces) {
    metrics.published.inc({ namespace }, 0);
    metrics.delivered.inc({ namespace }, 0);
  }
  for (const outcome of ["recovered", "not_recovered"]) metrics.recoveries.inc({ outcome }, 0);
  for (const kind of ["socket", "http", "abuse_close"]) metrics.rateLimited.inc({ kind }, 0);
  for (const operation of REDIS_OPERATIONS) {
    metrics.redisErrors.inc({ operation }, 0);
    metrics.redisDuration.zero({ operation });
  }
  return metrics;
}

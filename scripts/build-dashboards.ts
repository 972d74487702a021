/**
 * The Grafana dashboards of grafana/dashboards/, generated from the short specs below so that
 * every panel has the same datasource, variables and layout rules. Regenerate after editing:
 *
 *     npx tsx scripts/build-dashboards.ts
 *
 * test/integration/observability.test.ts fails when the committed JSON differs from this
 * output, and runs every expression below against a real Prometheus scraping real gateways.
 * Metric names come from src/metrics/metrics.ts (and prom-client's Node defaults, with the
 * `roomcast_` prefix); every series carries `node`. Do not add panels for metrics that do not
 * exist. The Jobs dashboard picks workers (nodes with roomcast_jobs_running), the others pick
 * gateway replicas (nodes with roomcast_connections).
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The datasource of every panel and query: the dashboard's datasource variable. */
const DATASOURCE = { type: "prometheus", uid: "${DS_PROMETHEUS}" } as const;
/** Label matcher for the replica picker. */
const N = 'node=~"$node"';

export interface Target {
  expr: string;
  legend: string;
}

export interface PanelSpec {
  title: string;
  description: string;
  type?: "timeseries" | "stat" | "heatmap";
  unit?: string;
  targets: Target[];
  /** Width in grid units (24 across); default 12 (stat: 4). */
  w?: number;
  /** Height; default 8 (stat: 4). */
  h?: number;
  /** Stacked areas (for parts of a whole). */
  stack?: boolean;
  min?: number;
  max?: number;
}

export interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

export interface DashboardSpec {
  file: string;
  uid: string;
  title: string;
  description: string;
  /** What the node picker lists: gateway replicas (default) or workers. */
  nodes?: "gateways" | "workers";
  rows: RowSpec[];
}

/** The metric whose `node` values the picker lists, and its label. */
export const NODE_VARIABLE = {
  gateways: { metric: "roomcast_connections", label: "Replica" },
  workers: { metric: "roomcast_jobs_running", label: "Worker" },
} as const;

const rate = (metric: string, extra = "") => `rate(${metric}{${N}${extra}}[$__rate_interval])`;
const sumRate = (by: string, metric: string, extra = "") => `sum${by ? ` by (${by})` : ""} (${rate(metric, extra)})`;
const quantile = (q: number, histogram: string, by = "") =>
  `histogram_quantile(${q}, sum by (${by ? `${by}, ` : ""}le) (${rate(`${histogram}_bucket`)}))`;

const LIMIT_OUTCOMES = 'outcome=~"rate_limited|too_large|too_many_.*"';

const OVERVIEW: DashboardSpec = {
  file: "roomcast-overview.json",
  uid: "roomcast-overview",
  title: "roomcast / Overview",
  description:
    "Gateway replicas at a glance: connections, handshakes, requests, events published and delivered, delivery latency, Redis latency and the Node runtime. Metrics: src/metrics/metrics.ts.",
  rows: [
    {
      title: "At a glance",
      panels: [
        {
          type: "stat",
          title: "Replicas",
          description:
            "Gateway replicas whose /metrics Prometheus scraped (by their node label; workers are on the Jobs dashboard).",
          targets: [{ expr: `count(count by (node) (roomcast_connections{${N}}))`, legend: "replicas" }],
        },
        {
          type: "stat",
          title: "Connections",
          description: "Connected clients, all transports.",
          targets: [{ expr: `sum(roomcast_connections{${N}})`, legend: "connections" }],
        },
        {
          type: "stat",
          title: "Subscriptions",
          description: "Channel subscriptions, all namespaces.",
          targets: [{ expr: `sum(roomcast_subscriptions{${N}})`, legend: "subscriptions" }],
        },
        {
          type: "stat",
          title: "Published / s",
          unit: "ops",
          description:
            "Events entering channels through these replicas (HTTP and client publishes; idempotent repeats not counted).",
          targets: [{ expr: sumRate("", "roomcast_events_published_total"), legend: "published" }],
        },
        {
          type: "stat",
          title: "Delivered / s",
          unit: "ops",
          description: "Event deliveries written to client sockets.",
          targets: [{ expr: sumRate("", "roomcast_events_delivered_total"), legend: "delivered" }],
        },
        {
          type: "stat",
          title: "Delivery latency p99",
          unit: "s",
          description: "99th percentile from publish time to the write to the subscribers' sockets.",
          targets: [{ expr: quantile(0.99, "roomcast_delivery_latency_seconds"), legend: "p99" }],
        },
      ],
    },
    {
      title: "Connections",
      panels: [
        {
          title: "Connections by node and transport",
          description:
            "Connected clients per replica, by Engine.IO transport (websocket, polling). A replica with no connection has no series.",
          stack: true,
          targets: [
            { expr: `sum by (node, transport) (roomcast_connections{${N}})`, legend: "{{node}} {{transport}}" },
          ],
        },
        {
          title: "Connection attempts and refusals",
          unit: "ops",
          description:
            "Socket.IO handshakes started, and those refused by reason (unauthorized, forbidden, too_many_connections, unavailable: Redis down or draining).",
          targets: [
            { expr: sumRate("", "roomcast_connection_attempts_total"), legend: "attempts" },
            { expr: sumRate("reason", "roomcast_connection_refusals_total"), legend: "refused: {{reason}}" },
          ],
        },
      ],
    },
    {
      title: "Requests and events",
      panels: [
        {
          title: "Requests by event and outcome",
          unit: "reqps",
          description:
            "Client requests (subscribe, unsubscribe, publish, control, refresh, unknown) by outcome: ok or the error reason.",
          targets: [{ expr: sumRate("event, outcome", "roomcast_requests_total"), legend: "{{event}} {{outcome}}" }],
        },
        {
          title: "Events published and delivered",
          unit: "ops",
          description:
            "Events published through these replicas, and deliveries written to their clients (one per subscriber).",
          targets: [
            { expr: sumRate("", "roomcast_events_published_total"), legend: "published" },
            { expr: sumRate("", "roomcast_events_delivered_total"), legend: "delivered" },
          ],
        },
        {
          title: "Delivery latency",
          unit: "s",
          description:
            "From publish time (the event's ts, set by the publishing replica) to the write to the subscribers' sockets, p50, p90, p99.",
          targets: [
            { expr: quantile(0.5, "roomcast_delivery_latency_seconds"), legend: "p50" },
            { expr: quantile(0.9, "roomcast_delivery_latency_seconds"), legend: "p90" },
            { expr: quantile(0.99, "roomcast_delivery_latency_seconds"), legend: "p99" },
          ],
        },
        {
          title: "Redis command latency p99 by operation",
          unit: "s",
          description:
            "p99 of the Redis scripts and commands: publish (the publish script), read (history and recovery), quota (connection quota acquisition).",
          targets: [
            { expr: quantile(0.99, "roomcast_redis_command_duration_seconds", "operation"), legend: "{{operation}}" },
          ],
        },
        {
          title: "Redis errors by operation",
          unit: "ops",
          description: "Redis calls that failed, by operation. No series until the first error of an operation.",
          targets: [{ expr: sumRate("operation", "roomcast_redis_errors_total"), legend: "{{operation}}" }],
        },
      ],
    },
    {
      title: "Runtime",
      panels: [
        {
          title: "Event loop lag",
          unit: "s",
          description: "Node event loop lag per replica: p99 over the collection interval, and the latest sample.",
          targets: [
            { expr: `max by (node) (roomcast_nodejs_eventloop_lag_p99_seconds{${N}})`, legend: "{{node}} p99" },
            { expr: `max by (node) (roomcast_nodejs_eventloop_lag_seconds{${N}})`, legend: "{{node}}" },
          ],
        },
        {
          title: "Memory",
          unit: "bytes",
          description: "Resident set size and V8 heap used per replica.",
          targets: [
            { expr: `max by (node) (roomcast_process_resident_memory_bytes{${N}})`, legend: "{{node}} RSS" },
            { expr: `max by (node) (roomcast_nodejs_heap_size_used_bytes{${N}})`, legend: "{{node}} heap used" },
          ],
        },
        {
          title: "CPU",
          unit: "percentunit",
          description: "CPU time per second of wall time, per replica (1 = one core).",
          targets: [{ expr: sumRate("node", "roomcast_process_cpu_seconds_total"), legend: "{{node}}" }],
        },
        {
          title: "GC time",
          unit: "percentunit",
          description: "Share of time spent in garbage collection, per replica and GC kind.",
          targets: [
            { expr: sumRate("node, kind", "roomcast_nodejs_gc_duration_seconds_sum"), legend: "{{node}} {{kind}}" },
          ],
        },
      ],
    },
  ],
};

const CHANNELS: DashboardSpec = {
  file: "roomcast-channels.json",
  uid: "roomcast-channels",
  title: "roomcast / Channels and delivery",
  description:
    "Subscriptions, published and delivered events by namespace, fan-out, delivery latency, recoveries with since, lag notices, slow-consumer disconnects and presence.",
  rows: [
    {
      title: "Subscriptions",
      panels: [
        {
          title: "Subscriptions by namespace",
          description:
            "Channel subscriptions on the selected replicas, by namespace (env, job, user, configured ones).",
          stack: true,
          targets: [{ expr: `sum by (namespace) (roomcast_subscriptions{${N}})`, legend: "{{namespace}}" }],
        },
        {
          title: "Subscriptions by node",
          description: "Channel subscriptions per replica.",
          targets: [{ expr: `sum by (node) (roomcast_subscriptions{${N}})`, legend: "{{node}}" }],
        },
      ],
    },
    {
      title: "Throughput",
      panels: [
        {
          title: "Published by namespace",
          unit: "ops",
          description: "Events entering channels through the selected replicas (counted where they were published).",
          targets: [{ expr: sumRate("namespace", "roomcast_events_published_total"), legend: "{{namespace}}" }],
        },
        {
          title: "Delivered by namespace",
          unit: "ops",
          description: "Deliveries written to clients of the selected replicas (one per subscriber and event).",
          targets: [{ expr: sumRate("namespace", "roomcast_events_delivered_total"), legend: "{{namespace}}" }],
        },
        {
          title: "Deliveries per published event (cluster)",
          description:
            "Cluster-wide deliveries divided by publishes, by namespace: the effective fan-out. Ignores the node picker: an event is counted as published on one replica and delivered on many.",
          w: 24,
          targets: [
            {
              expr: "sum by (namespace) (rate(roomcast_events_delivered_total[$__rate_interval])) / sum by (namespace) (rate(roomcast_events_published_total[$__rate_interval]))",
              legend: "{{namespace}}",
            },
          ],
        },
      ],
    },
    {
      title: "Fan-out and latency",
      panels: [
        {
          type: "heatmap",
          title: "Fan-out distribution",
          description:
            "Local subscribers each live event was written to, per event and replica (roomcast_broadcast_fanout).",
          targets: [
            {
              expr: `sum by (le) (increase(roomcast_broadcast_fanout_bucket{${N}}[$__rate_interval]))`,
              legend: "{{le}}",
            },
          ],
        },
        {
          title: "Fan-out per event",
          description: "Median, p99 and mean of the local subscribers an event was written to.",
          targets: [
            { expr: quantile(0.5, "roomcast_broadcast_fanout"), legend: "p50" },
            { expr: quantile(0.99, "roomcast_broadcast_fanout"), legend: "p99" },
            {
              expr: `${sumRate("", "roomcast_broadcast_fanout_sum")} / ${sumRate("", "roomcast_broadcast_fanout_count")}`,
              legend: "mean",
            },
          ],
        },
        {
          type: "heatmap",
          title: "Delivery latency distribution",
          description: "From publish time to the write to the subscribers' sockets.",
          unit: "s",
          targets: [
            {
              expr: `sum by (le) (increase(roomcast_delivery_latency_seconds_bucket{${N}}[$__rate_interval]))`,
              legend: "{{le}}",
            },
          ],
        },
        {
          title: "Delivery latency p99 by node",
          unit: "s",
          description: "99th percentile delivery latency per replica: one slow replica stands out here.",
          targets: [{ expr: quantile(0.99, "roomcast_delivery_latency_seconds", "node"), legend: "{{node}}" }],
        },
      ],
    },
    {
      title: "Recovery and slow consumers",
      panels: [
        {
          title: "Recoveries by outcome",
          unit: "ops",
          description:
            "Subscribes with since: recovered (every missed event replayed) or not_recovered (epoch changed or history no longer holds the gap: the client reloads its state).",
          targets: [{ expr: sumRate("outcome", "roomcast_recoveries_total"), legend: "{{outcome}}" }],
        },
        {
          title: "Recovered share",
          unit: "percentunit",
          min: 0,
          max: 1,
          description: "Share of subscribes with since that recovered every missed event.",
          targets: [
            {
              expr: `${sumRate("", "roomcast_recoveries_total", ', outcome="recovered"')} / ${sumRate("", "roomcast_recoveries_total")}`,
              legend: "recovered",
            },
          ],
        },
        {
          title: "Lag notices",
          unit: "ops",
          description:
            "lag notices sent: a slow client of a conflating channel got only the newest state, or history could not fill a gap.",
          targets: [{ expr: sumRate("node", "roomcast_lag_notices_total"), legend: "{{node}}" }],
        },
        {
          title: "Slow-consumer disconnects",
          unit: "ops",
          description:
            "Clients closed with 4008 slow_consumer (too much buffered and unread on a reliable channel); they reconnect and recover from history.",
          targets: [{ expr: sumRate("node", "roomcast_slow_consumer_disconnects_total"), legend: "{{node}}" }],
        },
      ],
    },
    {
      title: "Presence",
      panels: [
        {
          title: "Channels with presence by node",
          description:
            "Channels with presence (namespaces with presence: true, like env and job) on which a replica has connections and renews their leases. A channel with members on several replicas counts on each.",
          targets: [{ expr: `max by (node) (roomcast_presence_channels{${N}})`, legend: "{{node}}" }],
        },
        {
          title: "Present connections by node",
          description: "Connections present on channels, per replica: one per connection and channel.",
          targets: [{ expr: `max by (node) (roomcast_presence_connections{${N}})`, legend: "{{node}}" }],
        },
        {
          title: "Joins and leaves",
          unit: "ops",
          description:
            "Presence changes announced by the selected replicas: join (a user's first connection on a channel came), leave (its last one went, ROOMCAST_PRESENCE_DEBOUNCE_S later, or a dead replica's members were swept).",
          targets: [{ expr: sumRate("action", "roomcast_presence_changes_total"), legend: "{{action}}" }],
        },
        {
          title: "Users per channel",
          description:
            "Users present on a channel, observed each time a replica renews its connections there (every quarter of ROOMCAST_PRESENCE_LEASE_S): p50, p95 and p99. Above ROOMCAST_PRESENCE_MAX_MEMBERS, presence answers hold only the counts.",
          targets: [
            { expr: quantile(0.5, "roomcast_presence_channel_users"), legend: "p50" },
            { expr: quantile(0.95, "roomcast_presence_channel_users"), legend: "p95" },
            { expr: quantile(0.99, "roomcast_presence_channel_users"), legend: "p99" },
          ],
        },
      ],
    },
  ],
};

const LIMITS: DashboardSpec = {
  file: "roomcast-limits.json",
  uid: "roomcast-limits",
  title: "roomcast / Limits and abuse",
  description:
    "Handshake refusals, sessions not authenticated yet, rate limits (socket, HTTP, abuse closes), requests refused by a limit (rate_limited, too_large, too_many_*), replicas draining for shutdown or moving clients off for a lost Redis link.",
  rows: [
    {
      title: "Handshakes",
      panels: [
        {
          title: "Handshake refusals by reason",
          unit: "ops",
          description:
            "unauthorized / forbidden (token, tenant), too_many_connections (user, IP or replica quota), unavailable (Redis down or the replica draining).",
          targets: [{ expr: sumRate("reason", "roomcast_connection_refusals_total"), legend: "{{reason}}" }],
        },
        {
          title: "Refused share of handshakes",
          unit: "percentunit",
          min: 0,
          max: 1,
          description: "Handshakes refused divided by handshakes started, per replica.",
          targets: [
            {
              expr: `${sumRate("node", "roomcast_connection_refusals_total")} / ${sumRate("node", "roomcast_connection_attempts_total")}`,
              legend: "{{node}}",
            },
          ],
        },
        {
          title: "Sessions not authenticated yet",
          description:
            "Engine.IO sessions that have not completed the Socket.IO CONNECT, per replica (capped by ROOMCAST_MAX_UNAUTHENTICATED_PER_IP and _PER_NODE, dropped after ROOMCAST_AUTH_TIMEOUT_S). A flood of token-less sessions shows here first.",
          targets: [{ expr: `max by (node) (roomcast_unauthenticated_sessions{${N}})`, legend: "{{node}}" }],
        },
        {
          title: "New sessions refused at the handshake gate",
          unit: "ops",
          description:
            "HTTP 503/429 before any session: unavailable (draining or Redis lost), unauthenticated_ip (429), unauthenticated_node (503).",
          targets: [{ expr: sumRate("reason", "roomcast_handshake_gate_refusals_total"), legend: "{{reason}}" }],
        },
      ],
    },
    {
      title: "Requests",
      panels: [
        {
          title: "Rate limited by kind",
          unit: "ops",
          description:
            "socket: a request over the per-connection token bucket; http: an HTTP API request over the per-token limit; abuse_close: a connection closed (closing 4429) for sustained refusals.",
          targets: [{ expr: sumRate("kind", "roomcast_rate_limited_total"), legend: "{{kind}}" }],
        },
        {
          title: "Requests refused by a limit",
          unit: "reqps",
          description:
            "Client requests answered rate_limited (4429), too_large (4413) or too_many_* (4429: subscriptions, environment connections), by event.",
          targets: [
            {
              expr: sumRate("event, outcome", "roomcast_requests_total", `, ${LIMIT_OUTCOMES}`),
              legend: "{{event}} {{outcome}}",
            },
          ],
        },
        {
          title: "Requests refused by a limit, by node",
          unit: "reqps",
          description:
            "The same refusals per replica: abuse usually concentrates on the replicas its connections landed on.",
          targets: [{ expr: sumRate("node", "roomcast_requests_total", `, ${LIMIT_OUTCOMES}`), legend: "{{node}}" }],
        },
        {
          title: "Requests not ok (share)",
          unit: "percentunit",
          min: 0,
          max: 1,
          description: "Share of client requests answered with any error, per replica.",
          targets: [
            {
              expr: `${sumRate("node", "roomcast_requests_total", ', outcome!="ok"')} / ${sumRate("node", "roomcast_requests_total")}`,
              legend: "{{node}}",
            },
          ],
        },
      ],
    },
    {
      title: "Drain",
      panels: [
        {
          title: "Draining",
          min: 0,
          max: 1,
          description:
            "1 while a replica drains for shutdown (SIGTERM): unready, refusing handshakes, moving its clients away within ROOMCAST_DRAIN_S.",
          targets: [{ expr: `max by (node) (roomcast_draining{${N}})`, legend: "{{node}}" }],
        },
        {
          title: "Connections left to drain",
          description: "Connections a draining replica has still to close with closing 4503 draining.",
          targets: [{ expr: `max by (node) (roomcast_drain_remaining_connections{${N}})`, legend: "{{node}}" }],
        },
        {
          title: "Clients moved off for a lost Redis link",
          unit: "ops",
          description:
            "Clients a replica moved to the others (closing 4503 unavailable) because one of its Redis connections was down or silent for ROOMCAST_REDIS_SILENT_S.",
          targets: [{ expr: sumRate("node", "roomcast_redis_link_moves_total"), legend: "{{node}}" }],
        },
      ],
    },
  ],
};

const JOBS: DashboardSpec = {
  file: "roomcast-jobs.json",
  uid: "roomcast-jobs",
  title: "roomcast / Jobs and workers",
  description:
    "The job queue and its workers (roomcast worker): queue depth by state, running attempts, how attempts end, their duration, log lines streamed to job channels, stalled jobs, publish retries and presence webhook deliveries. The node picker lists workers.",
  nodes: "workers",
  rows: [
    {
      title: "At a glance",
      panels: [
        {
          type: "stat",
          title: "Workers",
          description: "Workers whose /metrics Prometheus scraped.",
          targets: [{ expr: `count(count by (node) (roomcast_jobs_running{${N}}))`, legend: "workers" }],
        },
        {
          type: "stat",
          title: "Running",
          description: "Job attempts running now on the selected workers.",
          targets: [{ expr: `sum(roomcast_jobs_running{${N}})`, legend: "running" }],
        },
        {
          type: "stat",
          title: "Waiting",
          description:
            "Jobs waiting for a worker, queue-wide (every worker reports the queue's numbers: max over them).",
          targets: [{ expr: `max(roomcast_queue_jobs{${N}, state=~"waiting|prioritized"})`, legend: "waiting" }],
        },
        {
          type: "stat",
          title: "Delayed",
          description: "Jobs waiting for their start time: a delay asked for, or a retry's backoff.",
          targets: [{ expr: `max(roomcast_queue_jobs{${N}, state="delayed"})`, legend: "delayed" }],
        },
        {
          type: "stat",
          title: "Completed / s",
          unit: "ops",
          description: "Jobs completed per second.",
          targets: [{ expr: sumRate("", "roomcast_job_attempts_total", ', outcome="completed"'), legend: "completed" }],
        },
        {
          type: "stat",
          title: "Failed / s",
          unit: "ops",
          description: "Jobs that failed for good (no attempt left) per second.",
          targets: [{ expr: sumRate("", "roomcast_job_attempts_total", ', outcome="failed"'), legend: "failed" }],
        },
      ],
    },
    {
      title: "Queue",
      panels: [
        {
          title: "Jobs by queue state",
          description:
            "Waiting, prioritized, delayed (backoff or delay), active, and the completed and failed jobs still kept for their retention (ROOMCAST_JOB_RETENTION_S).",
          targets: [{ expr: `max by (state) (roomcast_queue_jobs{${N}})`, legend: "{{state}}" }],
        },
        {
          title: "Running attempts by processor",
          stack: true,
          description:
            "Job attempts running on the selected workers, by processor (job name). Compare with ROOMCAST_WORKER_CONCURRENCY times the workers.",
          targets: [{ expr: `sum by (processor) (roomcast_jobs_running{${N}})`, legend: "{{processor}}" }],
        },
      ],
    },
    {
      title: "Attempts",
      panels: [
        {
          title: "Attempts ended by outcome",
          unit: "ops",
          description:
            "How attempts end: completed, failed (for good), retried (another attempt follows after a backoff), cancelled, requeued (the worker shut down; another runs it).",
          targets: [{ expr: sumRate("outcome", "roomcast_job_attempts_total"), legend: "{{outcome}}" }],
        },
        {
          title: "Attempts ended by processor and outcome",
          unit: "ops",
          description: "The same, per processor: which job kinds fail or retry.",
          targets: [
            { expr: sumRate("processor, outcome", "roomcast_job_attempts_total"), legend: "{{processor}} {{outcome}}" },
          ],
        },
        {
          title: "Attempt duration by processor",
          unit: "s",
          description: "p50 and p95 of how long attempts ran, by processor (all outcomes).",
          targets: [
            { expr: quantile(0.5, "roomcast_job_attempt_duration_seconds", "processor"), legend: "{{processor}} p50" },
            { expr: quantile(0.95, "roomcast_job_attempt_duration_seconds", "processor"), legend: "{{processor}} p95" },
          ],
        },
        {
          title: "Stalled jobs",
          unit: "ops",
          description:
            "Jobs found stalled (their worker stopped renewing the lock: killed, frozen, lost) and put back in the queue, per second. Their subscribers see a stalled state, then a new attempt.",
          targets: [{ expr: sumRate("", "roomcast_jobs_stalled_total"), legend: "stalled" }],
        },
      ],
    },
    {
      title: "Output",
      panels: [
        {
          title: "Log lines by processor",
          unit: "ops",
          description:
            "Log lines published to job channels (and their environments' log channels) per second, batched every 100 ms or 100 lines.",
          targets: [{ expr: sumRate("processor", "roomcast_job_log_lines_total"), legend: "{{processor}}" }],
        },
        {
          title: "Events published by workers",
          unit: "ops",
          description:
            "Events the selected workers published through the publish path (job and environment channels), by namespace.",
          targets: [{ expr: sumRate("namespace", "roomcast_events_published_total"), legend: "{{namespace}}" }],
        },
        {
          title: "Publish retries",
          unit: "ops",
          description:
            "Job channel publishes retried after a failure (Redis away or failing over). Lines are kept and retried in order; an attempt fails only after 30 s of failures.",
          targets: [{ expr: sumRate("", "roomcast_job_publish_retries_total"), legend: "retries" }],
        },
        {
          title: "Redis latency p99 on workers",
          unit: "s",
          description: "p99 of the publish script and history reads from the selected workers.",
          targets: [
            { expr: quantile(0.99, "roomcast_redis_command_duration_seconds", "operation"), legend: "{{operation}}" },
          ],
        },
      ],
    },
    {
      title: "Webhooks",
      panels: [
        {
          title: "Webhook deliveries by outcome",
          unit: "ops",
          description:
            "Presence webhook POSTs from the selected workers: delivered (a 2xx) or failed (another status, a timeout after 5 s, no connection; retried with backoff, in order per channel). Nothing unless ROOMCAST_WEBHOOK_URLS is set.",
          targets: [{ expr: sumRate("outcome", "roomcast_webhook_deliveries_total"), legend: "{{outcome}}" }],
        },
        {
          title: "Webhook failure ratio",
          unit: "percentunit",
          min: 0,
          max: 1,
          description:
            "Failed POSTs divided by all POSTs (RoomcastWebhooksFailing fires above 50% over 10 minutes). The workers' logs name the URL and the status.",
          targets: [
            {
              expr: `${sumRate("", "roomcast_webhook_deliveries_total", ', outcome="failed"')} / ${sumRate("", "roomcast_webhook_deliveries_total", ', outcome=~"delivered|failed"')}`,
              legend: "failed",
            },
          ],
        },
        {
          title: "Webhook deliveries by event",
          unit: "ops",
          description:
            "The same POSTs by event (channel_occupied, channel_vacated, member_added, member_removed; only those of ROOMCAST_WEBHOOK_EVENTS are sent) and outcome.",
          targets: [
            { expr: sumRate("event, outcome", "roomcast_webhook_deliveries_total"), legend: "{{event}} {{outcome}}" },
          ],
        },
        {
          title: "Webhook receiver duration",
          unit: "s",
          description:
            "How long receivers took to answer a POST, p50 and p95 (a receiver that has not answered after 5 s failed). A slow receiver delays every later change of the channels it gets.",
          targets: [
            { expr: quantile(0.5, "roomcast_webhook_duration_seconds"), legend: "p50" },
            { expr: quantile(0.95, "roomcast_webhook_duration_seconds"), legend: "p95" },
          ],
        },
      ],
    },
    {
      title: "Runtime",
      panels: [
        {
          title: "Event loop lag",
          unit: "s",
          description:
            "Node event loop lag per worker: a processor that blocks the loop delays every job on it, and its lock renewals (it may be found stalled).",
          targets: [
            { expr: `max by (node) (roomcast_nodejs_eventloop_lag_p99_seconds{${N}})`, legend: "{{node}} p99" },
          ],
        },
        {
          title: "CPU and memory",
          description: "CPU time per second (1 = one core) and resident memory (MiB) per worker.",
          targets: [
            { expr: sumRate("node", "roomcast_process_cpu_seconds_total"), legend: "{{node}} CPU" },
            {
              expr: `max by (node) (roomcast_process_resident_memory_bytes{${N}}) / 1048576`,
              legend: "{{node}} RSS MiB",
            },
          ],
        },
      ],
    },
  ],
};

export const DASHBOARDS: DashboardSpec[] = [OVERVIEW, CHANNELS, LIMITS, JOBS];

function templating(nodes: keyof typeof NODE_VARIABLE) {
  const { metric, label } = NODE_VARIABLE[nodes];
  return {
    list: [
      {
        name: "DS_PROMETHEUS",
        label: "Data source",
        type: "datasource",
        query: "prometheus",
        current: {},
        hide: 0,
        includeAll: false,
        multi: false,
        options: [],
        refresh: 1,
        regex: "",
        skipUrlSync: false,
      },
      {
        name: "node",
        label,
        type: "query",
        datasource: DATASOURCE,
        definition: `label_values(${metric}, node)`,
        query: {
          qryType: 1,
          query: `label_values(${metric}, node)`,
          refId: "PrometheusVariableQueryEditor-VariableQuery",
        },
        current: { selected: true, text: ["All"], value: ["$__all"] },
        hide: 0,
        includeAll: true,
        allValue: ".*",
        multi: true,
        options: [],
        refresh: 2,
        regex: "",
        skipUrlSync: false,
        sort: 1,
      },
    ],
  };
}

function panelJson(
  spec: PanelSpec,
  id: number,
  gridPos: { x: number; y: number; w: number; h: number },
): Record<string, unknown> {
  const type = spec.type ?? "timeseries";
  const targets = spec.targets.map((t, i) => ({
    datasource: DATASOURCE,
    editorMode: "code",
    expr: t.expr,
    ...(type === "heatmap" ? { format: "heatmap" } : {}),
    legendFormat: t.legend,
    range: true,
    refId: String.fromCharCode(65 + i),
  }));
  const defaults: Record<string, unknown> = { unit: spec.unit ?? "short" };
  if (spec.min !== undefined) defaults.min = spec.min;
  if (spec.max !== undefined) defaults.max = spec.max;
  let options: Record<string, unknown>;
  if (type === "stat") {
    defaults.color = { mode: "thresholds" };
    defaults.thresholds = { mode: "absolute", steps: [{ color: "green", value: null }] };
    options = {
      colorMode: "value",
      graphMode: "area",
      justifyMode: "auto",
      orientation: "auto",
      reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false },
      textMode: "auto",
    };
  } else if (type === "heatmap") {
    delete defaults.unit;
    options = {
      calculate: false,
      cellGap: 1,
      color: {
        exponent: 0.5,
        fill: "dark-orange",
        mode: "scheme",
        reverse: false,
        scale: "exponential",
        scheme: "Oranges",
        steps: 64,
      },
      filterValues: { le: 1e-9 },
      legend: { show: true },
      rowsFrame: { layout: "auto" },
      tooltip: { mode: "single", showColorScale: false, yHistogram: false },
      yAxis: { axisPlacement: "left", reverse: false, unit: spec.unit ?? "short" },
    };
  } else {
    defaults.color = { mode: "palette-classic" };
    defaults.custom = {
      drawStyle: "line",
      fillOpacity: spec.stack ? 30 : 10,
      lineWidth: 1,
      showPoints: "never",
      spanNulls: false,
      stacking: { group: "A", mode: spec.stack ? "normal" : "none" },
    };
    options = {
      legend: { calcs: [], displayMode: "list", placement: "bottom", showLegend: true },
      tooltip: { mode: "multi", sort: "desc" },
    };
  }
  return {
    datasource: DATASOURCE,
    description: spec.description,
    fieldConfig: { defaults, overrides: [] },
    gridPos,
    id,
    options,
    targets,
    title: spec.title,
    type,
  };
}

export function dashboardJson(spec: DashboardSpec): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let id = 0;
  let y = 0;
  for (const row of spec.rows) {
    panels.push({
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      id: ++id,
      panels: [],
      title: row.title,
      type: "row",
    });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const panel of row.panels) {
      const w = panel.w ?? (panel.type === "stat" ? 4 : 12);
      const h = panel.h ?? (panel.type === "stat" ? 4 : 8);
      if (x + w > 24) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      panels.push(panelJson(panel, ++id, { h, w, x, y }));
      x += w;
      rowHeight = Math.max(rowHeight, h);
    }
    y += rowHeight;
  }
  return {
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: "grafana", uid: "-- Grafana --" },
          enable: true,
          hide: true,
          iconColor: "rgba(0, 211, 255, 1)",
          name: "Annotations & Alerts",
          type: "dashboard",
        },
      ],
    },
    description: spec.description,
    editable: true,
    fiscalYearStartMonth: 0,
    graphTooltip: 1,
    id: null,
    links: [
      {
        asDropdown: false,
        icon: "external link",
        includeVars: true,
        keepTime: true,
        tags: ["roomcast"],
        targetBlank: false,
        title: "roomcast",
        type: "dashboards",
      },
    ],
    panels,
    refresh: "30s",
    schemaVersion: 39,
    tags: ["roomcast"],
    templating: templating(spec.nodes ?? "gateways"),
    time: { from: "now-1h", to: "now" },
    timepicker: {},
    timezone: "",
    title: spec.title,
    uid: spec.uid,
    version: 1,
  };
}

/** File name -> the JSON text committed in grafana/dashboards/. */
export function renderDashboards(): Map<string, string> {
  return new Map(DASHBOARDS.map((spec) => [spec.file, `${JSON.stringify(dashboardJson(spec), null, 2)}\n`]));
}

export const DASHBOARD_DIR = fileURLToPath(new URL("../grafana/dashboards/", import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [file, json] of renderDashboards()) {
    writeFileSync(`${DASHBOARD_DIR}${file}`, json);
    console.log(`wrote grafana/dashboards/${file}`);
  }
}

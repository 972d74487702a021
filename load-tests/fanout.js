/**
 * Fan-out: many subscribers on one channel, `env:<ENV_ID>:events`, and a publisher posting
 * to it over HTTP at a fixed rate. Every subscriber checks the offsets it gets (a gap or a
 * duplicate is counted, and must never happen) and records the end-to-end latency of each
 * event.
 *
 * Measures: roomcast_fanout_latency (receipt minus the publisher's send time carried in the
 * event's data: same clock, the whole path from the HTTP request to the socket),
 * roomcast_fanout_delivery_latency (receipt minus the event's `ts`, the gateway's publish time:
 * only meaningful when the load generator's clock is in sync with the gateways'),
 * roomcast_fanout_events_received, roomcast_fanout_gaps, roomcast_fanout_duplicates,
 * roomcast_fanout_missed (events of the channel a subscriber never got, checked against the
 * channel's history when it leaves), roomcast_publish_accepted and roomcast_publish_duration.
 *
 *   k6 run -e BASE_URL=http://localhost:3000 -e JWT_SECRET=... load-tests/fanout.js
 *
 * Sizing (__ENV, defaults): SUBSCRIBERS=50 VUs, PUBLISH_RATE=20 events/s for PUBLISH_S=60,
 * after WARMUP_S=10 (the subscribers connect meanwhile), DRAIN_S=5 before subscribers leave,
 * PAYLOAD_BYTES=200, PUBLISHER_VUS=5 (pre-allocated), ENV_ID=loadtest, thresholds
 * LATENCY_P95_MS=250 and LATENCY_P99_MS=500. Subscribers all count against the environment's
 * connection limit: raise ROOMCAST_MAX_CONNECTIONS_PER_ENV (10) on the gateways, and
 * ROOMCAST_MAX_CONNECTIONS_PER_IP (100) for more than 100 subscribers from one host.
 */
import { check, sleep } from "k6";
import exec from "k6/execution";
import { Counter, Rate, Trend } from "k6/metrics";
import {
  baseUrl,
  checkTarget,
  credentials,
  envNumber,
  envString,
  follow,
  history,
  newRunId,
  OffsetTracker,
  pause,
  publish,
  SocketIoClient,
} from "./lib/socketio.js";

const SUBSCRIBERS = envNumber("SUBSCRIBERS", 50);
const PUBLISH_RATE = envNumber("PUBLISH_RATE", 20);
const WARMUP_S = envNumber("WARMUP_S", 10);
const PUBLISH_S = envNumber("PUBLISH_S", 60);
const DRAIN_S = envNumber("DRAIN_S", 5);
const PAYLOAD_BYTES = envNumber("PAYLOAD_BYTES", 200);
const PUBLISHER_VUS = envNumber("PUBLISHER_VUS", 5);
const ENV_ID = envString("ENV_ID", "loadtest");
const LATENCY_P95_MS = envNumber("LATENCY_P95_MS", 250);
const LATENCY_P99_MS = envNumber("LATENCY_P99_MS", 500);
const CHANNEL = `env:${ENV_ID}:events`;
const TOTAL_S = WARMUP_S + PUBLISH_S + DRAIN_S;

const latency = new Trend("roomcast_fanout_latency", true);
const deliveryLatency = new Trend("roomcast_fanout_delivery_latency", true);
const received = new Counter("roomcast_fanout_events_received");
const gaps = new Counter("roomcast_fanout_gaps");
const duplicates = new Counter("roomcast_fanout_duplicates");
const missed = new Counter("roomcast_fanout_missed");
const publishAccepted = new Rate("roomcast_publish_accepted");
const publishDuration = new Trend("roomcast_publish_duration", true);

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: {
    subscribers: {
      executor: "constant-vus",
      exec: "subscriber",
      vus: SUBSCRIBERS,
      duration: `${TOTAL_S}s`,
      gracefulStop: "15s",
    },
    publisher: {
      executor: "constant-arrival-rate",
      exec: "publisher",
      rate: PUBLISH_RATE,
      timeUnit: "1s",
      duration: `${PUBLISH_S}s`,
      startTime: `${WARMUP_S}s`,
      preAllocatedVUs: PUBLISHER_VUS,
      maxVUs: PUBLISHER_VUS * 10,
    },
  },
  thresholds: {
    roomcast_fanout_latency: [`p(95)<${LATENCY_P95_MS}`, `p(99)<${LATENCY_P99_MS}`],
    roomcast_fanout_gaps: ["count==0"],
    roomcast_fanout_duplicates: ["count==0"],
    roomcast_fanout_missed: ["count==0"],
    roomcast_publish_accepted: ["rate>0.999"],
    checks: ["rate>0.99"],
  },
};

export function setup() {
  checkTarget();
  // Subscribers leave together, DRAIN_S after the last publish.
  return { runId: newRunId(), endsAt: Date.now() + TOTAL_S * 1000 };
}

/** @param {{ runId: string, endsAt: number }} data */
export async function subscriber(data) {
  if (Date.now() >= data.endsAt - 1000) {
    // Too late to see anything: wait for the scenario to end rather than spin.
    sleep(1);
    return;
  }
  gaps.add(0);
  duplicates.add(0);
  missed.add(0);
  const base = baseUrl(exec.vu.idInTest);
  const { token } = credentials(`${data.runId}-sub-${exec.vu.idInTest}`, { scope: "env:read", envs: [ENV_ID] });
  const client = new SocketIoClient(base, { token });
  const tracker = new OffsetTracker(CHANNEL);
  try {
    await client.ready;
    const answer = await follow(client, { channel: CHANNEL }, tracker, (event, source) => {
      if (source !== "live") return;
      const now = Date.now();
      received.add(1);
      if (event.data && typeof event.data.sentAt === "number") latency.add(now - event.data.sentAt);
      deliveryLatency.add(Math.max(0, now - event.ts));
    });
    if (!check(answer, { "subscribed to the channel": (a) => a.ok === true })) return;
    await pause(Math.max(0, data.endsAt - Date.now()));
    // What the channel holds now, against what this subscriber got.
    const tail = history(base, token, CHANNEL, 1);
    if (check(tail, { "history answered": (r) => r.status === 200 }) && client.connected) {
      const top = Number(tail.body.offset);
      if (tail.body.epoch === tracker.epoch && top > tracker.offset) missed.add(top - tracker.offset);
    }
    check(client, { "stayed connected": (c) => c.connected });
  } finally {
    gaps.add(tracker.gaps);
    duplicates.add(tracker.duplicates);
    client.close();
  }
}

// The publisher's token, minted once per VU.
/** @type {string} */
let publisherToken = "";
const padding = "x".repeat(Math.max(0, PAYLOAD_BYTES));

/** @param {{ runId: string }} data */
export function publisher(data) {
  if (!publisherToken)
    publisherToken = credentials(`${data.runId}-pub-${exec.vu.idInTest}`, { scope: "publish", envs: [ENV_ID] }).token;
  const res = publish(baseUrl(exec.vu.idInTest + 1), publisherToken, CHANNEL, "tick", { sentAt: Date.now(), padding });
  publishDuration.add(res.durationMs);
  publishAccepted.add(res.status === 202);
  check(res, { "publish accepted (202 with an offset)": (r) => r.status === 202 && typeof r.body.offset === "number" });
}

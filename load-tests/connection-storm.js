/**
 * Connection storm: an arrival-rate ramp of new connections. Each one opens a WebSocket,
 * authenticates in the CONNECT packet (a token minted for its VU's own `sub`), waits for
 * `welcome`, subscribes to its `user:<sub>` channel, holds a while and leaves.
 *
 * Measures: roomcast_time_to_welcome (socket opened -> welcome), roomcast_handshake_accepted
 * (a Rate), roomcast_handshake_refusals (a Counter tagged with the refusal's code and
 * reason), roomcast_connect_failures (no welcome: transport error or timeout),
 * roomcast_subscribe_duration and roomcast_subscribe_ok.
 *
 *   k6 run -e BASE_URL=http://localhost:3000 -e JWT_SECRET=... load-tests/connection-storm.js
 *
 * Sizing (__ENV, defaults): START_RATE=5 and PEAK_RATE=100 new connections per second,
 * RAMP_S=30 to get there, PLATEAU_S=60 at the peak, HOLD_MS=10000 each connection stays,
 * PRE_VUS=50, MAX_VUS=2000. At the peak about PEAK_RATE * HOLD_MS / 1000 connections are open
 * at once (1000 by default): raise ROOMCAST_MAX_CONNECTIONS_PER_IP (100) on the gateways when
 * they all come from one load generator.
 */
import { check } from "k6";
import exec from "k6/execution";
import { Counter, Rate, Trend } from "k6/metrics";
import {
  baseUrl,
  checkTarget,
  credentials,
  envNumber,
  newRunId,
  pause,
  SocketIoClient,
  SocketIoError,
} from "./lib/socketio.js";

const START_RATE = envNumber("START_RATE", 5);
const PEAK_RATE = envNumber("PEAK_RATE", 100);
const RAMP_S = envNumber("RAMP_S", 30);
const PLATEAU_S = envNumber("PLATEAU_S", 60);
const HOLD_MS = envNumber("HOLD_MS", 10000);
const PRE_VUS = envNumber("PRE_VUS", 50);
const MAX_VUS = envNumber("MAX_VUS", 2000);
const WELCOME_P95_MS = envNumber("WELCOME_P95_MS", 1000);
const WELCOME_P99_MS = envNumber("WELCOME_P99_MS", 2500);

const timeToWelcome = new Trend("roomcast_time_to_welcome", true);
const accepted = new Rate("roomcast_handshake_accepted");
const refusals = new Counter("roomcast_handshake_refusals");
const connectFailures = new Counter("roomcast_connect_failures");
const subscribeDuration = new Trend("roomcast_subscribe_duration", true);
const subscribeOk = new Rate("roomcast_subscribe_ok");

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: {
    storm: {
      executor: "ramping-arrival-rate",
      exec: "storm",
      startRate: START_RATE,
      timeUnit: "1s",
      preAllocatedVUs: PRE_VUS,
      maxVUs: MAX_VUS,
      stages: [
        { duration: `${RAMP_S}s`, target: PEAK_RATE },
        { duration: `${PLATEAU_S}s`, target: PEAK_RATE },
        { duration: "10s", target: 0 },
      ],
      gracefulStop: `${Math.ceil(HOLD_MS / 1000) + 15}s`,
    },
  },
  thresholds: {
    roomcast_time_to_welcome: [`p(95)<${WELCOME_P95_MS}`, `p(99)<${WELCOME_P99_MS}`],
    roomcast_handshake_accepted: ["rate>0.99"],
    // A bad or mis-signed token is a broken setup, never load: not one.
    "roomcast_handshake_refusals{code:4401}": ["count==0"],
    roomcast_subscribe_ok: ["rate>0.99"],
    checks: ["rate>0.99"],
  },
};

export function setup() {
  checkTarget();
  return { runId: newRunId() };
}

/** @param {{ runId: string }} data */
export async function storm(data) {
  // One sub per VU: a VU holds one connection at a time, far below the per-user limit (50).
  const { sub, token } = credentials(`${data.runId}-storm-${exec.vu.idInTest}`);
  const started = Date.now();
  const client = new SocketIoClient(baseUrl(exec.vu.idInTest), { token });
  try {
    const welcome = await client.ready;
    timeToWelcome.add(Date.now() - started);
    accepted.add(true);
    check(welcome, {
      "welcome names its node and session": (w) => typeof w.node === "string" && typeof w.sessionId === "string",
    });

    const asked = Date.now();
    const answer = await client.request("subscribe", { channel: `user:${sub}` });
    subscribeDuration.add(Date.now() - asked);
    subscribeOk.add(answer.ok === true);
    check(answer, { "subscribed to its own user channel": (a) => a.ok === true && a.channel === `user:${sub}` });

    await pause(HOLD_MS);
    check(client, { "still connected after the hold": (c) => c.connected });
  } catch (err) {
    if (!client.welcome) {
      accepted.add(false);
      // Refused by the gateway (44 with a code), or the socket failed or timed out.
      if (err instanceof SocketIoError && err.code) refusals.add(1, { code: String(err.code), reason: err.reason });
      else connectFailures.add(1);
    } else {
      subscribeOk.add(false);
      check(err, { "subscribe answered": () => false });
    }
  } finally {
    client.close();
  }
}

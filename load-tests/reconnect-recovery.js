/**
 * Reconnect and recovery: a VU subscribes to a channel of its own (`env:<run>-rec-<vu>:events`,
 * its token granting that environment) and receives events; its socket drops (no Socket.IO
 * DISCONNECT, as a lost network); events are published while it is away; it reconnects (to
 * the next gateway of BASE_URL when there are several, as after a replica failure) and
 * resubscribes with `since: { offset, epoch }` of the last event it handled. The answer must
 * say `recovered: true` and hold exactly the missed events, in order; live events must then
 * go on with no gap.
 *
 * Measures: roomcast_recovered (a Rate), roomcast_recovery_lost (events published and never
 * received, before, while away or after: must stay 0), roomcast_recovery_unexpected (events
 * in the recovery that were not missed: must stay 0), roomcast_recovery_gaps (offset gaps
 * and duplicates: must stay 0), roomcast_recovery_time (reconnect -> subscribe answer),
 * roomcast_recovery_events (events recovered).
 *
 *   k6 run -e BASE_URL=http://localhost:3000 -e JWT_SECRET=... load-tests/reconnect-recovery.js
 *
 * Sizing (__ENV, defaults): VUS=20 for DURATION_S=60, each cycle BEFORE=5 events while
 * connected, MISSED=10 while away, AFTER=3 after the recovery, AWAY_MS=1000 away,
 * DELIVERY_TIMEOUT_MS=10000 for live events to arrive. MISSED must stay within the channel's
 * history (ROOMCAST_HISTORY_SIZE, 1000) or the recovery cannot be complete.
 */
import { check } from "k6";
import exec from "k6/execution";
import { Counter, Rate, Trend } from "k6/metrics";
import {
  baseUrl,
  checkTarget,
  credentials,
  envNumber,
  follow,
  newRunId,
  OffsetTracker,
  pause,
  publish,
  SocketIoClient,
  waitUntil,
} from "./lib/socketio.js";

/** @typedef {import("./lib/socketio.js").ChannelEvent} ChannelEvent */

const VUS = envNumber("VUS", 20);
const DURATION_S = envNumber("DURATION_S", 60);
const BEFORE = envNumber("BEFORE", 5);
const MISSED = envNumber("MISSED", 10);
const AFTER = envNumber("AFTER", 3);
const AWAY_MS = envNumber("AWAY_MS", 1000);
const DELIVERY_TIMEOUT_MS = envNumber("DELIVERY_TIMEOUT_MS", 10000);

const recovered = new Rate("roomcast_recovered");
const lost = new Counter("roomcast_recovery_lost");
const unexpected = new Counter("roomcast_recovery_unexpected");
const gaps = new Counter("roomcast_recovery_gaps");
const recoveryTime = new Trend("roomcast_recovery_time", true);
const recoveredEvents = new Counter("roomcast_recovery_events");

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: {
    recovery: {
      executor: "constant-vus",
      exec: "recovery",
      vus: VUS,
      duration: `${DURATION_S}s`,
      gracefulStop: "30s",
    },
  },
  thresholds: {
    roomcast_recovered: ["rate==1"],
    roomcast_recovery_lost: ["count==0"],
    roomcast_recovery_unexpected: ["count==0"],
    roomcast_recovery_gaps: ["count==0"],
    roomcast_recovery_time: ["p(95)<1000"],
    checks: ["rate>0.99"],
  },
};

export function setup() {
  checkTarget();
  return { runId: newRunId() };
}

/** @param {{ runId: string }} data */
export async function recovery(data) {
  lost.add(0);
  unexpected.add(0);
  gaps.add(0);
  const vu = exec.vu.idInTest;
  // A channel of its own: an environment per VU (so a shared TOKEN works too, and the
  // per-environment connection limit is never reached).
  const envId = `${data.runId}-rec-${vu}`;
  const { token } = credentials(`${data.runId}-rec-${vu}`, { scope: "publish env:read", envs: [envId] });
  const channel = `env:${envId}:events`;
  const tracker = new OffsetTracker(channel);
  /** Offsets delivered (live or recovered), once each. @type {Set<number>} */
  const seen = new Set();
  /**
   * Publishes n events (through the other gateway, when there are several).
   * @param {number} n
   * @param {string} phase
   * @returns {number[]} their offsets
   */
  const publishMany = (n, phase) => {
    /** @type {number[]} */
    const offsets = [];
    for (let i = 0; i < n; i++) {
      const res = publish(baseUrl(vu + 1), token, channel, phase, { i, sentAt: Date.now() });
      if (check(res, { "publish accepted (202)": (r) => r.status === 202 })) offsets.push(Number(res.body.offset));
    }
    return offsets;
  };

  const first = new SocketIoClient(baseUrl(vu), { token });
  /** @type {SocketIoClient | null} */
  let second = null;
  try {
    await first.ready;
    const subscribed = await follow(first, { channel }, tracker, (e) => seen.add(e.offset));
    if (!check(subscribed, { "subscribed to its channel": (a) => a.ok === true })) return;

    const before = publishMany(BEFORE, "before");
    await waitUntil(() => before.every((o) => seen.has(o)), DELIVERY_TIMEOUT_MS);
    lost.add(before.filter((o) => !seen.has(o)).length);

    // Away: the socket drops, events go on.
    first.drop();
    await first.done;
    const away = publishMany(MISSED, "missed");
    await pause(AWAY_MS);

    const reconnectedAt = Date.now();
    second = new SocketIoClient(baseUrl(vu + 1), { token });
    await second.ready;
    /** @type {ChannelEvent[]} */
    const inAnswer = [];
    const answer = await follow(
      second,
      { channel, since: { offset: tracker.offset, epoch: tracker.epoch } },
      tracker,
      (e, source) => {
        seen.add(e.offset);
        if (source === "answer") inAnswer.push(e);
      },
    );
    recoveryTime.add(Date.now() - reconnectedAt);
    if (!check(answer, { "resubscribed with since": (a) => a.ok === true })) {
      lost.add(away.length);
      return;
    }
    recovered.add(answer.ok && answer.recovered === true);
    recoveredEvents.add(inAnswer.length);
    const got = inAnswer.map((e) => e.offset);
    lost.add(away.filter((o) => !got.includes(o)).length);
    unexpected.add(got.filter((o) => !away.includes(o)).length);
    check(answer, {
      "recovered: true": (a) => a.ok === true && a.recovered === true,
      "the answer holds exactly the missed events, in order": () => JSON.stringify(got) === JSON.stringify(away),
    });

    const after = publishMany(AFTER, "after");
    await waitUntil(() => after.every((o) => seen.has(o)), DELIVERY_TIMEOUT_MS);
    lost.add(after.filter((o) => !seen.has(o)).length);
    check(null, { "live events go on after the recovery": () => after.every((o) => seen.has(o)) });
  } finally {
    gaps.add(tracker.gaps + tracker.duplicates);
    first.close();
    if (second) second.close();
  }
}

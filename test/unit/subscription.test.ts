/** The subscription state machine (src/gateway/subscription.ts): syncing, live, paused, conflated. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ResolvedChannel } from "../../src/channels/channel-registry.js";
import { Subscription, type PendingEvent } from "../../src/gateway/subscription.js";

const target = { channel: "env:e1:logs" } as ResolvedChannel;
const event = (offset: number, epoch = "E"): PendingEvent => ({ offset, epoch, packet: `42["event",${offset}]` });
const offsets = (events: readonly PendingEvent[] | undefined) => (events ?? []).map((e) => e.offset);

/** A subscription that answered at (E, offset) and went live. */
function live(offset = 5): Subscription {
  const sub = new Subscription(target);
  sub.restart();
  sub.at("E", offset);
  assert.deepEqual(sub.goLive(), []);
  return sub;
}

describe("Subscription", () => {
  it("syncing: holds live events, then hands them over in offset order when it goes live", () => {
    const sub = new Subscription(target);
    assert.equal(sub.restart(), 1);
    assert.equal(sub.state, "syncing");
    assert.equal(sub.offer(event(8)), "held");
    assert.equal(sub.offer(event(6)), "held");
    assert.equal(sub.offer(event(7)), "held");
    sub.at("E", 5);
    assert.deepEqual(offsets(sub.goLive()), [6, 7, 8]);
    assert.equal(sub.state, "live");
    assert.equal(sub.pending, undefined);
  });

  it("live: writes the next event, skips what the socket has, holds a gap to fill from history", () => {
    const sub = live(5);
    assert.equal(sub.offer(event(6)), "write");
    sub.sent(6);
    assert.equal(sub.offset, 6);
    assert.equal(sub.offer(event(6)), "skip", "a duplicate");
    assert.equal(sub.offer(event(3)), "skip", "older");
    assert.equal(sub.offer(event(9)), "fill", "a gap");
    assert.deepEqual(offsets(sub.pending), [9]);
  });

  it("live: an event of another epoch means the channel's history was lost", () => {
    assert.equal(live().offer(event(6, "F")), "history_lost");
  });

  it("paused: skips everything, also a pause while syncing; resume syncs once, and only from paused", () => {
    const sub = live(5);
    sub.pause();
    assert.equal(sub.offer(event(6)), "skip");
    assert.equal(sub.beginSync(), false, "a catch-up scheduled before the pause does not run");
    assert.equal(sub.resume(), true);
    assert.equal(sub.state, "syncing");
    assert.equal(sub.resume(), false, "not paused any more");

    const syncing = new Subscription(target);
    syncing.restart();
    syncing.offer(event(1));
    syncing.pause();
    assert.deepEqual(syncing.goLive(), [], "a paused sync ends without delivering: resume replays from history");
    assert.equal(syncing.state, "paused");
    assert.equal(syncing.pending, undefined);
  });

  it("conflated: the newest event held back replaces older ones and counts them; a sync drops it", () => {
    const sub = live(5);
    sub.conflate(event(6));
    assert.equal(sub.offer(event(7)), "skip");
    assert.equal(sub.offer(event(9)), "skip");
    assert.equal(sub.offer(event(8)), "skip", "older than the one held");
    assert.equal(sub.conflated?.event.offset, 9);
    assert.equal(sub.conflated?.skipped, 2);
    sub.pause();
    assert.equal(sub.takeConflated(), undefined, "only a live subscription gets it");
    sub.resume();
    sub.goLive();
    assert.equal(sub.conflated, undefined, "the sync read the channel past it");
    sub.conflate(event(10));
    assert.equal(sub.takeConflated()?.event.offset, 10);
    assert.equal(sub.conflated, undefined);
  });

  it("restart: a new generation, back to syncing, nothing pending; holdAgain keeps what a gap interrupted", () => {
    const sub = live(5);
    sub.offer(event(9));
    assert.equal(sub.restart(), 2);
    assert.equal(sub.state, "syncing");
    assert.equal(sub.pending, undefined);
    sub.holdAgain([event(10), event(11)]);
    assert.deepEqual(offsets(sub.pending), [10, 11]);
  });
});

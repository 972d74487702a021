/**
 * A socket's subscription to one channel, and the one owner of its states (no I/O here:
 * Delivery and the handlers act on what it answers):
 *
 * - `syncing`: reading history (a subscribe, a resume, a gap being filled); live events wait
 *   in `pending` and follow in offset order once it goes live;
 * - `live`: the next event (offset + 1, same epoch) is written; older ones are duplicates;
 *   a newer one is a gap, filled from history;
 * - `paused`: nothing is delivered; a resume catches up from `offset`;
 * - conflated (while live): a slow client's newest event held back, replacing the one before.
 *
 * `offset` is the last offset this socket has been sent; `generation` tells a (re)subscribe
 * that a later one replaced it while it awaited Redis.
 */
import type { ResolvedChannel } from "../channels/channel-registry.js";
import type { ChannelEvent } from "../contracts/events.js";
import type { CompiledFilter } from "./log-filter.js";

/** One delivery waiting in a subscription's buffer. */
export interface PendingEvent {
  offset: number;
  epoch: string;
  /** The Socket.IO packet, encoded once per replica. */
  packet: string;
  /** Its WebSocket message, framed once per replica. */
  frame?: Buffer | undefined;
  /** The event, parsed once per replica for the subscriptions that filter it. */
  parsed?: ChannelEvent;
}

export type SubscriptionState = "syncing" | "live" | "paused";

/**
 * What to do with a live event: `write` it (it is the next one); it was `held` (syncing, or a
 * gap); `skip` it (paused, a duplicate, or conflated); the gap must be `fill`ed from history
 * (the event waits in `pending`); or the channel's `history_lost` (another epoch).
 */
export type Verdict = "write" | "held" | "skip" | "fill" | "history_lost";

export class Subscription {
  epoch = "";
  offset = 0;
  state: SubscriptionState = "syncing";
  /** Created when the first event has to wait (most subscriptions never need it). */
  pending: PendingEvent[] | undefined = undefined;
  generation = 0;
  /** Conflating channels of a slow consumer: the newest event held back, and how many it replaced. */
  conflated: { event: PendingEvent; skipped: number } | undefined = undefined;
  /** Narrows the lines of log events (subscribe `filter`, control `filter`). */
  filter: CompiledFilter | undefined = undefined;

  constructor(readonly target: ResolvedChannel) {}

  /** A (re)subscribe starts: syncing from scratch; its generation. */
  restart(): number {
    this.state = "syncing";
    this.pending = undefined;
    return ++this.generation;
  }

  /** A subscribe's read answered: the socket has everything up to this position. */
  at(epoch: string, offset: number): void {
    this.epoch = epoch;
    this.offset = offset;
  }

  /** Stops delivery, also while syncing (the sync stops at its end). */
  pause(): void {
    this.state = "paused";
  }

  /** True when it was paused: it now syncs, and the caller catches it up from history. */
  resume(): boolean {
    if (this.state !== "paused") return false;
    this.state = "syncing";
    return true;
  }

  /** A catch-up from history begins; false when paused (a pause that came in after the resume wins). */
  beginSync(): boolean {
    if (this.state === "paused") return false;
    this.state = "syncing";
    return true;
  }

  /** Decides a live event's fate; holds it where it must wait. */
  offer(event: PendingEvent): Verdict {
    if (this.state === "syncing") {
      (this.pending ??= []).push(event);
      return "held";
    }
    if (this.state === "paused") return "skip";
    if (event.epoch !== this.epoch) return "history_lost";
    if (event.offset <= this.offset) return "skip";
    if (this.conflated) {
      // Still behind: the newest state replaces the one held back.
      if (event.offset > this.conflated.event.offset) this.conflated = { event, skipped: this.conflated.skipped + 1 };
      return "skip";
    }
    if (event.offset > this.offset + 1) {
      (this.pending ??= []).push(event);
      return "fill";
    }
    return "write";
  }

  /** A slow client: this event is held back; newer ones replace it (offer) until it is taken. */
  conflate(event: PendingEvent): void {
    this.conflated = { event, skipped: 0 };
  }

  /** The event held back for a slow client that has read its backlog, if any and if live. */
  takeConflated(): { event: PendingEvent; skipped: number } | undefined {
    const held = this.conflated;
    if (!held || this.state !== "live") return undefined;
    this.conflated = undefined;
    return held;
  }

  /** The event was written to the socket. */
  sent(offset: number): void {
    this.offset = offset;
  }

  /**
   * Ends a sync: live again, with the events that waited, in offset order, to offer one by
   * one (none when paused: a resume replays them from history). A conflated event is dropped:
   * the sync read the channel past it.
   */
  goLive(): PendingEvent[] {
    const pending = this.pending ?? [];
    this.pending = undefined;
    this.conflated = undefined;
    if (this.state === "paused") return [];
    this.state = "live";
    return pending.sort((a, b) => a.offset - b.offset);
  }

  /** While flushing goLive()'s events a gap sent it back to syncing: these wait for that catch-up. */
  holdAgain(events: readonly PendingEvent[]): void {
    (this.pending ??= []).push(...events);
  }
}

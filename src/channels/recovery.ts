/**
 * What a subscriber gets when it (re)subscribes: the events after its `since`, or the last
 * n, and whether the recovery was complete (docs/protocol.md, "Requests").
 */
import type { ChannelEvent } from "../contracts/events.js";
import type { ResolvedChannel } from "./channel-registry.js";
import type { ChannelStore } from "./channel-store.js";

export interface SubscribePosition {
  /** Where the subscription stands: the last event of the answer, or the channel's newest offset. */
  offset: number;
  epoch: string;
  recovered: boolean;
  events: ChannelEvent[];
  snapshot: unknown;
  /** The byte bound cut the recovery: the events after `offset` follow, caught up from history. */
  more: boolean;
}

export interface Since {
  offset: number;
  epoch: string;
}

/** True when history still holds every event after `since`. */
export function canRecover(since: Since, epoch: string, top: number, first: number): boolean {
  if (since.epoch !== epoch || since.offset > top) return false;
  return since.offset === top || (first > 0 && since.offset >= first - 1);
}

/**
 * One read either way: with `since`, the events after it when history still holds all of them
 * in that epoch (checked in Redis before anything is read), else the last `history` events.
 */
export async function readPosition(
  store: ChannelStore,
  target: ResolvedChannel,
  request: { since?: Since | undefined; history?: number | undefined },
): Promise<SubscribePosition> {
  const { since, history = 0 } = request;
  const read = since
    ? await store.read(target, { since: since.offset, epoch: since.epoch, fallback: history })
    : await store.read(target, { last: history });
  const more = read.recovered && read.more;
  return {
    offset: more ? read.events.at(-1)!.offset : read.top,
    epoch: read.epoch,
    recovered: read.recovered,
    events: read.events,
    snapshot: read.snapshot,
    more,
  };
}

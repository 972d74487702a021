/**
 * What a subscriber gets when it (re)subscribes: the events after its `since`, or the last
 * n, and whether the recovery was complete (PROTOCOL.md section 3).
 */
import type { ChannelEvent } from "../contracts/events.js";
import type { ResolvedChannel } from "./channel-registry.js";
import type { ChannelStore } from "./channel-store.js";

export interface SubscribePosition {
  offset: number;
  epoch: string;
  recovered: boolean;
  events: ChannelEvent[];
  snapshot: unknown;
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

export async function readPosition(
  store: ChannelStore,
  target: ResolvedChannel,
  request: { since?: Since | undefined; history?: number | undefined },
): Promise<SubscribePosition> {
  const { since, history = 0 } = request;
  if (since) {
    // Everything after `since` in one consistent read: history is capped, so this is bounded.
    const read = await store.read(target, { since: since.offset });
    if (canRecover(since, read.epoch, read.top, read.first)) {
      return { offset: read.top, epoch: read.epoch, recovered: true, events: read.events, snapshot: read.snapshot };
    }
  }
  const read = await store.read(target, { last: history });
  return { offset: read.top, epoch: read.epoch, recovered: false, events: read.events, snapshot: read.snapshot };
}

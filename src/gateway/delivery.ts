/**
 * Puts channel events on each subscriber's wire in offset order, exactly once: buffers
 * them while the subscription reads history, drops what the socket already has, and
 * fills a gap (a pub/sub message lost to a Redis reconnect) from history.
 */
import type { Logger } from "pino";
import { WebSocket } from "ws";
import { roomOf } from "../channels/channel-keys.js";
import type { ChannelStore } from "../channels/channel-store.js";
import { canRecover } from "../channels/recovery.js";
import type { ChannelMessage } from "../cluster/channel-feed.js";
import type { ChannelEvent } from "../contracts/events.js";
import type { PendingEvent, RoomcastServer, RoomcastSocket, Subscription } from "./types.js";

/** Socket.IO EVENT packet for namespace "/": `2["event",<json>]`. */
export function eventPacket(json: string): string {
  return `2["event",${json}]`;
}

interface WriteOptions {
  wsPreEncodedFrame?: unknown;
}

// ws exposes Sender.frame; Socket.IO uses it the same way to frame a broadcast once.
const frame = (WebSocket as unknown as { Sender?: { frame?: (data: Buffer, opts: object) => unknown } }).Sender?.frame;

export class Delivery {
  constructor(
    private readonly io: RoomcastServer,
    private readonly store: ChannelStore,
    private readonly log: Logger,
  ) {}

  /** From the feed: one channel event for the sockets of its room on this replica. */
  onChannelMessage(channel: string, message: ChannelMessage): void {
    const socketIds = this.io.of("/").adapter.rooms.get(roomOf(channel));
    if (!socketIds || socketIds.size === 0) return;
    const event: PendingEvent = { offset: message.offset, epoch: message.epoch, packet: eventPacket(message.json) };
    const options: WriteOptions = {};
    if (frame && socketIds.size > 1) {
      // Frame the WebSocket message once for every subscriber, as Socket.IO's broadcast does.
      options.wsPreEncodedFrame = frame(Buffer.from("4" + event.packet), { readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true });
    }
    const sockets = this.io.of("/").sockets;
    for (const id of socketIds) {
      const socket = sockets.get(id);
      const subscription = socket?.data.subscriptions.get(channel);
      if (socket && subscription) this.offer(socket, subscription, event, options);
    }
  }

  /** Sends the event if it is the next one for this subscription; buffers, drops or resyncs otherwise. */
  offer(socket: RoomcastSocket, sub: Subscription, event: PendingEvent, options: WriteOptions = {}): void {
    if (sub.state === "syncing") {
      sub.pending.push(event);
      return;
    }
    if (sub.state === "paused") return;
    if (event.epoch !== sub.epoch) {
      // History was lost and restarted: follow the new generation from its start.
      sub.epoch = event.epoch;
      sub.offset = 0;
    }
    if (event.offset <= sub.offset) return;
    if (event.offset > sub.offset + 1) {
      sub.pending.push(event);
      void this.resync(socket, sub);
      return;
    }
    sub.offset = event.offset;
    socket.conn.write(event.packet, options as object);
  }

  /**
   * Catches a subscription up from history (after a gap, or on resume), then delivers what
   * arrived meanwhile. An unfillable gap is announced with `lag`, never silent.
   */
  async resync(socket: RoomcastSocket, sub: Subscription): Promise<void> {
    // A pause that came in after the resume which scheduled this sync wins.
    if (sub.state === "paused") return;
    sub.state = "syncing";
    const generation = sub.generation;
    const channel = sub.target.channel;
    try {
      const read = await this.store.read(sub.target, { since: sub.offset });
      if (socket.data.subscriptions.get(channel) !== sub || sub.generation !== generation) return;
      // Paused while reading: the next resume replays from sub.offset.
      if ((sub.state as Subscription["state"]) === "paused") return;
      if (read.epoch !== sub.epoch) {
        sub.epoch = read.epoch;
        sub.offset = 0;
      }
      if (!canRecover({ offset: sub.offset, epoch: sub.epoch }, read.epoch, read.top, read.first)) {
        const resumeAt = read.events[0]?.offset ?? read.top + 1;
        socket.emit("lag", { channel, skipped: Math.max(resumeAt - sub.offset - 1, 0), offset: resumeAt - 1 });
        sub.offset = resumeAt - 1;
      }
      this.sendEvents(socket, sub, read.events);
    } catch (err) {
      this.log.warn({ err, channel }, "history read failed while catching up a subscription");
    }
    if (socket.data.subscriptions.get(channel) === sub && sub.generation === generation) this.goLive(socket, sub);
  }

  /**
   * After the pub/sub connection came back: messages published while it was away are lost
   * to it, so every live subscription on this replica catches up from history.
   */
  resyncAll(): void {
    for (const socket of this.io.of("/").sockets.values()) {
      for (const sub of socket.data.subscriptions.values()) {
        if (sub.state === "live") void this.resync(socket, sub);
      }
    }
  }

  /** Sends history events the socket has not had yet. */
  sendEvents(socket: RoomcastSocket, sub: Subscription, events: readonly ChannelEvent[]): void {
    for (const event of events) {
      if (event.offset <= sub.offset) continue;
      sub.offset = event.offset;
      socket.conn.write(eventPacket(JSON.stringify(event)));
    }
  }

  /** Ends a sync: flushes the buffered live events in order. */
  goLive(socket: RoomcastSocket, sub: Subscription): void {
    const pending = sub.pending;
    sub.pending = [];
    if (sub.state === "paused") return;
    sub.state = "live";
    pending.sort((a, b) => a.offset - b.offset);
    for (let i = 0; i < pending.length; i++) {
      if (sub.state !== "live") {
        // A gap sent it back to syncing: the rest waits for that catch-up.
        sub.pending.push(...pending.slice(i));
        return;
      }
      this.offer(socket, sub, pending[i]!);
    }
  }
}

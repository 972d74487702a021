/**
 * Puts channel events on each subscriber's wire in offset order, exactly once: buffers
 * them while the subscription reads history, drops what the socket already has, and
 * fills a gap (a pub/sub message lost to a Redis reconnect) from history. A slow consumer
 * (too much buffered for it) gets only the newest event and a `lag` notice on conflating
 * channels, and `closing 4008` on reliable ones, so that it reconnects and recovers.
 */
import type { Logger } from "pino";
import { roomOf } from "../channels/channel-keys.js";
import type { ChannelStore } from "../channels/channel-store.js";
import type { ChannelClosed, ChannelMessage } from "../channels/channel-feed.js";
import type { Config } from "../config/load-config.js";
import { ERROR_CODES } from "../contracts/error-codes.js";
import type { ChannelEvent } from "../contracts/events.js";
import type { GatewayMetrics } from "../metrics/metrics.js";
import { closeConnection } from "./close-connection.js";
import { filterEvent } from "./log-filter.js";
import { eventJsonOf, eventPacket, framed, presencePacket, writePacket } from "./wire.js";
import type { PendingEvent, Subscription } from "./subscription.js";
import type { RoomcastServer, RoomcastSocket } from "./types.js";

/** The event's `ts` (publish time), read without parsing: the first `,"ts":` is ours (type and id cannot hold quotes). */
function publishTime(json: string): number {
  const at = json.indexOf(',"ts":');
  return at < 0 ? 0 : parseInt(json.slice(at + 6, at + 26), 10) || 0;
}

/** The packet this subscription gets: the shared one, or, under a filter, its own. */
function packetFor(sub: Subscription, event: PendingEvent): string {
  if (!sub.filter) return event.packet;
  const parsed = (event.parsed ??= JSON.parse(eventJsonOf(event.packet)) as ChannelEvent);
  const out = filterEvent(parsed, sub.filter);
  return out === parsed ? event.packet : eventPacket(JSON.stringify(out));
}

/** Writes the event to a subscriber: the shared framed message, or, under a filter, its own packet. */
function writeEvent(socket: RoomcastSocket, sub: Subscription, event: PendingEvent): void {
  const packet = packetFor(sub, event);
  writePacket(socket, packet, packet === event.packet ? event.frame : undefined);
}

/** What engine.io and ws hold for a connection that the client has not read yet. */
interface Buffered {
  writeBuffer?: EnginePacket[];
  /** websocket: the ws socket; polling: none. */
  transport?: { socket?: { bufferedAmount?: number } };
}

interface EnginePacket {
  data?: unknown;
}

function packetBytes(packet: EnginePacket): number {
  const data = packet.data;
  return typeof data === "string" ? data.length : data instanceof Uint8Array ? data.byteLength : 0;
}

/**
 * The bytes in engine.io's write buffer. The buffer only grows until a flush replaces it with
 * a new array, so the sum is kept per buffer and only new packets are added: no listener on
 * every connection, and no rescan.
 */
function queuedBytes(socket: RoomcastSocket, buffer: EnginePacket[]): number {
  let scan = socket.data.queueScan;
  if (!scan || scan.buffer !== buffer) socket.data.queueScan = scan = { buffer, scanned: 0, bytes: 0 };
  for (; scan.scanned < buffer.length; scan.scanned++) scan.bytes += packetBytes(buffer[scan.scanned]!);
  return scan.bytes;
}

/** Ends a subscription and tells the client why (set by the gateway). */
export type EndSubscription = (socket: RoomcastSocket, channel: string, code: number, reason: string) => void;

const CONFLATED_FLUSH_MS = 50;
/** How long a catch-up from history waits for a client to read what it was sent before giving up on it. */
const CATCH_UP_PATIENCE_MS = 10_000;

export class Delivery {
  private readonly flushing = new WeakSet<RoomcastSocket>();
  /** The newest event of each channel this replica handed to its subscribers. */
  private readonly seen = new Map<string, { offset: number; epoch: string }>();

  constructor(
    private readonly io: RoomcastServer,
    private readonly store: ChannelStore,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly endSubscription: EndSubscription,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** Whether more is buffered for this client than the slow-consumer limits allow. */
  isSlow(socket: RoomcastSocket): boolean {
    const conn = socket.conn as unknown as Buffered;
    const { slowConsumerPackets: packets, slowConsumerBytes: bytes } = this.config;
    const buffer = conn.writeBuffer ?? [];
    if (packets > 0 && buffer.length >= packets) return true;
    if (bytes <= 0) return false;
    if (buffer.length === 0) {
      socket.data.queueScan = undefined;
      return (conn.transport?.socket?.bufferedAmount ?? 0) >= bytes;
    }
    return queuedBytes(socket, buffer) + (conn.transport?.socket?.bufferedAmount ?? 0) >= bytes;
  }

  /** Writes a live event, unless the client is too slow for it. */
  private write(socket: RoomcastSocket, sub: Subscription, event: PendingEvent): boolean {
    // A connection being closed (moved off, its `closing` sent) gets nothing more.
    if (socket.conn.readyState !== "open") return false;
    if (!this.isSlow(socket)) {
      sub.sent(event.offset);
      writeEvent(socket, sub, event);
      return true;
    }
    if (sub.target.policy === "conflate") {
      sub.conflate(event);
      this.flushConflatedLater(socket);
    } else {
      this.cutSlowConsumer(socket, `a live event of ${sub.target.channel}`);
    }
    return false;
  }

  /** Once the client has read its backlog: `lag`, then the newest state of each conflated channel. */
  private flushConflatedLater(socket: RoomcastSocket): void {
    if (this.flushing.has(socket)) return;
    this.flushing.add(socket);
    const check = () => {
      if (!socket.connected) return;
      if (this.isSlow(socket)) {
        setTimeout(check, CONFLATED_FLUSH_MS);
        return;
      }
      this.flushing.delete(socket);
      for (const sub of socket.data.subscriptions.values()) {
        const held = sub.takeConflated();
        if (!held) continue;
        const skipped = held.event.offset - sub.offset - 1;
        if (skipped > 0) {
          // `offset` is the last one skipped, as after any gap: the next event is offset + 1.
          socket.emit("lag", { channel: sub.target.channel, skipped, offset: held.event.offset - 1 });
          this.metrics.lagNotices.inc();
        }
        sub.sent(held.event.offset);
        writeEvent(socket, sub, held.event);
        this.metrics.delivered.inc({ namespace: sub.target.namespace });
      }
    };
    setTimeout(check, CONFLATED_FLUSH_MS);
  }

  /**
   * An event this replica published, as soon as Redis answered: its subscribers here get it at
   * once, without waiting for the feed to bring it back, when it is the next one this replica
   * has seen of the channel (an earlier event published elsewhere may still be on its way on
   * the feed: then the feed delivers both, in order).
   */
  onLocalPublish(channel: string, message: ChannelMessage): void {
    const seen = this.seen.get(channel);
    if (seen && seen.epoch === message.epoch && seen.offset === message.offset - 1)
      this.onChannelMessage(channel, message);
  }

  /** From the feed (or a local publish): one channel event for the sockets of its room on this replica. */
  onChannelMessage(channel: string, message: ChannelMessage): void {
    const socketIds = this.io.of("/").adapter.rooms.get(roomOf(channel));
    if (!socketIds || socketIds.size === 0) {
      this.seen.delete(channel);
      return;
    }
    // Delivered already (the local copy of an event published here): the feed's copy is skipped.
    const seen = this.seen.get(channel);
    if (seen && seen.epoch === message.epoch && message.offset <= seen.offset) return;
    if (seen && seen.epoch === message.epoch) seen.offset = message.offset;
    else this.seen.set(channel, { offset: message.offset, epoch: message.epoch });
    // Encoded once and framed once per replica, for every subscriber here.
    const packet = eventPacket(message.json);
    const event: PendingEvent = { offset: message.offset, epoch: message.epoch, packet, frame: framed(packet) };
    const sockets = this.io.of("/").sockets;
    let written = 0;
    for (const id of socketIds) {
      const socket = sockets.get(id);
      const subscription = socket?.data.subscriptions.get(channel);
      if (socket && subscription && this.offer(socket, subscription, event)) written++;
    }
    // Measured once per event and replica, not per socket, to keep the hot path cheap.
    if (written > 0) {
      this.metrics.delivered.inc({ namespace: channel.slice(0, channel.indexOf(":")) }, written);
      this.metrics.fanout.observe(written);
      const ts = publishTime(message.json);
      if (ts > 0) this.metrics.deliveryLatency.observe(Math.max(Date.now() - ts, 0) / 1000);
    }
  }

  /**
   * From the feed: a join or leave (namespaces with joinLeave), for the channel's subscribers
   * here that are not paused. Not an event: no offset, not in history, not caught up after a
   * gap; a client too slow for it goes without (a `presence` request reads the current state).
   */
  onPresence(channel: string, json: string): void {
    const socketIds = this.io.of("/").adapter.rooms.get(roomOf(channel));
    if (!socketIds || socketIds.size === 0) return;
    const packet = presencePacket(json);
    const frame = framed(packet);
    const sockets = this.io.of("/").sockets;
    for (const id of socketIds) {
      const socket = sockets.get(id);
      const sub = socket?.data.subscriptions.get(channel);
      if (!socket || !sub || sub.state === "paused" || socket.conn.readyState !== "open" || this.isSlow(socket))
        continue;
      writePacket(socket, packet, frame);
    }
  }

  /** The channel has no subscriber here any more. */
  forget(channel: string): void {
    this.seen.delete(channel);
  }

  /** From the feed: the channel ended (a finished job's retention ran out): its subscriptions here end. */
  onChannelClosed(channel: string, closed: ChannelClosed): void {
    const socketIds = this.io.of("/").adapter.rooms.get(roomOf(channel));
    const sockets = this.io.of("/").sockets;
    for (const id of [...(socketIds ?? [])]) {
      const socket = sockets.get(id);
      if (socket) this.endSubscription(socket, channel, closed.code, closed.reason);
    }
  }

  /**
   * Sends the event if it is the next one for this subscription; buffers, drops or resyncs
   * otherwise. True when it was written.
   */
  offer(socket: RoomcastSocket, sub: Subscription, event: PendingEvent): boolean {
    const verdict = sub.offer(event);
    if (verdict === "write") return this.write(socket, sub, event);
    if (verdict === "fill") void this.resync(socket, sub);
    else if (verdict === "history_lost") this.historyLost(socket, sub);
    return false;
  }

  /**
   * Catches a subscription up from history (after a gap, on resume, or after a subscribe answer
   * the byte bound cut), then delivers what arrived meanwhile. A long catch-up goes at the
   * client's pace: each part is read once the one before was written out. An unfillable gap
   * is announced with `lag`, never silent.
   */
  async resync(socket: RoomcastSocket, sub: Subscription): Promise<void> {
    // A pause that came in after the resume which scheduled this sync wins.
    if (!sub.beginSync()) return;
    const generation = sub.generation;
    const channel = sub.target.channel;
    const current = () => socket.data.subscriptions.get(channel) === sub && sub.generation === generation;
    try {
      for (;;) {
        const read = await this.store.read(sub.target, { since: sub.offset, epoch: sub.epoch });
        // Ended, replaced, or paused while reading (the next resume replays from sub.offset).
        if (!current() || (sub.state as Subscription["state"]) === "paused") return;
        if (read.epoch !== sub.epoch) {
          this.historyLost(socket, sub);
          return;
        }
        if (!read.recovered) {
          const resumeAt = read.events[0]?.offset ?? read.top + 1;
          socket.emit("lag", { channel, skipped: Math.max(resumeAt - sub.offset - 1, 0), offset: resumeAt - 1 });
          this.metrics.lagNotices.inc();
          sub.sent(resumeAt - 1);
        }
        this.sendEvents(socket, sub, read.events);
        if (!read.more) break;
        if (!(await this.drained(socket)) || !current()) return;
      }
    } catch (err) {
      this.log.warn({ err, channel }, "history read failed while catching up a subscription");
    }
    if (current()) this.goLive(socket, sub);
  }

  /** Resolves true once what is queued for the socket is under the slow-consumer limits; false if it was cut or left. */
  async drained(socket: RoomcastSocket): Promise<boolean> {
    const deadline = Date.now() + CATCH_UP_PATIENCE_MS;
    while (socket.connected && socket.conn.readyState === "open" && this.isSlow(socket)) {
      if (Date.now() > deadline) {
        this.cutSlowConsumer(socket, "catching up");
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, CONFLATED_FLUSH_MS));
    }
    return socket.connected && socket.conn.readyState === "open";
  }

  /**
   * Closes a client that does not read what is queued for it (`closing 4008 slow_consumer`,
   * moved off at the transport level: it reconnects and recovers with `since`).
   */
  cutSlowConsumer(socket: RoomcastSocket, during: string): void {
    if (socket.conn.readyState !== "open") return;
    this.log.info({ connectionId: socket.data.connectionId, during }, "slow consumer disconnected");
    this.metrics.slowConsumerDisconnects.inc();
    closeConnection(socket, "slow_consumer", Math.floor(Math.random() * 1000));
  }

  /**
   * After the pub/sub connection came back: messages published while it was away are lost
   * to it, so every live subscription on this replica catches up from history, or, where
   * the channel's epoch changed, is ended with `unsubscribed` (4503 history_lost).
   */
  resyncAll(): void {
    for (const socket of this.io.of("/").sockets.values()) {
      for (const sub of socket.data.subscriptions.values()) {
        if (sub.state === "live") void this.resync(socket, sub);
      }
    }
  }

  /**
   * The channel moved to a new epoch under a live subscription: its history was lost or
   * restarted (expiry, a Redis restart, a failover), and events may be gone. The subscription
   * ends with `unsubscribed` 4503 history_lost; the client resubscribes with `since`, is told
   * `recovered: false` and reloads its state.
   */
  private historyLost(socket: RoomcastSocket, sub: Subscription): void {
    this.endSubscription(socket, sub.target.channel, ERROR_CODES.history_lost.code, "history_lost");
  }

  /** Sends history events the socket has not had yet. */
  sendEvents(socket: RoomcastSocket, sub: Subscription, events: readonly ChannelEvent[]): void {
    if (socket.conn.readyState !== "open") return;
    let written = 0;
    for (const event of events) {
      if (event.offset <= sub.offset) continue;
      sub.sent(event.offset);
      writePacket(socket, eventPacket(JSON.stringify(filterEvent(event, sub.filter))));
      written++;
    }
    if (written > 0) this.metrics.delivered.inc({ namespace: sub.target.namespace }, written);
  }

  /** Ends a sync: flushes the buffered live events in order. */
  goLive(socket: RoomcastSocket, sub: Subscription): void {
    const pending = sub.goLive();
    for (let i = 0; i < pending.length; i++) {
      if (sub.state !== "live") {
        // A gap sent it back to syncing: the rest waits for that catch-up.
        sub.holdAgain(pending.slice(i));
        return;
      }
      this.offer(socket, sub, pending[i]!);
    }
  }
}

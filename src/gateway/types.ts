import type { Server, Socket } from "socket.io";
import type { Principal } from "../auth/token-verifier.js";
import type { ResolvedChannel } from "../channels/channel-registry.js";
import type { ChannelEvent } from "../contracts/events.js";
import type { CompiledFilter } from "./log-filter.js";
import type { ClientToServerEvents, InterServerEvents, ServerToClientEvents } from "../contracts/events.js";

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

/**
 * A socket's subscription to one channel. `offset` is the last offset this socket has
 * been sent; while `syncing` (reading history) live events wait in `pending`.
 */
export interface Subscription {
  target: ResolvedChannel;
  epoch: string;
  offset: number;
  state: "syncing" | "live" | "paused";
  /** Created when the first event has to wait (most subscriptions never need it). */
  pending: PendingEvent[] | undefined;
  /** Bumped by each (re)subscribe, so a slower earlier one does not win. */
  generation: number;
  /** Conflating channels of a slow consumer: the newest event held back, and how many it replaced. */
  conflated?: { event: PendingEvent; skipped: number };
  /** Narrows the lines of log events (subscribe `filter`, control `filter`). */
  filter?: CompiledFilter;
}

export interface SocketData {
  principal: Principal;
  connectionId: string;
  /** The client's address (behind trusted proxies, the one they forwarded). */
  ip: string;
  subscriptions: Map<string, Subscription>;
  /** The cluster-wide quota sets this connection has an entry in (their keys). */
  quotaKeys: string[];
  /** Request token bucket (docs/protocol.md, "Limits"): tokens left, and when they were counted (ms). */
  tokens: number;
  tokensAt: number;
  /** Refused requests in the current abuse window (from the first refusal on). */
  refusals: { count: number; since: number } | undefined;
  /** The tail of its request queue (RequestRouter): requests run in the order sent. */
  requests?: Promise<void>;
  /** Its token's expiry second, while TokenExpiry tracks it. */
  expiresAt?: number | undefined;
  /** Bytes counted so far in engine.io's current write buffer (see Delivery.isSlow). */
  queueScan?: { buffer: unknown[]; scanned: number; bytes: number } | undefined;
}

export type RoomcastServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type RoomcastSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

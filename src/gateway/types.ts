import type { Server, Socket } from "socket.io";
import type { Principal } from "../auth/token-verifier.js";
import type { Subscription } from "./subscription.js";
import type { ClientToServerEvents, InterServerEvents, ServerToClientEvents } from "../contracts/events.js";

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

import type { Server, Socket } from "socket.io";
import type { Principal } from "../auth/token-verifier.js";
import type { ResolvedChannel } from "../channels/channel-registry.js";
import type { ClientToServerEvents, InterServerEvents, ServerToClientEvents } from "../contracts/events.js";

/** One delivery waiting in a subscription's buffer. */
export interface PendingEvent {
  offset: number;
  epoch: string;
  /** The Socket.IO packet, encoded once per replica. */
  packet: string;
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
  pending: PendingEvent[];
  /** Bumped by each (re)subscribe, so a slower earlier one does not win. */
  generation: number;
}

export interface SocketData {
  principal: Principal;
  connectionId: string;
  subscriptions: Map<string, Subscription>;
  expiryTimer?: NodeJS.Timeout;
}

export type RoomcastServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type RoomcastSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

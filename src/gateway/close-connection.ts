/**
 * Ending a connection on the server's initiative, the one way it is done (docs/protocol.md,
 * "Deliveries"): a `closing { code, reason, retryAfterMs }` notice, then the end.
 *
 * - Moving a client off this replica (drain, slow consumer, abuse, Redis link lost) closes
 *   the connection at the transport level: the client sees `transport close`, and a stock
 *   socket.io-client reconnects by itself (to another replica, through the load balancer).
 * - Ending it for good (an administrator's kick, an expired token) is a Socket.IO
 *   disconnect: socket.io-client does not reconnect after `io server disconnect`.
 */
import { ERROR_CODES } from "../contracts/error-codes.js";
import type { RoomcastSocket } from "./types.js";

export type CloseReason = "draining" | "slow_consumer" | "rate_limited" | "unavailable" | "kicked" | "token_expired";

/** The reasons after which the client must not simply come back. */
const FINAL: ReadonlySet<CloseReason> = new Set(["kicked", "token_expired"]);

/** How long a moved client gets to read its backlog and `closing` before its TCP connection is dropped. */
export const CLOSE_GRACE_MS = 5000;

/** What engine.io and ws hold for a connection: enough to drop one that never reads. */
interface EngineConnection {
  readyState: string;
  close(discard?: boolean): void;
  transport?: { socket?: { terminate?(): void } };
}

/** Sends `closing`, then ends the connection as its reason requires; idempotent. */
export function closeConnection(socket: RoomcastSocket, reason: CloseReason, retryAfterMs = 0): void {
  const conn = socket.conn as unknown as EngineConnection;
  if (!socket.connected || conn.readyState !== "open") return;
  socket.emit("closing", { code: ERROR_CODES[reason].code, reason, retryAfterMs });
  if (FINAL.has(reason)) {
    socket.disconnect(true);
    return;
  }
  // Closes once what is queued (the backlog, then `closing`) has been written.
  conn.close();
  // A client that never reads would keep that backlog, and the connection, forever.
  setTimeout(() => {
    if (conn.readyState === "closed") return;
    conn.close(true);
    conn.transport?.socket?.terminate?.();
  }, CLOSE_GRACE_MS).unref();
}

/**
 * Connections whose token expires without a refresh get `closing 4401 token_expired` and are
 * disconnected (docs/protocol.md, "Requests"). One timer per replica, not one per connection: sockets
 * are kept in buckets by their token's expiry second, and a sweep every second closes the due
 * ones (within a second of `exp`).
 */
import { closeConnection } from "./close-connection.js";
import type { RoomcastSocket } from "./types.js";

const SWEEP_MS = 1000;

export class TokenExpiry {
  private readonly buckets = new Map<number, Set<RoomcastSocket>>();
  /** The last second swept. */
  private swept = Math.floor(Date.now() / 1000);
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.timer.unref();
  }

  /** Closes the socket at `exp` (seconds since epoch), replacing an earlier expiry. */
  track(socket: RoomcastSocket, exp: number): void {
    this.untrack(socket);
    const second = Math.max(Math.floor(exp), this.swept + 1);
    let bucket = this.buckets.get(second);
    if (!bucket) this.buckets.set(second, (bucket = new Set()));
    bucket.add(socket);
    socket.data.expiresAt = second;
  }

  untrack(socket: RoomcastSocket): void {
    const second = socket.data.expiresAt;
    if (second === undefined) return;
    const bucket = this.buckets.get(second);
    if (bucket?.delete(socket) && bucket.size === 0) this.buckets.delete(second);
    socket.data.expiresAt = undefined;
  }

  private sweep(): void {
    const now = Math.floor(Date.now() / 1000);
    for (; this.swept < now;) {
      const second = ++this.swept;
      const due = this.buckets.get(second);
      if (!due) continue;
      this.buckets.delete(second);
      for (const socket of due) {
        socket.data.expiresAt = undefined;
        closeConnection(socket, "token_expired");
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/**
 * Per-connection request limits (docs/protocol.md, "Limits"), checked as each request arrives:
 * a token bucket (ROOMCAST_RATE_LIMIT per second, ROOMCAST_RATE_BURST) answered 4429
 * rate_limited with retryAfterMs, and the message size limit answered 4413 too_large.
 * A connection that keeps getting refused is closed (`closing 4429`).
 */
import type { Config } from "../config/load-config.js";
import { RoomcastError } from "../contracts/error-codes.js";
import { closeConnection } from "./close-connection.js";
import type { RoomcastSocket } from "./types.js";

const ABUSE_WINDOW_MS = 10_000;
const ABUSE_RETRY_AFTER_MS = 5_000;

/** Requests are JSON on the wire (the default parser): their UTF-8 JSON length is their size. */
function jsonBytes(args: readonly unknown[]): number {
  let json: string | undefined;
  try {
    json = JSON.stringify(args);
  } catch {
    // Nesting deep enough to exhaust the stack (Socket.IO's parser still took it).
    throw new RoomcastError("bad_request", "payload: nested too deeply", { field: "payload" });
  }
  return json === undefined ? 0 : Buffer.byteLength(json);
}

export class RequestLimits {
  /** Refusals within ABUSE_WINDOW_MS after which the connection is closed. */
  private readonly abuseThreshold: number;

  constructor(private readonly config: Config) {
    this.abuseThreshold = Math.max(config.rateBurst, 20);
  }

  /** Throws the refusal for a request that is over a limit; takes a token otherwise. */
  check(socket: RoomcastSocket, args: readonly unknown[]): void {
    const { rateLimit, rateBurst, maxMessageBytes } = this.config;
    if (rateLimit > 0) {
      const data = socket.data;
      const now = Date.now();
      data.tokens = Math.min(rateBurst, data.tokens + ((now - data.tokensAt) / 1000) * rateLimit);
      data.tokensAt = now;
      if (data.tokens < 1) {
        const retryAfterMs = Math.ceil(((1 - data.tokens) / rateLimit) * 1000);
        throw new RoomcastError("rate_limited", `more than ${rateLimit} requests per second`, { retryAfterMs });
      }
      data.tokens -= 1;
    }
    if (maxMessageBytes > 0) {
      const size = jsonBytes(args);
      if (size > maxMessageBytes)
        throw new RoomcastError("too_large", `request of ${size} bytes is over the limit of ${maxMessageBytes}`, {
          limit: maxMessageBytes,
        });
    }
  }

  /** Counts a refusal; true when the connection has been closed for abuse. */
  refused(socket: RoomcastSocket): boolean {
    const now = Date.now();
    const refusals = (socket.data.refusals ??= { count: 0, since: now });
    if (now - refusals.since > ABUSE_WINDOW_MS) {
      refusals.count = 0;
      refusals.since = now;
    }
    if (++refusals.count < this.abuseThreshold) return false;
    closeConnection(socket, "rate_limited", ABUSE_RETRY_AFTER_MS + Math.floor(Math.random() * ABUSE_RETRY_AFTER_MS));
    return true;
  }
}

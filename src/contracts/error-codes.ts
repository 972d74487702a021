/**
 * Every error code of docs/protocol.md, once: its reason, its HTTP status and a default message.
 * Handshake refusals, request acks, `failure` events and HTTP errors all come from here.
 */
export const ERROR_CODES = {
  bad_request: { code: 4400, status: 400, message: "bad request" },
  unauthorized: { code: 4401, status: 401, message: "missing or invalid token" },
  token_expired: { code: 4401, status: 401, message: "token expired" },
  forbidden: { code: 4403, status: 403, message: "not allowed" },
  kicked: { code: 4403, status: 403, message: "disconnected by an administrator" },
  not_found: { code: 4404, status: 404, message: "not found" },
  too_large: { code: 4413, status: 413, message: "payload too large" },
  rate_limited: { code: 4429, status: 429, message: "too many requests" },
  too_many_subscriptions: { code: 4429, status: 429, message: "too many subscriptions" },
  too_many_connections: { code: 4429, status: 429, message: "too many connections" },
  internal: { code: 4500, status: 500, message: "internal error" },
  unavailable: { code: 4503, status: 503, message: "service unavailable, retry elsewhere" },
  draining: { code: 4503, status: 503, message: "server is draining, reconnect elsewhere" },
  slow_consumer: { code: 4008, status: 503, message: "client too slow, reconnect and recover" },
  expired: { code: 4404, status: 404, message: "the channel expired (its job finished and its retention ended)" },
  history_lost: {
    code: 4503,
    status: 503,
    message: "the channel's history was lost; resubscribe with since and reload your state",
  },
} as const;

export type ErrorReason = keyof typeof ERROR_CODES;
export type ErrorCode = (typeof ERROR_CODES)[ErrorReason]["code"];

/** The error object of acks, `failure` events and HTTP error bodies. */
export interface ErrorBody {
  code: number;
  reason: ErrorReason;
  message: string;
  [detail: string]: unknown;
}

/** A failure meant for the client: its message is safe to show. */
export class RoomcastError extends Error {
  readonly reason: ErrorReason;
  readonly code: number;
  readonly status: number;
  readonly details: Record<string, unknown>;

  constructor(reason: ErrorReason, message?: string, details: Record<string, unknown> = {}) {
    const entry = ERROR_CODES[reason];
    super(message ?? entry.message);
    this.name = "RoomcastError";
    this.reason = reason;
    this.code = entry.code;
    this.status = entry.status;
    this.details = details;
  }

  toBody(): ErrorBody {
    return { code: this.code, reason: this.reason, message: this.message, ...this.details };
  }
}

/** Turns anything thrown into a client-safe error body: unknown errors never leak their text. */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof RoomcastError) return err.toBody();
  return new RoomcastError("internal").toBody();
}

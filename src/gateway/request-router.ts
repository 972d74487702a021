/**
 * Runs client requests (docs/protocol.md, "Requests"). As each request arrives it is checked
 * against the connection's limits (a refusal is answered at once, so a flood never queues);
 * admitted requests then run one after another, in the order sent, through their handler.
 * The answer goes to the ack, or, without one, an error goes out as a `failure` event.
 * Unknown events with an ack get 4400.
 */
import { failedBecauseRedis } from "../cluster/redis-clients.js";
import { RoomcastError, toErrorBody, type ErrorBody } from "../contracts/error-codes.js";
import { REQUEST_EVENTS, type RequestEvent } from "../contracts/events.js";
import type { GatewayContext } from "./context.js";
import type { RequestLimits } from "./request-limits.js";
import type { RoomcastSocket } from "./types.js";

export interface RequestScope {
  event: RequestEvent;
  /** Runs right after the answer is written (before any later write). */
  afterAnswer(fn: () => void): void;
}

export type RequestHandler = (
  ctx: GatewayContext,
  socket: RoomcastSocket,
  payload: unknown,
  request: RequestScope,
) => Promise<object>;

type Ack = (answer: unknown) => void;
type Result = { ok: true } | { ok: false; error: ErrorBody };

const KNOWN = new Set<string>(REQUEST_EVENTS);

function unknownEvent(event: string): ErrorBody {
  const name = String(event).slice(0, 64);
  return new RoomcastError("bad_request", `unknown event ${name}`, { event: name }).toBody();
}

function channelOf(payload: unknown): string | undefined {
  const channel = (payload as { channel?: unknown } | null)?.channel;
  return typeof channel === "string" ? channel.slice(0, 240) : undefined;
}

/** One per replica; connections share its one listener (their request queues are in socket.data). */
export class RequestRouter {
  /** Requests being handled on this replica; shutdown waits for them. */
  inFlight = 0;
  /** Socket.IO calls any-listeners with the socket as `this`: one function serves every connection. */
  private readonly listener: (this: RoomcastSocket, event: string, ...args: unknown[]) => void;

  constructor(
    private readonly ctx: GatewayContext,
    private readonly handlers: Record<RequestEvent, RequestHandler>,
    private readonly limits: RequestLimits,
  ) {
    const receive = (socket: RoomcastSocket, event: string, args: unknown[]) => this.receive(socket, event, args);
    this.listener = function (this: RoomcastSocket, event: string, ...args: unknown[]) {
      receive(this, event, args);
    };
  }

  attach(socket: RoomcastSocket): void {
    socket.onAny(this.listener);
  }

  private receive(socket: RoomcastSocket, event: string, args: unknown[]): void {
    const ack = typeof args[args.length - 1] === "function" ? (args.pop() as Ack) : undefined;
    if (!this.admit(socket, event, args, ack)) return;
    const handler = KNOWN.has(event) ? this.handlers[event as RequestEvent] : undefined;
    if (!handler) {
      if (ack) ack({ ok: false, error: unknownEvent(event) });
      return;
    }
    // One connection's requests run one after another, in the order sent: a `pause` right
    // behind its `subscribe`, or an `unsubscribe` behind a `subscribe`, sees it done.
    socket.data.requests = (socket.data.requests ?? Promise.resolve()).then(() =>
      this.run(socket, event as RequestEvent, handler, args[0], ack),
    );
  }

  private answer(socket: RoomcastSocket, event: string, payload: unknown, ack: Ack | undefined, result: Result): void {
    this.ctx.metrics.requests.inc({
      event: KNOWN.has(event) ? event : "unknown",
      outcome: result.ok ? "ok" : result.error.reason,
    });
    if (!socket.connected) return;
    if (ack) ack(result);
    else if (!result.ok) {
      const channel = channelOf(payload);
      socket.emit(
        "failure",
        channel === undefined ? { event, error: result.error } : { event, channel, error: result.error },
      );
    }
  }

  /** Limits first; true when the request may go on. */
  private admit(socket: RoomcastSocket, event: string, args: unknown[], ack: Ack | undefined): boolean {
    const { ctx, limits } = this;
    try {
      limits.check(socket, args);
      return true;
    } catch (err) {
      // An unknown event is answered as unknown unless it is over a limit (4413, 4429).
      const error =
        !KNOWN.has(event) && err instanceof RoomcastError && err.reason === "bad_request"
          ? unknownEvent(event)
          : toErrorBody(err);
      ctx.log.debug(
        { event, code: error.code, reason: error.reason, connectionId: socket.data.connectionId },
        "request over a limit",
      );
      if (error.reason === "rate_limited") ctx.metrics.rateLimited.inc({ kind: "socket" });
      const closed = limits.refused(socket);
      if (closed) ctx.metrics.rateLimited.inc({ kind: "abuse_close" });
      // An unknown event without ack is ignored (docs/protocol.md, "Requests"), refused or not.
      if (!closed && (ack || KNOWN.has(event))) this.answer(socket, event, args[0], ack, { ok: false, error });
      return false;
    }
  }

  private async run(
    socket: RoomcastSocket,
    event: RequestEvent,
    handler: RequestHandler,
    payload: unknown,
    ack: Ack | undefined,
  ): Promise<void> {
    const { ctx } = this;
    // Answers count toward the slow-consumer limits like events. A subscribe answer carries
    // history (up to ROOMCAST_MAX_READ_BYTES): it waits until the client has read what is
    // queued, and a client that reads nothing meanwhile is cut, so that a pile of history
    // requests cannot pile up answers here. Other answers are small (and rate-limited).
    if (socket.conn.readyState !== "open") return;
    if (event === "subscribe" && !(await ctx.delivery.drained(socket))) return;
    const after: (() => void)[] = [];
    const scope: RequestScope = { event, afterAnswer: (fn) => after.push(fn) };
    this.inFlight++;
    try {
      const result = await handler(ctx, socket, payload, scope);
      this.answer(socket, event, payload, ack, { ok: true, ...result });
    } catch (err) {
      const redisDown = failedBecauseRedis(err, ctx.isRedisUp());
      const error = redisDown ? new RoomcastError("unavailable").toBody() : toErrorBody(err);
      if (redisDown) ctx.log.warn({ err: (err as Error).message, event }, "refused: Redis unavailable");
      else if (!(err instanceof RoomcastError))
        ctx.log.error({ err, event, connectionId: socket.data.connectionId }, "request failed");
      else
        ctx.log.debug(
          { event, code: error.code, reason: error.reason, connectionId: socket.data.connectionId },
          "request refused",
        );
      this.answer(socket, event, payload, ack, { ok: false, error });
    } finally {
      this.inFlight--;
    }
    for (const fn of after) fn();
  }
}

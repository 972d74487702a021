/**
 * Runs client requests (PROTOCOL.md section 3). As each request arrives it is checked
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

/** Requests being handled on this replica; shutdown waits for them. */
let inFlight = 0;
export function requestsInFlight(): number {
  return inFlight;
}

function unknownEvent(event: string): ErrorBody {
  const name = String(event).slice(0, 64);
  return new RoomcastError("bad_request", `unknown event ${name}`, { event: name }).toBody();
}

function channelOf(payload: unknown): string | undefined {
  const channel = (payload as { channel?: unknown } | null)?.channel;
  return typeof channel === "string" ? channel.slice(0, 240) : undefined;
}

export function attachRequests(ctx: GatewayContext, socket: RoomcastSocket, handlers: Record<RequestEvent, RequestHandler>, limits: RequestLimits): void {
  const known = new Set<string>(REQUEST_EVENTS);
  // One connection's requests run one after another, in the order sent: a `pause` right
  // behind its `subscribe`, or an `unsubscribe` behind a `subscribe`, sees it done.
  let queue: Promise<void> = Promise.resolve();

  const answer = (event: string, payload: unknown, ack: Ack | undefined, result: { ok: true } | { ok: false; error: ErrorBody }) => {
    ctx.metrics.requests.inc({ event: known.has(event) ? event : "unknown", outcome: result.ok ? "ok" : result.error.reason });
    if (!socket.connected) return;
    if (ack) ack(result);
    else if (!result.ok) {
      const channel = channelOf(payload);
      socket.emit("failure", channel === undefined ? { event, error: result.error } : { event, channel, error: result.error });
    }
  };

  /** Limits first; true when the request may go on. */
  const admit = (event: string, args: unknown[], ack: Ack | undefined): boolean => {
    try {
      limits.check(socket, args);
      return true;
    } catch (err) {
      // An unknown event is answered as unknown unless it is over a limit (4413, 4429).
      const error = !known.has(event) && err instanceof RoomcastError && err.reason === "bad_request" ? unknownEvent(event) : toErrorBody(err);
      ctx.log.debug({ event, code: error.code, reason: error.reason, connectionId: socket.data.connectionId }, "request over a limit");
      if (error.reason === "rate_limited") ctx.metrics.rateLimited.inc({ kind: "socket" });
      const closed = limits.refused(socket);
      if (closed) ctx.metrics.rateLimited.inc({ kind: "abuse_close" });
      // An unknown event without ack is ignored (PROTOCOL.md section 3), refused or not.
      if (!closed && (ack || known.has(event))) answer(event, args[0], ack, { ok: false, error });
      return false;
    }
  };

  for (const event of REQUEST_EVENTS) {
    const handler = handlers[event];
    socket.on(event, ((...args: unknown[]) => {
      const ack = typeof args[args.length - 1] === "function" ? (args.pop() as Ack) : undefined;
      if (!admit(event, args, ack)) return;
      queue = queue.then(() => run(event, handler, args[0], ack));
    }) as never);
  }

  socket.onAny((event: string, ...args: unknown[]) => {
    if (known.has(event)) return;
    const ack = typeof args[args.length - 1] === "function" ? (args.pop() as Ack) : undefined;
    if (!admit(event, args, ack) || !ack) return;
    ack({ ok: false, error: unknownEvent(event) });
  });

  async function run(event: RequestEvent, handler: RequestHandler, payload: unknown, ack: Ack | undefined) {
    const after: (() => void)[] = [];
    const scope: RequestScope = { event, afterAnswer: (fn) => after.push(fn) };
    inFlight++;
    try {
      const result = await handler(ctx, socket, payload, scope);
      answer(event, payload, ack, { ok: true, ...result });
    } catch (err) {
      const redisDown = failedBecauseRedis(err, ctx.isRedisUp());
      const error = redisDown ? new RoomcastError("unavailable").toBody() : toErrorBody(err);
      if (redisDown) ctx.log.warn({ err: (err as Error).message, event }, "refused: Redis unavailable");
      else if (!(err instanceof RoomcastError)) ctx.log.error({ err, event, connectionId: socket.data.connectionId }, "request failed");
      else ctx.log.debug({ event, code: error.code, reason: error.reason, connectionId: socket.data.connectionId }, "request refused");
      answer(event, payload, ack, { ok: false, error });
    } finally {
      inFlight--;
    }
    for (const fn of after) fn();
  }
}

/**
 * Runs client requests (PROTOCOL.md section 3), in order per connection: each known event
 * goes through the request hooks (room for rate limits) and its handler; the answer goes to the ack, or, without
 * one, an error goes out as a `failure` event. Unknown events with an ack get 4400.
 */
import { isRedisUnavailable } from "../cluster/redis-clients.js";
import { RoomcastError, toErrorBody } from "../contracts/error-codes.js";
import { REQUEST_EVENTS, type RequestEvent } from "../contracts/events.js";
import type { GatewayContext } from "./context.js";
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

/** Checks run before every request, in order; throwing refuses it. */
export type RequestHook = (socket: RoomcastSocket, event: RequestEvent, payload: unknown) => void;

type Ack = (answer: unknown) => void;

function channelOf(payload: unknown): string | undefined {
  const channel = (payload as { channel?: unknown } | null)?.channel;
  return typeof channel === "string" ? channel.slice(0, 240) : undefined;
}

export function attachRequests(
  ctx: GatewayContext,
  socket: RoomcastSocket,
  handlers: Record<RequestEvent, RequestHandler>,
  hooks: readonly RequestHook[] = [],
): void {
  const known = new Set<string>(REQUEST_EVENTS);
  // One connection's requests run one after another, in the order sent: a `pause` right
  // behind its `subscribe`, or an `unsubscribe` behind a `subscribe`, sees it done.
  let queue: Promise<void> = Promise.resolve();
  for (const event of REQUEST_EVENTS) {
    const handler = handlers[event];
    socket.on(event, ((...args: unknown[]) => {
      const ack = typeof args[args.length - 1] === "function" ? (args.pop() as Ack) : undefined;
      queue = queue.then(() => run(event, handler, args[0], ack));
    }) as never);
  }

  socket.onAny((event: string, ...args: unknown[]) => {
    if (known.has(event)) return;
    const ack = args[args.length - 1];
    if (typeof ack === "function") {
      const name = String(event).slice(0, 64);
      ack({ ok: false, error: new RoomcastError("bad_request", `unknown event ${name}`, { event: name }).toBody() });
    }
  });

  async function run(event: RequestEvent, handler: RequestHandler, payload: unknown, ack: Ack | undefined) {
    const after: (() => void)[] = [];
    const scope: RequestScope = { event, afterAnswer: (fn) => after.push(fn) };
    let answer: unknown;
    try {
      for (const hook of hooks) hook(socket, event, payload);
      const result = await handler(ctx, socket, payload, scope);
      answer = { ok: true, ...result };
    } catch (err) {
      const redisDown = !(err instanceof RoomcastError) && (!ctx.isRedisUp() || isRedisUnavailable(err));
      const error = redisDown ? new RoomcastError("unavailable").toBody() : toErrorBody(err);
      if (redisDown) ctx.log.warn({ err: (err as Error).message, event }, "refused: Redis unavailable");
      else if (!(err instanceof RoomcastError)) ctx.log.error({ err, event, connectionId: socket.data.connectionId }, "request failed");
      else ctx.log.debug({ event, code: error.code, reason: error.reason, connectionId: socket.data.connectionId }, "request refused");
      answer = { ok: false, error };
      if (!ack && socket.connected) {
        const channel = channelOf(payload);
        socket.emit("failure", channel === undefined ? { event, error } : { event, channel, error });
      }
    }
    if (ack && socket.connected) ack(answer);
    for (const fn of after) fn();
  }
}

import { roomOf } from "../../channels/channel-keys.js";
import { readPosition } from "../../channels/recovery.js";
import { RoomcastError } from "../../contracts/error-codes.js";
import type { SubscribeOk } from "../../contracts/events.js";
import { subscribeSchema, parseOrThrow } from "../../contracts/schemas.js";
import type { GatewayContext } from "../context.js";
import type { RequestScope } from "../request-router.js";
import { compileFilter, filterEvent } from "../log-filter.js";
import { endSubscription } from "./unsubscribe.js";
import { Subscription } from "../subscription.js";
import type { RoomcastSocket } from "../types.js";

/**
 * Joins the room first, then reads history: live events that arrive meanwhile wait in the
 * subscription's buffer and follow the answer, so nothing is missed or sent twice.
 */
export async function subscribe(
  ctx: GatewayContext,
  socket: RoomcastSocket,
  payload: unknown,
  request: RequestScope,
): Promise<SubscribeOk> {
  const req = parseOrThrow(subscribeSchema, payload);
  const target = ctx.registry.resolve(req.channel);
  await ctx.registry.authorize(socket.data.principal, target, "subscribe");
  const subscriptions = socket.data.subscriptions;
  let sub = subscriptions.get(req.channel);
  let entered: Promise<void> | undefined;
  if (!sub) {
    const max = ctx.config.maxSubscriptions;
    if (max > 0 && subscriptions.size >= max) {
      throw new RoomcastError("too_many_subscriptions", `at most ${max} subscriptions per connection`, { limit: max });
    }
    await ctx.admission.enterEnvironment(socket, target);
    // The socket may have gone while authorization awaited Redis: joining now would leak the room.
    if (!socket.connected) {
      ctx.admission.leaveEnvironment(socket, target);
      throw new RoomcastError("bad_request", "connection closed");
    }
    sub = new Subscription(target);
    subscriptions.set(req.channel, sub);
    await socket.join(roomOf(req.channel));
    try {
      await ctx.feed.ready(req.channel);
    } catch {
      if (subscriptions.get(req.channel) === sub) endSubscription(ctx, socket, req.channel);
      throw new RoomcastError("unavailable", "cannot subscribe while Redis is unavailable; retry");
    }
    // Present before the answer (sent ahead of the history read, on the same Redis connection).
    // Should it fail, the subscription stands: the next presence round joins it again.
    if (target.settings.presence)
      entered = ctx.presence
        .enter(socket, target)
        .catch((err: unknown) => ctx.log.debug({ err, channel: req.channel }, "presence join failed"));
  }
  const generation = sub.restart();
  sub.filter = compileFilter(req.filter);
  let position;
  try {
    position = await readPosition(ctx.store, target, req);
    await entered;
  } catch (err) {
    if (subscriptions.get(req.channel) === sub && sub.generation === generation)
      endSubscription(ctx, socket, req.channel);
    throw err;
  }
  if (subscriptions.get(req.channel) !== sub || sub.generation !== generation) {
    throw new RoomcastError("bad_request", "subscription changed while subscribing (unsubscribed or subscribed again)");
  }
  if (req.since) ctx.metrics.recoveries.inc({ outcome: position.recovered ? "recovered" : "not_recovered" });
  sub.at(position.epoch, position.offset);
  const answer: SubscribeOk = {
    channel: req.channel,
    offset: position.offset,
    epoch: position.epoch,
    recovered: position.recovered,
    events: sub.filter ? position.events.map((event) => filterEvent(event, sub.filter)) : position.events,
  };
  if (position.snapshot !== undefined) answer.snapshot = position.snapshot;
  // The answer goes out first, then the live events that arrived while reading (or, when the
  // byte bound cut the recovery, the rest of it from history, then those).
  request.afterAnswer(() => {
    if (subscriptions.get(req.channel) !== sub || sub.generation !== generation) return;
    if (position.more) void ctx.delivery.resync(socket, sub);
    else ctx.delivery.goLive(socket, sub);
  });
  return answer;
}

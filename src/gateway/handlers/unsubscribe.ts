import { roomOf } from "../../channels/channel-keys.js";
import type { UnsubscribeOk } from "../../contracts/events.js";
import { parseOrThrow, unsubscribeSchema } from "../../contracts/schemas.js";
import type { GatewayContext } from "../context.js";
import type { RoomcastSocket } from "../types.js";

/** Leaving a channel one is not subscribed to is not an error. */
export async function unsubscribe(
  ctx: GatewayContext,
  socket: RoomcastSocket,
  payload: unknown,
): Promise<UnsubscribeOk> {
  const { channel } = parseOrThrow(unsubscribeSchema, payload);
  endSubscription(ctx, socket, channel);
  return { channel };
}

/** Drops a socket's subscription, leaves the room and, with its last channel, its environment. */
export function endSubscription(ctx: GatewayContext, socket: RoomcastSocket, channel: string): boolean {
  const sub = socket.data.subscriptions.get(channel);
  if (!sub) return false;
  socket.data.subscriptions.delete(channel);
  void socket.leave(roomOf(channel));
  if (sub.target.settings.presence) ctx.presence.leave(socket, channel);
  ctx.admission.leaveEnvironment(socket, sub.target);
  return true;
}

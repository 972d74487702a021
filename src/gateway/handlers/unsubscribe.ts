import { roomOf } from "../../channels/channel-keys.js";
import type { UnsubscribeOk } from "../../contracts/events.js";
import { parseOrThrow, unsubscribeSchema } from "../../contracts/schemas.js";
import type { GatewayContext } from "../context.js";
import type { RoomcastSocket } from "../types.js";

/** Leaving a channel one is not subscribed to is not an error. */
export async function unsubscribe(_ctx: GatewayContext, socket: RoomcastSocket, payload: unknown): Promise<UnsubscribeOk> {
  const { channel } = parseOrThrow(unsubscribeSchema, payload);
  endSubscription(socket, channel);
  return { channel };
}

/** Drops a socket's subscription and leaves the room. */
export function endSubscription(socket: RoomcastSocket, channel: string): boolean {
  const existed = socket.data.subscriptions.delete(channel);
  if (existed) void socket.leave(roomOf(channel));
  return existed;
}

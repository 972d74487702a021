import { requirePresence } from "../../channels/presence.js";
import type { ResolvedChannel } from "../../channels/channel-registry.js";
import type { PresenceOk, PresenceStatsOk } from "../../contracts/events.js";
import { parseOrThrow, presenceSchema } from "../../contracts/schemas.js";
import type { GatewayContext } from "../context.js";
import type { RoomcastSocket } from "../types.js";

/** A channel whose presence the socket may see: the same grants as subscribing to it. */
async function presenceTarget(ctx: GatewayContext, socket: RoomcastSocket, payload: unknown): Promise<ResolvedChannel> {
  const { channel } = parseOrThrow(presenceSchema, payload);
  const target = ctx.registry.resolve(channel);
  requirePresence(target);
  await ctx.registry.authorize(socket.data.principal, target, "subscribe");
  return target;
}

/** Who is on the channel, deduplicated by user (counts only above ROOMCAST_PRESENCE_MAX_MEMBERS users). */
export async function presence(ctx: GatewayContext, socket: RoomcastSocket, payload: unknown): Promise<PresenceOk> {
  const target = await presenceTarget(ctx, socket, payload);
  return ctx.presenceStore.presence(target.channel, ctx.config.presenceMaxMembers);
}

/** How many users and connections: O(1) at any size. */
export async function presenceStats(
  ctx: GatewayContext,
  socket: RoomcastSocket,
  payload: unknown,
): Promise<PresenceStatsOk> {
  const target = await presenceTarget(ctx, socket, payload);
  return ctx.presenceStore.stats(target.channel);
}

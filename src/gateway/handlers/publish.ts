import type { PublishOk } from "../../contracts/events.js";
import { parseOrThrow, publishSchema } from "../../contracts/schemas.js";
import type { GatewayContext } from "../context.js";
import type { RoomcastSocket } from "../types.js";

/** Client publish: only where the channel's namespace allows it for this token. */
export async function publish(ctx: GatewayContext, socket: RoomcastSocket, payload: unknown): Promise<PublishOk> {
  const req = parseOrThrow(publishSchema, payload);
  const target = ctx.registry.resolve(req.channel);
  await ctx.registry.authorize(socket.data.principal, target, "publish");
  const result = await ctx.store.publish(target, { type: req.type, data: req.data });
  return { channel: req.channel, offset: result.offset, epoch: result.epoch };
}

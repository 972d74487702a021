import { requireTenant } from "../../auth/access.js";
import { RoomcastError } from "../../contracts/error-codes.js";
import type { RefreshOk } from "../../contracts/events.js";
import { parseOrThrow, refreshSchema } from "../../contracts/schemas.js";
import type { GatewayContext } from "../context.js";
import { applyPrincipal } from "../session.js";
import type { RoomcastSocket } from "../types.js";

/** A new token for the same sub; an invalid one leaves the current grants in place. */
export async function refresh(ctx: GatewayContext, socket: RoomcastSocket, payload: unknown): Promise<RefreshOk> {
  const { token } = parseOrThrow(refreshSchema, payload);
  const principal = await ctx.verifyToken(token);
  if (principal.sub !== socket.data.principal.sub)
    throw new RoomcastError("unauthorized", "refresh token is for another sub");
  requireTenant(ctx.config.allowedTenants, principal);
  await applyPrincipal(ctx, socket, principal);
  return { exp: principal.exp };
}

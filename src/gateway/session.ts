/**
 * A connection's session: its end (quotas released, expiry forgotten), the server's notices
 * (`unsubscribed`, kick), and a refreshed token's grants applied at once.
 */
import type { Principal } from "../auth/token-verifier.js";
import { ERROR_CODES } from "../contracts/error-codes.js";
import { closeConnection } from "./close-connection.js";
import type { GatewayContext } from "./context.js";
import { endSubscription } from "./handlers/unsubscribe.js";
import type { RoomcastServer, RoomcastSocket } from "./types.js";

export function endSession(ctx: GatewayContext, socket: RoomcastSocket): void {
  ctx.expiry.untrack(socket);
  for (const [channel, sub] of socket.data.subscriptions)
    if (sub.target.settings.presence) ctx.presence.leave(socket, channel);
  socket.data.subscriptions.clear();
  ctx.admission.releaseAll(socket);
}

/** Ends a subscription on the server's initiative and tells the client (`unsubscribed`). */
export function endWithNotice(
  ctx: GatewayContext,
  socket: RoomcastSocket,
  channel: string,
  code: number,
  reason: string,
): void {
  if (endSubscription(ctx, socket, channel)) socket.emit("unsubscribed", { channel, code, reason });
}

/** Disconnects a user's connections on this replica with `closing 4403 kicked`; returns how many. */
export function kickLocal(io: RoomcastServer, userId: string): number {
  let count = 0;
  for (const socket of io.of("/").sockets.values()) {
    if (socket.data.principal?.sub !== userId) continue;
    closeConnection(socket, "kicked");
    count++;
  }
  return count;
}

/** Swaps in a new principal and ends subscriptions its grants no longer cover. */
export async function applyPrincipal(ctx: GatewayContext, socket: RoomcastSocket, principal: Principal): Promise<void> {
  socket.data.principal = principal;
  ctx.expiry.track(socket, principal.exp);
  for (const [channel, sub] of [...socket.data.subscriptions]) {
    let allowed: boolean;
    try {
      allowed = await ctx.registry.allows(principal, sub.target, sub.target.settings.subscribe);
    } catch {
      allowed = false;
    }
    if (!allowed) endWithNotice(ctx, socket, channel, ERROR_CODES.forbidden.code, "forbidden");
  }
}

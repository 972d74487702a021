/**
 * The connection middleware chain (docs/protocol.md, "Connecting"): availability, authentication,
 * admission (tenant, connection limits), then the socket's session state. Refusals reach
 * the client's `connect_error` with `data: { code, reason, message, ...details }`.
 */
import type { ExtendedError } from "socket.io";
import { requireTenant } from "../auth/access.js";
import { bearerToken } from "../auth/token-verifier.js";
import { failedBecauseRedis } from "../cluster/redis-clients.js";
import { RoomcastError, toErrorBody } from "../contracts/error-codes.js";
import { clientAddress } from "./client-address.js";
import type { GatewayContext } from "./context.js";
import type { RoomcastServer, RoomcastSocket } from "./types.js";

export type ConnectionCheck = (socket: RoomcastSocket) => void | Promise<void>;

export function tokenOf(socket: RoomcastSocket, allowQuery: boolean): string | undefined {
  const auth = socket.handshake.auth as { token?: unknown } | undefined;
  if (typeof auth?.token === "string" && auth.token !== "") return auth.token;
  const header = bearerToken(socket.handshake.headers.authorization);
  if (header) return header;
  const query = socket.handshake.query.token;
  if (allowQuery && typeof query === "string" && query !== "") return query;
  return undefined;
}

function refusal(err: unknown): ExtendedError {
  const body = toErrorBody(err);
  const error = new Error(body.message) as ExtendedError;
  error.data = body;
  return error;
}

export function installHandshake(
  io: RoomcastServer,
  ctx: GatewayContext,
  isAvailable: () => boolean,
  checks: readonly ConnectionCheck[] = [],
): void {
  const { config } = ctx;
  // Handshakes past the replica cap check but not connected yet, so a burst cannot overshoot it.
  let admitting = 0;
  io.use(async (socket, next) => {
    ctx.metrics.connectionAttempts.inc();
    const max = config.maxConnectionsPerNode;
    let counted = false;
    try {
      if (!isAvailable()) throw new RoomcastError("unavailable");
      if (max > 0 && io.of("/").sockets.size + admitting >= max) {
        throw new RoomcastError("too_many_connections", "this replica is full", { scope: "node", limit: max });
      }
      admitting++;
      counted = true;
      const token = tokenOf(socket, config.tokenQuery);
      if (!token) throw new RoomcastError("unauthorized", "token missing");
      const principal = await ctx.verifyToken(token);
      requireTenant(config.allowedTenants, principal);
      // One object with every field from the start: it keeps its properties in-object.
      socket.data = {
        principal,
        // Socket.IO's socket id (random, 120 bits) is the connection's id in logs and quotas.
        connectionId: socket.id,
        ip: clientAddress(socket.handshake.address, socket.handshake.headers["x-forwarded-for"], config.trustProxy),
        subscriptions: new Map(),
        quotaKeys: [],
        tokens: config.rateBurst,
        tokensAt: Date.now(),
        refusals: undefined,
        requests: undefined,
        expiresAt: undefined,
        queueScan: undefined,
      };
      for (const check of checks) await check(socket);
      // The client may have left while the checks awaited Redis: socket.io then drops the socket
      // without a disconnect event, so the quota entries just taken would be renewed forever.
      if (socket.conn.readyState !== "open")
        throw new RoomcastError("bad_request", "connection closed during the handshake");
      next();
    } catch (err) {
      if (socket.data.quotaKeys) ctx.admission.releaseAll(socket);
      const redisDown = failedBecauseRedis(err, ctx.isRedisUp());
      if (redisDown) ctx.log.warn({ err: (err as Error).message }, "handshake refused: Redis unavailable");
      else if (!(err instanceof RoomcastError)) ctx.log.error({ err }, "handshake failed");
      else
        ctx.log.debug(
          { code: err.code, reason: err.reason, ip: socket.data.ip ?? socket.handshake.address },
          "handshake refused",
        );
      const refused = redisDown ? new RoomcastError("unavailable") : err;
      ctx.metrics.connectionRefusals.inc({ reason: refused instanceof RoomcastError ? refused.reason : "internal" });
      // This replica cannot serve (it began draining or lost Redis after the session opened): a
      // `connect_error` would stop a stock client for good, so the transport closes instead,
      // and the client reconnects (elsewhere). socket.io ignores next() on a closed connection.
      if (refused instanceof RoomcastError && refused.reason === "unavailable") socket.conn.close();
      next(refusal(refused));
    } finally {
      // socket.io adds the socket to the namespace on the next tick after next(); count it till then.
      if (counted) process.nextTick(() => admitting--);
    }
  });
}

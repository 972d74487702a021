/**
 * Admin routes (scope admin): POST /v1/users/:id/disconnect ends a user's connections on
 * every replica; GET /v1/stats describes the whole cluster from any replica.
 */
import type { FastifyInstance } from "fastify";
import type { ClusterStats } from "../cluster/node-registry.js";
import { RoomcastError } from "../contracts/error-codes.js";
import type { Logger } from "pino";
import { requireScope } from "../auth/access.js";
import { SCOPES } from "../contracts/scopes.js";
import { principalOf, v1RouteOptions, type V1Auth } from "./http-auth.js";

export interface AdminOperations {
  kickUser: (userId: string) => Promise<number>;
  clusterStats: () => Promise<ClusterStats>;
}

export function adminRoutes(
  app: FastifyInstance,
  auth: V1Auth,
  log: Logger,
  { kickUser, clusterStats }: AdminOperations,
): void {
  const route = v1RouteOptions(auth);
  app.get("/v1/stats", route, async (request) => {
    requireScope(principalOf(request), SCOPES.admin);
    return clusterStats();
  });
  app.post<{ Params: { id: string } }>("/v1/users/:id/disconnect", route, async (request) => {
    requireScope(principalOf(request), SCOPES.admin);
    const userId = request.params.id;
    if (userId === "" || userId.length > 256)
      throw new RoomcastError("bad_request", "id: a user id of 1 to 256 characters");
    const disconnected = await kickUser(userId);
    log.info({ userId, disconnected }, "user disconnected by an administrator");
    return { userId, disconnected };
  });
}

/** Bearer JWT on every /v1 route, and scope checks (PROTOCOL.md section 6). */
import type { FastifyReply, FastifyRequest } from "fastify";
import { bearerToken, type Principal, type TokenVerifier } from "../auth/token-verifier.js";
import { RoomcastError } from "../contracts/error-codes.js";

export type Scope = "publish" | "jobs:write" | "jobs:read" | "admin";

export async function authenticate(request: FastifyRequest, verify: TokenVerifier): Promise<Principal> {
  const token = bearerToken(request.headers.authorization);
  if (!token) throw new RoomcastError("unauthorized", "Authorization: Bearer <token> required");
  return verify(token);
}

export function requireScope(principal: Principal, scope: Scope): void {
  if (!principal.scopes.has(scope)) throw new RoomcastError("forbidden", `scope ${scope} required`);
}

const principals = new WeakMap<FastifyRequest, Principal>();

/**
 * A preParsing hook: verifies the bearer token before the body is read, so that an
 * unauthenticated request is answered 401 whatever its body. (The rate limiter runs earlier,
 * onRequest, so that unauthenticated floods are counted too.)
 */
export function bearerAuth(verify: TokenVerifier) {
  return async (request: FastifyRequest, _reply: FastifyReply, payload: unknown) => {
    principals.set(request, await authenticate(request, verify));
    return payload;
  };
}

/** The principal bearerAuth verified for this request. */
export function principalOf(request: FastifyRequest): Principal {
  const principal = principals.get(request);
  if (!principal) throw new RoomcastError("unauthorized");
  return principal;
}

/** Route options for a /v1 route: bearer auth before the body, and the per-token rate limit. */
export function v1RouteOptions(verify: TokenVerifier, ratePerSecond: number) {
  return {
    preParsing: bearerAuth(verify),
    ...(ratePerSecond > 0 ? { config: { rateLimit: { max: ratePerSecond, timeWindow: 1000 } } } : {}),
  };
}

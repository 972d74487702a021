/**
 * Every /v1 route (docs/protocol.md, "HTTP API"): a bearer JWT verified before the body is
 * read (an unauthenticated request is answered 401 whatever its body), the token's tenant,
 * the rate limit (per token; per IP for callers without a valid token), and scope checks.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { requireTenant } from "../auth/access.js";
import { bearerToken, type Principal, type TokenVerifier } from "../auth/token-verifier.js";
import { RoomcastError } from "../contracts/error-codes.js";
import { HttpRateLimit } from "./http-rate-limit.js";

export interface V1Auth {
  verify: TokenVerifier;
  allowedTenants: readonly string[];
  rateLimit: HttpRateLimit;
}

interface Caller {
  principal: Principal;
  /** Its rate-limit key, when only its failures count (a publishing backend). */
  failuresKey: string | undefined;
}

const callers = new WeakMap<FastifyRequest, Caller>();

async function authenticate(request: FastifyRequest, reply: FastifyReply, auth: V1Auth): Promise<Caller> {
  const limit = auth.rateLimit;
  const counted = async (key: string) => {
    const left = await limit.hit(key);
    if (left !== undefined) void reply.headers({ "x-ratelimit-limit": limit.limit, "x-ratelimit-remaining": left });
  };
  const token = bearerToken(request.headers.authorization);
  let principal: Principal;
  try {
    if (!token) throw new RoomcastError("unauthorized", "Authorization: Bearer <token> required");
    principal = await auth.verify(token);
  } catch (err) {
    // Unverified callers share their address's budget, whatever they put in the header.
    await counted(HttpRateLimit.ipKey(request.ip));
    throw err;
  }
  const key = HttpRateLimit.tokenKey(token);
  const failuresOnly = limit.countsFailuresOnly(principal);
  if (failuresOnly) limit.refuseIfBlocked(key);
  else await counted(key);
  requireTenant(auth.allowedTenants, principal);
  return { principal, failuresKey: failuresOnly ? key : undefined };
}

/** Route options for a /v1 route: the guard runs before the body is read. */
export function v1RouteOptions(auth: V1Auth) {
  return {
    preParsing: async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      try {
        callers.set(request, await authenticate(request, reply, auth));
      } catch (err) {
        if (err instanceof RoomcastError && err.reason === "rate_limited") {
          const retryAfterMs = Number(err.details.retryAfterMs) || 1000;
          void reply.headers({
            "x-ratelimit-limit": auth.rateLimit.limit,
            "x-ratelimit-remaining": 0,
            "retry-after": Math.ceil(retryAfterMs / 1000),
          });
        }
        throw err;
      }
      return payload;
    },
  };
}

/** Counts the failed answers of callers whose successes do not count; once per /v1 scope. */
export function countFailedAnswers(app: FastifyInstance, auth: V1Auth): void {
  app.addHook("onResponse", async (request, reply) => {
    const key = callers.get(request)?.failuresKey;
    if (key !== undefined && (reply.statusCode < 200 || reply.statusCode >= 300)) auth.rateLimit.countFailure(key);
  });
}

/** The principal the guard verified for this request. */
export function principalOf(request: FastifyRequest): Principal {
  const caller = callers.get(request);
  if (!caller) throw new RoomcastError("unauthorized");
  return caller.principal;
}

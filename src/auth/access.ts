/**
 * Who may do what, decided from a verified token (docs/protocol.md, "Connecting" and
 * "Channels and authorization"): the rules that the socket handshake, token refresh, the
 * HTTP API and channel authorization share.
 */
import { RoomcastError } from "../contracts/error-codes.js";
import type { Principal } from "./token-verifier.js";

/** The token's `envs` holds the environment, or `*` (every environment). */
export function hasEnv(principal: Principal, envId: string): boolean {
  return principal.envs.includes("*") || principal.envs.includes(envId);
}

/** ROOMCAST_ALLOWED_TENANTS (empty: any): a valid token of another tenant is refused 4403. */
export function requireTenant(allowedTenants: readonly string[], principal: Principal): void {
  if (allowedTenants.length > 0 && !allowedTenants.includes(principal.tenant ?? "")) {
    throw new RoomcastError("forbidden", "tenant not allowed on this gateway");
  }
}

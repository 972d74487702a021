/**
 * Every "may X" rule, decided from a verified token (docs/protocol.md, "Connecting", "Channels
 * and authorization", "HTTP API"): the socket handshake, token refresh, channel authorization,
 * the HTTP API, the job API and the connection limits ask here, and nowhere else.
 */
import type { AccessRule } from "../config/namespaces.js";
import { RoomcastError } from "../contracts/error-codes.js";
import { SCOPES, type Scope } from "../contracts/scopes.js";
import type { Principal } from "./token-verifier.js";

/** What roomcast keeps about a job for deciding who may see it. */
export interface JobAccess {
  owner: string;
  envId?: string | undefined;
}

export function hasScope(principal: Principal, scope: string): boolean {
  return principal.scopes.has(scope);
}

/** Throws 4403 unless the token holds `scope`. */
export function requireScope(principal: Principal, scope: Scope): void {
  if (!hasScope(principal, scope)) throw new RoomcastError("forbidden", `scope ${scope} required`);
}

/** Scope `admin`: every job and history, cluster stats, kicks; exempt from the environment limits. */
export function isAdmin(principal: Principal): boolean {
  return hasScope(principal, SCOPES.admin);
}

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

/** A job's owner, or a token whose `envs` holds the job's environment, may follow and read it. */
export function mayWatchJob(principal: Principal, job: JobAccess): boolean {
  return job.owner === principal.sub || (job.envId !== undefined && hasEnv(principal, job.envId));
}

/** The job API: as its channel, or any job with scope `admin`. */
export function maySeeJob(principal: Principal, job: JobAccess): boolean {
  return isAdmin(principal) || mayWatchJob(principal, job);
}

/**
 * A namespace's access rule (subscribe, or client publish) for a channel id: `any` valid
 * token, `user` (the id is the token's sub), `env` (the id is in its envs), `job` (its owner or
 * environment; the caller looks the job up), and the rule's scope.
 */
export function matchesRule(principal: Principal, rule: AccessRule, id: string, job?: JobAccess): boolean {
  if (rule.scope && !hasScope(principal, rule.scope)) return false;
  switch (rule.match) {
    case "any":
      return true;
    case "user":
      return principal.sub === id;
    case "env":
      return hasEnv(principal, id);
    case "job":
      return job !== undefined && mayWatchJob(principal, job);
  }
}

/**
 * A backend (scope `publish`) publishing to a channel of an environment: that environment in
 * its envs; for a job channel, the job's environment (`*` for a job without one).
 */
export function mayPublishToEnvironment(principal: Principal, envId: string | undefined): boolean {
  return hasEnv(principal, envId ?? "*");
}

/**
 * Who may hold a connection or a subscription, cluster-wide (docs/protocol.md, "Limits"):
 * connections per user and per IP at the handshake, connections per environment at the
 * first subscription to one of its channels. Refusals are 4429 too_many_connections with
 * `scope` and `limit`.
 */
import type { ResolvedChannel } from "../channels/channel-registry.js";
import { isAdmin } from "../auth/access.js";
import type { ConnectionQuotas } from "../cluster/connection-quotas.js";
import type { Config } from "../config/load-config.js";
import { RoomcastError } from "../contracts/error-codes.js";
import type { RoomcastSocket } from "./types.js";

/** The environment whose quota a channel counts against, if any. */
export function environmentOf(target: ResolvedChannel): string | undefined {
  return target.settings.subscribe.match === "env" ? target.id : undefined;
}

/** The id of a user's share of an environment (both are free text: kept apart unambiguously). */
function userInEnvironment(sub: string, envId: string): string {
  return JSON.stringify([envId, sub]);
}

export class Admission {
  constructor(
    private readonly quotas: ConnectionQuotas,
    private readonly config: Config,
  ) {}

  /** The connection's entry in quota sets: its id (the same string in every set). */
  private member(socket: RoomcastSocket): string {
    return socket.data.connectionId;
  }

  /** Handshake check: the user's and the IP's quotas, both at once (one round trip, not two). */
  async admit(socket: RoomcastSocket): Promise<void> {
    const quotas = [
      { scope: "user" as const, id: socket.data.principal.sub, limit: this.config.maxConnectionsPerUser },
      { scope: "ip" as const, id: socket.data.ip, limit: this.config.maxConnectionsPerIp },
    ].filter((q) => q.limit > 0);
    if (quotas.length === 0) return;
    const answer = await this.quotas.acquireAll(quotas, this.member(socket));
    if ("full" in answer) {
      const { scope, limit } = quotas[answer.full]!;
      throw new RoomcastError("too_many_connections", `connection limit of this ${scope} reached (${limit})`, {
        scope,
        limit,
      });
    }
    socket.data.quotaKeys.push(...answer.keys);
  }

  /**
   * Before subscribing: counts the connection in the channel's environment, once, in the
   * environment's pool and in its user's share of it (so that one user cannot fill the pool).
   * Tokens with scope `admin` are exempt (on-call admins get in when the pool is full).
   */
  async enterEnvironment(socket: RoomcastSocket, target: ResolvedChannel): Promise<void> {
    const envId = environmentOf(target);
    const { principal } = socket.data;
    if (envId === undefined || isAdmin(principal)) return;
    const keys = socket.data.quotaKeys;
    if (
      keys.includes(this.quotas.key("environment", envId)) ||
      keys.includes(this.quotas.key("user-environment", userInEnvironment(principal.sub, envId)))
    )
      return;
    const quotas = [
      { scope: "environment" as const, id: envId, limit: this.config.maxConnectionsPerEnv },
      {
        scope: "user-environment" as const,
        id: userInEnvironment(principal.sub, envId),
        limit: this.config.maxConnectionsPerUserPerEnv,
      },
    ].filter((q) => q.limit > 0);
    if (quotas.length === 0) return;
    const answer = await this.quotas.acquireAll(quotas, this.member(socket));
    if ("full" in answer) {
      const { scope, limit } = quotas[answer.full]!;
      const what = scope === "environment" ? `environment ${envId}` : `this user in environment ${envId}`;
      throw new RoomcastError("too_many_connections", `connection limit of ${what} reached (${limit})`, {
        scope: "environment",
        limit,
      });
    }
    socket.data.quotaKeys.push(...answer.keys);
  }

  /** After a subscription ended: leaves the environment when no channel of it remains. */
  leaveEnvironment(socket: RoomcastSocket, target: ResolvedChannel): void {
    const envId = environmentOf(target);
    if (envId === undefined) return;
    for (const sub of socket.data.subscriptions.values()) if (environmentOf(sub.target) === envId) return;
    this.release(socket, this.quotas.key("environment", envId));
    this.release(socket, this.quotas.key("user-environment", userInEnvironment(socket.data.principal.sub, envId)));
  }

  private release(socket: RoomcastSocket, key: string): void {
    const keys = socket.data.quotaKeys;
    const at = keys.indexOf(key);
    if (at < 0) return;
    keys.splice(at, 1);
    this.quotas.release(key, this.member(socket));
  }

  releaseAll(socket: RoomcastSocket): void {
    for (const key of [...socket.data.quotaKeys]) this.release(socket, key);
  }
}

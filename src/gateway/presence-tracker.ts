/**
 * This replica's side of presence (docs/protocol.md, "Presence"): its connections' entries on
 * the channels of presence namespaces, held in Redis by PresenceStore.
 *
 * - A subscription enters the channel's presence; its end (unsubscribe, disconnect, kick) cuts
 *   the entry's lease to the debounce, and the replica sweeps the channel when it runs out:
 *   the user leaves then, unless a connection of theirs came back meanwhile.
 * - Every quarter of a lease the replica renews its entries (each holds three quarters of a
 *   lease: one late renewal never drops a live connection) and sweeps those channels; a
 *   connection whose entry was swept while Redis was away joins again.
 * - Entries of a replica that died are no longer renewed: the replicas renewing the same
 *   channel sweep them, and channels nobody renews any more are swept from the index of
 *   channels by every replica. Either way they are gone within one lease of the death, and
 *   each user's leave is announced once (the sweep is one atomic script).
 */
import type { Logger } from "pino";
import type { ResolvedChannel } from "../channels/channel-registry.js";
import type { ChannelRegistry } from "../channels/channel-registry.js";
import type { PresenceChange, PresenceStore } from "../channels/presence.js";
import { chunks, inWaves, type WeightedCall } from "../cluster/in-waves.js";
import type { Config } from "../config/load-config.js";
import type { PresenceEvent } from "../contracts/events.js";
import type { GatewayMetrics } from "../metrics/metrics.js";
import type { RoomcastSocket } from "./types.js";

/** A leave's sweep runs this long after its debounce ran out (the entry must have expired by then). */
const SWEEP_SLACK_MS = 50;
/** Connections renewed per script call: each call holds Redis for well under a millisecond. */
const RENEW_BATCH = 500;
/** Connections renewed in flight at most (src/cluster/in-waves.ts). */
const RENEW_WAVE = 1000;
/** Stale channels swept per round and replica. */
const STALE_BATCH = 500;

export class PresenceTracker {
  /** This replica's connections present on each channel: connection id -> socket. */
  private readonly local = new Map<string, Map<string, RoomcastSocket>>();
  /** Channels with a leave to sweep: when the latest debounce runs out (ms). */
  private readonly leaves = new Map<string, number>();
  private readonly leaseMs: number;
  /** How long an entry holds after its renewal: three quarters of a lease. */
  private readonly holdMs: number;
  private readonly debounceMs: number;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly store: PresenceStore,
    private readonly registry: ChannelRegistry,
    config: Config,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
    /** Occupancy changes went to the channel's webhook stream: the workers should deliver them. */
    private readonly onHooked: (channel: string) => void,
  ) {
    this.leaseMs = config.presenceLeaseS * 1000;
    this.holdMs = Math.floor((this.leaseMs * 3) / 4);
    this.debounceMs = config.presenceDebounceS * 1000;
    this.timer = setInterval(() => void this.round(), this.leaseMs / 4);
    this.timer.unref();
  }

  /** Channels with presence here, and connections present on them (for the metrics). */
  counts(): { channels: number; connections: number } {
    let connections = 0;
    for (const conns of this.local.values()) connections += conns.size;
    return { channels: this.local.size, connections };
  }

  /** A socket subscribed to a channel whose namespace has presence. */
  async enter(socket: RoomcastSocket, target: ResolvedChannel): Promise<void> {
    const channel = target.channel;
    let conns = this.local.get(channel);
    const first = conns === undefined;
    if (!conns) this.local.set(channel, (conns = new Map()));
    conns.set(socket.data.connectionId, socket);
    await this.join(socket, target);
    // In the index at once: if this replica died before its next round, the others must find the channel.
    if (first) void this.store.touch([channel]).catch((err: unknown) => this.failed(err, "index"));
  }

  /** The subscription ended: the user stays present for the debounce, in case a connection of theirs comes back. */
  leave(socket: RoomcastSocket, channel: string): void {
    const conns = this.local.get(channel);
    if (!conns?.delete(socket.data.connectionId)) return;
    if (conns.size === 0) this.local.delete(channel);
    const until = Date.now() + this.debounceMs;
    this.store.leave(channel, socket.data.connectionId, until).catch((err: unknown) => this.failed(err, "leave"));
    const pending = this.leaves.get(channel);
    this.leaves.set(channel, Math.max(pending ?? 0, until));
    if (pending === undefined) this.sweepAt(channel, until);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  private async join(socket: RoomcastSocket, target: ResolvedChannel): Promise<void> {
    const { principal, connectionId } = socket.data;
    const now = Date.now();
    const info = principal.info;
    const event: PresenceEvent | undefined = target.settings.joinLeave
      ? info
        ? { channel: target.channel, action: "join", user: principal.sub, info }
        : { channel: target.channel, action: "join", user: principal.sub }
      : undefined;
    const member = JSON.stringify(info ? { joinedAt: now, info } : { joinedAt: now });
    const change = await this.store.join(
      target.channel,
      connectionId,
      principal.sub,
      member,
      now + this.holdMs,
      event && JSON.stringify(event),
    );
    if (change.changed > 0) this.metrics.presenceChanges.inc({ action: "join" });
    this.noted(target.channel, change);
  }

  /** Sweeps the channel once the latest debounce of its leaves ran out (again, if more came meanwhile). */
  private sweepAt(channel: string, until: number): void {
    setTimeout(
      () => {
        if (this.closed) return;
        void this.sweep(channel).finally(() => {
          const latest = this.leaves.get(channel) ?? 0;
          if (latest > until && !this.closed) this.sweepAt(channel, latest);
          else this.leaves.delete(channel);
        });
      },
      Math.max(until - Date.now(), 0) + SWEEP_SLACK_MS,
    ).unref();
  }

  /** Removes the channel's expired entries (announcing the leaves); with `renew`, renews those first. */
  private async sweep(channel: string, renew: readonly string[] = []): Promise<PresenceChange | undefined> {
    let joinLeave = false;
    try {
      joinLeave = this.registry.resolve(channel).settings.joinLeave;
    } catch {
      // A channel of a namespace no longer configured: swept without announcements.
    }
    try {
      const change = await this.store.sweep(channel, joinLeave, renew, Date.now() + this.holdMs);
      if (change.changed > 0) this.metrics.presenceChanges.inc({ action: "leave" }, change.changed);
      this.noted(channel, change);
      for (const id of change.missing) {
        const socket = this.local.get(channel)?.get(id);
        const sub = socket?.data.subscriptions.get(channel);
        if (socket && sub) await this.join(socket, sub.target);
      }
      if (change.connections === 0) await this.store.forget(channel);
      return change;
    } catch (err) {
      this.failed(err, "sweep");
      return undefined;
    }
  }

  private noted(channel: string, change: PresenceChange): void {
    if (change.hooked) this.onHooked(channel);
  }

  /** A quarter of a lease went by: renew this replica's entries, then sweep the channels nobody renews. */
  private async round(): Promise<void> {
    const channels = [...this.local.keys()];
    const renewals: WeightedCall[] = [
      { weight: 1, run: () => this.store.touch(channels).catch((err: unknown) => this.failed(err, "index")) },
    ];
    for (const channel of channels) {
      const ids = [...(this.local.get(channel)?.keys() ?? [])];
      for (const [i, batch] of chunks(ids, RENEW_BATCH).entries()) {
        renewals.push({
          weight: batch.length,
          run: () =>
            this.sweep(channel, batch).then((change) => {
              if (change && i === 0) this.metrics.presenceUsers.observe(change.users);
            }),
        });
      }
    }
    await inWaves(renewals, RENEW_WAVE);
    if (this.closed) return;
    // Entries of channels not renewed for three quarters of a lease have all expired.
    try {
      const stale = await this.store.stale(Date.now() - this.holdMs, STALE_BATCH);
      await Promise.all(stale.filter((channel) => !this.local.has(channel)).map((channel) => this.sweep(channel)));
    } catch (err) {
      this.failed(err, "index");
    }
  }

  private failed(err: unknown, step: string): void {
    this.log.debug({ err: (err as Error).message, step }, "presence update failed (retried in the next round)");
  }
}

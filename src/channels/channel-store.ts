/**
 * The one publish path and the history reader. HTTP publishes, client publishes and
 * workers all call publish(); subscribe, recovery and the history API call read().
 */
import { randomBytes } from "node:crypto";
import type { RedisClient } from "../cluster/redis-clients.js";
import type { PublishPathMetrics, RedisOperation } from "../metrics/metrics.js";
import type { ChannelEvent } from "../contracts/events.js";
import { serialise, type Priority } from "../contracts/schemas.js";
import { channelKeys } from "./channel-keys.js";
import type { ResolvedChannel } from "./channel-registry.js";
import { CLOSE_SCRIPT, PUBLISH_SCRIPT, READ_SCRIPT } from "./lua-scripts.js";
import { closeMessage } from "../cluster/channel-feed.js";
import { ERROR_CODES, type ErrorReason } from "../contracts/error-codes.js";

export interface PublishInput {
  type: string;
  data: unknown;
  priority?: Priority;
  idempotencyKey?: string | undefined;
  /** Overrides the namespace's snapshot rule: the channel's state after this event. */
  snapshot?: unknown;
  /** Overrides the channel's history time to live from this event on (s). */
  ttlS?: number;
}

export interface PublishResult {
  offset: number;
  epoch: string;
  id: string;
  /** True when an idempotency key matched: nothing was published this time. */
  duplicate: boolean;
}

/** The events after `since` (all that history holds, unless `limit`), or the last n. */
export type ReadRequest = { since: number; limit?: number } | { last: number };

export interface ReadResult {
  epoch: string;
  /** The channel's newest offset. */
  top: number;
  /** The oldest offset history still holds (0: none). */
  first: number;
  events: ChannelEvent[];
  snapshot: unknown;
}

type PublishReply = [number, string, string, number];
type ReadReply = [string, number, number, string[], string | null];

type ScriptedRedis = RedisClient & {
  roomcastPublish(...args: (string | number)[]): Promise<PublishReply>;
  roomcastRead(...args: (string | number)[]): Promise<ReadReply>;
  roomcastClose(...args: (string | number)[]): Promise<number>;
};

/** Epochs are fixed-width random tokens. */
export function newEpoch(): string {
  return randomBytes(6).toString("hex");
}

function newEventId(): string {
  return randomBytes(12).toString("base64url");
}

export class ChannelStore {
  private readonly redis: ScriptedRedis;
  private readonly epochs = new Map<string, string>();

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly idempotencyTtlS: number,
    /** SPUBLISH (sharded pub/sub, Redis Cluster) instead of PUBLISH. */
    private readonly sharded: boolean,
    private readonly metrics?: PublishPathMetrics,
  ) {
    redis.defineCommand("roomcastPublish", { numberOfKeys: 5, lua: PUBLISH_SCRIPT });
    redis.defineCommand("roomcastRead", { numberOfKeys: 3, lua: READ_SCRIPT });
    // The key count varies: the caller passes it first.
    redis.defineCommand("roomcastClose", { lua: CLOSE_SCRIPT });
    this.redis = redis as ScriptedRedis;
  }

  async publish(target: ResolvedChannel, input: PublishInput): Promise<PublishResult> {
    const keys = channelKeys(this.prefix, target.channel);
    const id = newEventId();
    const priority = input.priority ?? "normal";
    const dataJson = serialise(input.data, "data") ?? "null";
    // The script splices offset and epoch between head and tail, so the event is
    // serialised once here and never parsed again on its way to the sockets.
    const head = `{"channel":${JSON.stringify(target.channel)}`;
    const tail = `,"id":"${id}","type":${JSON.stringify(input.type)},"ts":${Date.now()},"priority":"${priority}","data":${dataJson}}`;
    let snapshot = "";
    if (input.snapshot !== undefined) snapshot = serialise(input.snapshot, "snapshot");
    else if (target.snapshot === "latest") snapshot = dataJson;
    const idempotencyKey = input.idempotencyKey;
    const [offset, epoch, firstId, duplicate] = await this.timed("publish", () => this.redis.roomcastPublish(
      keys.meta,
      keys.history,
      keys.snapshot,
      keys.idempotency(idempotencyKey ?? "-"),
      keys.feed,
      newEpoch(),
      target.historySize,
      input.ttlS ?? target.historyTtlS,
      head,
      tail,
      this.sharded ? "SPUBLISH" : "PUBLISH",
      idempotencyKey ? this.idempotencyTtlS : 0,
      snapshot,
      id,
    ));
    if (duplicate !== 1) this.metrics?.published.inc({ namespace: target.namespace });
    return { offset: Number(offset), epoch, id: firstId, duplicate: duplicate === 1 };
  }

  /**
   * Ends a channel everywhere: its history, snapshot and position are deleted (with
   * `alsoDelete`, keys of the same hash tag), and every replica ends its subscriptions with
   * `unsubscribed { code, reason }`. A later subscribe starts a new epoch.
   */
  async close(target: ResolvedChannel, reason: Extract<ErrorReason, "expired">, alsoDelete: readonly string[] = []): Promise<void> {
    const keys = channelKeys(this.prefix, target.channel);
    const deleted = [keys.meta, keys.history, keys.snapshot, ...alsoDelete];
    await this.redis.roomcastClose(1 + deleted.length, keys.feed, ...deleted, this.sharded ? "SPUBLISH" : "PUBLISH", closeMessage(ERROR_CODES[reason].code, reason));
  }

  /**
   * Deletes a channel's history, snapshot and position (with `alsoDelete`, keys of the same
   * hash tag: one DEL, one Cluster slot) without telling anyone: for a channel that nobody
   * could have subscribed to yet (a job whose creation failed).
   */
  async discard(target: ResolvedChannel, alsoDelete: readonly string[] = []): Promise<void> {
    const keys = channelKeys(this.prefix, target.channel);
    await this.redis.del(keys.meta, keys.history, keys.snapshot, ...alsoDelete);
  }

  private timed<T>(operation: RedisOperation, call: () => Promise<T>): Promise<T> {
    return this.metrics ? this.metrics.timeRedis(operation, call) : call();
  }

  async read(target: ResolvedChannel, request: ReadRequest): Promise<ReadResult> {
    const keys = channelKeys(this.prefix, target.channel);
    const args =
      "since" in request ? ["since", request.since, request.limit ?? 0] : ["last", Math.min(request.last, target.historySize), 0];
    const [epoch, top, first, entries, snapshot] = await this.timed("read", () => this.redis.roomcastRead(
      keys.meta,
      keys.history,
      keys.snapshot,
      newEpoch(),
      target.historyTtlS,
      ...args,
    ));
    const events = entries.map((json) => JSON.parse(json) as ChannelEvent);
    if (!("since" in request)) events.reverse();
    return { epoch: this.intern(epoch), top: Number(top), first: Number(first), events, snapshot: snapshot === null ? undefined : JSON.parse(snapshot) };
  }

  /** Every subscription keeps its channel's epoch: one string per epoch, not one per subscription. */
  private intern(epoch: string): string {
    const known = this.epochs.get(epoch);
    if (known !== undefined) return known;
    if (this.epochs.size >= 10_000) this.epochs.clear();
    this.epochs.set(epoch, epoch);
    return epoch;
  }
}

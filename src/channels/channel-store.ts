/**
 * The one publish path and the history reader. HTTP publishes, client publishes and
 * workers all call publish(); subscribe, recovery and the history API call read().
 */
import { randomFillSync } from "node:crypto";
import { LuaScript } from "../cluster/lua-script.js";
import type { RedisClient } from "../cluster/redis-clients.js";
import type { PublishPathMetrics, RedisOperation } from "../metrics/metrics.js";
import type { ChannelEvent } from "../contracts/events.js";
import { serialise, type Priority } from "../contracts/schemas.js";
import { channelKeys } from "./channel-keys.js";
import type { ResolvedChannel } from "./channel-registry.js";
import { CLOSE_SCRIPT, PUBLISH_SCRIPT, READ_SCRIPT } from "./lua-scripts.js";
import { closeMessage, type ChannelMessage } from "./channel-feed.js";
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

/**
 * The events after `since` (all that history holds, unless `limit`), or the last n. With
 * `epoch` and `fallback`, a `since` read is strict: unless history still holds every event
 * after `since` in that epoch, it reads the last `fallback` events instead (nothing is read
 * for a mismatched epoch).
 */
export type ReadRequest = { since: number; limit?: number; epoch?: string; fallback?: number } | { last: number };

export interface ReadResult {
  epoch: string;
  /** The channel's newest offset. */
  top: number;
  /** The oldest offset history still holds (0: none). */
  first: number;
  events: ChannelEvent[];
  snapshot: unknown;
  /** A `since` read: history held every event after it (in the expected epoch, if one was given). */
  recovered: boolean;
  /** Cut by the byte bound: more events follow the last one read. */
  more: boolean;
}

/** Per event: offset, epoch, id, duplicate (0|1), flattened. */
type PublishReply = (number | string)[];

/** Events per publish script call, and the JSON they may carry, at most. */
const PUBLISH_CHUNK_EVENTS = 100;
const PUBLISH_CHUNK_BYTES = 1024 * 1024;

interface PreparedEvent {
  id: string;
  tail: string;
  snapshot: string;
  idempotencyKey: string | undefined;
  bytes: number;
}
type ReadReply = [string, number, number, string[], string | null, number, number];

export interface ChannelStoreOptions {
  /** Prefix of every key. */
  prefix: string;
  idempotencyTtlS: number;
  /** SPUBLISH (sharded pub/sub, Redis Cluster) instead of PUBLISH. */
  sharded: boolean;
  /** History one read may return, in bytes of JSON (at least one event; 0: no bound). */
  maxReadBytes: number;
}

type ScriptArgs = (string | number)[];
type ScriptedRedis = RedisClient & {
  roomcastRead(...args: ScriptArgs): Promise<ReadReply>;
};

// Their key count varies with the events of a chunk and the keys a close deletes.
const PUBLISH = new LuaScript(PUBLISH_SCRIPT);
const CLOSE = new LuaScript(CLOSE_SCRIPT);

/**
 * Random bytes from a pool refilled 4 KiB at a time: every publish takes 18 (an epoch for a new
 * channel and the event's id), and a getrandom call for each cost more than the rest of the
 * event's preparation.
 */
const randomPool = Buffer.alloc(4096);
let randomAt = randomPool.length;

function randomSlice(bytes: number): Buffer {
  if (randomAt + bytes > randomPool.length) {
    randomFillSync(randomPool);
    randomAt = 0;
  }
  randomAt += bytes;
  return randomPool.subarray(randomAt - bytes, randomAt);
}

/** Epochs are fixed-width random tokens. */
export function newEpoch(): string {
  return randomSlice(6).toString("hex");
}

function newEventId(): string {
  return randomSlice(12).toString("base64url");
}

export class ChannelStore {
  private readonly redis: ScriptedRedis;
  private readonly epochs = new Map<string, string>();
  /**
   * Told of each event this process published, as soon as Redis answered (before the feed
   * brings it back): a gateway delivers to its own subscribers at once.
   */
  onPublished: ((channel: string, message: ChannelMessage) => void) | undefined;

  private readonly prefix: string;
  private readonly idempotencyTtlS: number;
  private readonly sharded: boolean;
  private readonly maxReadBytes: number;

  constructor(
    redis: RedisClient,
    options: ChannelStoreOptions,
    private readonly metrics?: PublishPathMetrics,
  ) {
    ({
      prefix: this.prefix,
      idempotencyTtlS: this.idempotencyTtlS,
      sharded: this.sharded,
      maxReadBytes: this.maxReadBytes,
    } = options);
    redis.defineCommand("roomcastRead", { numberOfKeys: 3, lua: READ_SCRIPT });
    this.redis = redis as ScriptedRedis;
  }

  async publish(target: ResolvedChannel, input: PublishInput): Promise<PublishResult> {
    const { results, error } = await this.publishMany(target, [input]);
    if (error !== undefined) throw error;
    return results[0]!;
  }

  /**
   * Publishes events of one channel, in order: one script call per chunk (at most
   * PUBLISH_CHUNK_EVENTS events or PUBLISH_CHUNK_BYTES of JSON, so that Redis is never held
   * long), chunks one after another. Serialising fails (4400) before anything is published.
   * A failed chunk stops the rest (a later event must not overtake an earlier one): `results`
   * holds the events published before it, in order, and `error` why the others were not.
   */
  async publishMany(
    target: ResolvedChannel,
    inputs: readonly PublishInput[],
  ): Promise<{ results: PublishResult[]; error?: unknown }> {
    const head = `{"channel":${JSON.stringify(target.channel)}`;
    const prepared = inputs.map((input) => this.prepare(target, input));
    const results: PublishResult[] = [];
    for (let start = 0; start < prepared.length;) {
      let end = start;
      let bytes = 0;
      const ttlS = inputs[start]!.ttlS ?? target.historyTtlS;
      while (
        end < prepared.length &&
        end - start < PUBLISH_CHUNK_EVENTS &&
        (end === start || bytes + prepared[end]!.bytes <= PUBLISH_CHUNK_BYTES) &&
        (inputs[end]!.ttlS ?? target.historyTtlS) === ttlS
      ) {
        bytes += prepared[end]!.bytes;
        end++;
      }
      try {
        results.push(...(await this.publishChunk(target, head, ttlS, prepared.slice(start, end))));
      } catch (error) {
        return { results, error };
      }
      start = end;
    }
    return { results };
  }

  /** An event as the script takes it: serialised once here, never parsed again on its way to the sockets. */
  private prepare(target: ResolvedChannel, input: PublishInput): PreparedEvent {
    const id = newEventId();
    const priority = input.priority ?? "normal";
    const dataJson = serialise(input.data, "data") ?? "null";
    // The script splices channel, offset and epoch in front of this tail.
    const tail = `,"id":"${id}","type":${JSON.stringify(input.type)},"ts":${Date.now()},"priority":"${priority}","data":${dataJson}}`;
    let snapshot = "";
    if (input.snapshot !== undefined) snapshot = serialise(input.snapshot, "snapshot");
    else if (target.snapshot === "latest") snapshot = dataJson;
    return { id, tail, snapshot, idempotencyKey: input.idempotencyKey, bytes: tail.length + snapshot.length };
  }

  private async publishChunk(
    target: ResolvedChannel,
    head: string,
    ttlS: number,
    events: readonly PreparedEvent[],
  ): Promise<PublishResult[]> {
    const keys = channelKeys(this.prefix, target.channel);
    const args: ScriptArgs = [keys.meta, keys.history, keys.snapshot, keys.feed];
    for (const event of events) args.push(keys.idempotency(event.idempotencyKey ?? "-"));
    args.push(newEpoch(), target.historySize, ttlS, head, this.sharded ? "SPUBLISH" : "PUBLISH", this.idempotencyTtlS);
    for (const event of events) args.push(event.tail, event.snapshot, event.id, event.idempotencyKey ? 1 : 0);
    const reply = (await this.timed("publish", () => PUBLISH.run(this.redis, 4 + events.length, args))) as PublishReply;
    const results: PublishResult[] = [];
    for (let i = 0; i < reply.length; i += 4) {
      const duplicate = reply[i + 3] === 1;
      results.push({ offset: Number(reply[i]), epoch: String(reply[i + 1]), id: String(reply[i + 2]), duplicate });
    }
    const published = results.filter((r) => !r.duplicate).length;
    if (published > 0) this.metrics?.published.inc({ namespace: target.namespace }, published);
    if (this.onPublished) {
      // The very message the script published on the feed, composed the same way.
      results.forEach((r, i) => {
        if (r.duplicate) return;
        const json = `${head},"offset":${r.offset},"epoch":"${r.epoch}"${events[i]!.tail}`;
        this.onPublished!(target.channel, { offset: r.offset, epoch: r.epoch, json });
      });
    }
    return results;
  }

  /**
   * Ends a channel everywhere: its history, snapshot and position are deleted (with
   * `alsoDelete`, keys of the same hash tag), and every replica ends its subscriptions with
   * `unsubscribed { code, reason }`. A later subscribe starts a new epoch.
   */
  async close(
    target: ResolvedChannel,
    reason: Extract<ErrorReason, "expired">,
    alsoDelete: readonly string[] = [],
  ): Promise<void> {
    const keys = channelKeys(this.prefix, target.channel);
    const deleted = [keys.meta, keys.history, keys.snapshot, ...alsoDelete];
    await CLOSE.run(this.redis, 1 + deleted.length, [
      keys.feed,
      ...deleted,
      this.sharded ? "SPUBLISH" : "PUBLISH",
      closeMessage(ERROR_CODES[reason].code, reason),
    ]);
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
    const since = "since" in request;
    const args = since
      ? [
          "since",
          request.since,
          request.limit ?? 0,
          this.maxReadBytes,
          request.epoch ?? "",
          request.fallback === undefined ? 0 : 1,
          Math.min(request.fallback ?? 0, target.historySize),
        ]
      : ["last", Math.min(request.last, target.historySize), 0, this.maxReadBytes, "", 0, 0];
    const [epoch, top, first, entries, snapshot, recovered, more] = await this.timed("read", () =>
      this.redis.roomcastRead(keys.meta, keys.history, keys.snapshot, newEpoch(), target.historyTtlS, ...args),
    );
    const events = entries.map((json) => JSON.parse(json) as ChannelEvent);
    return {
      epoch: this.intern(epoch),
      top: Number(top),
      first: Number(first),
      events,
      snapshot: snapshot === null ? undefined : JSON.parse(snapshot),
      recovered: since && recovered === 1,
      more: more === 1,
    };
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

/**
 * Who is on a channel, cluster-wide (docs/protocol.md, "Presence"), held in Redis under the
 * channel's hash tag (so every script runs on the channel's shard):
 *
 * - `p:conns`  sorted set of connection ids, scored by lease expiry (ms);
 * - `p:owners` hash connection id -> user;
 * - `p:users`  hash user -> how many of its connections are present (the members);
 * - `p:info`   hash user -> `{"joinedAt":..,"info":..}`;
 * - `p:hooks`  stream of occupancy changes for the webhooks, when they are on.
 *
 * Counts are the sizes of `p:users` and `p:conns`: O(1) at any size. A connection that leaves
 * is not removed at once: its lease is cut to the debounce time, so that a reconnect (a
 * replica move, a new tab) within it keeps the user present and produces neither a leave nor a
 * join. Expired entries are swept by the replicas that renew the channel's leases, by the
 * leaving connection's replica when its debounce ends, and, for channels no live replica
 * renews (their members were all on a replica that died), by any replica from the index of
 * channels (`{presence}:index`, scored by the last renewal). A sweep removes what expired and
 * announces each user's leave once, atomically: on the channel's feed (`presence` events) and
 * on its webhook stream.
 */
import { chunks } from "../cluster/in-waves.js";
import type { RedisClient } from "../cluster/redis-clients.js";
import { RoomcastError } from "../contracts/error-codes.js";
import type { MemberInfo, PresenceMember, PresenceOk, PresenceStatsOk } from "../contracts/events.js";
import type { ResolvedChannel } from "./channel-registry.js";
import { channelKeys } from "./channel-keys.js";

export interface PresenceCounts {
  users: number;
  connections: number;
}

const HOOKS_MAXLEN = 10_000;
/** Channels noted in the index per call. */
const TOUCH_BATCH = 1000;
/** A channel's webhook stream is kept a day after its last change (the workers deliver in seconds). */
const HOOKS_TTL_MS = 86_400_000;

/** Lua shared by the scripts: `hook(json)` adds an occupancy change to the channel's webhook stream (KEYS[5]). */
const HOOK_LUA = `
local function hook(json)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ${HOOKS_MAXLEN}, '*', 'e', json)
  redis.call('PEXPIRE', KEYS[5], ${HOOKS_TTL_MS})
end
local function counts()
  return ',"users":' .. redis.call('HLEN', KEYS[3]) .. ',"connections":' .. redis.call('ZCARD', KEYS[1])
end
`;

/**
 * A connection present on the channel until `ARGV[4]` (its lease). A new connection counts its
 * user in; the user's first one is a join (a `presence` event on the feed when joinLeave is on,
 * `member_added` for the webhooks), and the channel's first connection occupies it.
 * KEYS: conns, owners, users, info, hooks, feed.
 * ARGV: conn, user, member json ({"joinedAt":..,"info":..}), expiry ms, join event json ('' : none),
 *       publish command, hooks (1|0), now ms, channel json.
 * Returns { joined (1|0), users, connections, hooks added (1|0) }.
 */
const JOIN_SCRIPT = `${HOOK_LUA}
local joined = 0
local hooked = 0
-- (A connection already there, back within its debounce, just gets its lease again.)
if redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  if redis.call('HINCRBY', KEYS[3], ARGV[2], 1) == 1 then
    joined = 1
    redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
    if ARGV[5] ~= '' then redis.call(ARGV[6], KEYS[6], 'presence ' .. ARGV[5]) end
  end
  if ARGV[7] == '1' then
    local head = '{"channel":' .. ARGV[9] .. ',"ts":' .. ARGV[8]
    if redis.call('ZCARD', KEYS[1]) == 1 then
      hook(head .. ',"event":"channel_occupied"' .. counts() .. '}')
      hooked = 1
    end
    if joined == 1 then
      hook(head .. ',"event":"member_added","user":' .. cjson.encode(ARGV[2]) .. counts() .. '}')
      hooked = 1
    end
  end
end
return { joined, redis.call('HLEN', KEYS[3]), redis.call('ZCARD', KEYS[1]), hooked }
`;

/**
 * Removes what expired (at most 1,000 connections a call): a user whose last connection goes
 * leaves (a `presence` leave on the feed when joinLeave is on, `member_removed`), and the
 * channel's last connection going vacates it. Renews the given connections' leases first (the
 * replica's own, still present: never ones that left); one that is not there any more (swept
 * while its replica could not renew it) is returned, for its replica to join again.
 * KEYS: conns, owners, users, info, hooks, feed.
 * ARGV: now ms, publish command, joinLeave (1|0), hooks (1|0), channel json, expiry ms, conns...
 * Returns { users left, users, connections, hooks added (1|0), connections to renew that were not there }.
 */
const SWEEP_SCRIPT = `${HOOK_LUA}
local missing = {}
if #ARGV >= 7 then
  -- One ZMSCORE and one ZADD for the whole batch, not two calls per connection.
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV, 7))
  local renew = { 'ZADD', KEYS[1], 'XX', 'GT' }
  for i, score in ipairs(scores) do
    if score then
      renew[#renew + 1] = ARGV[6]
      renew[#renew + 1] = ARGV[i + 6]
    else
      missing[#missing + 1] = ARGV[i + 6]
    end
  end
  if #renew > 4 then redis.call(unpack(renew)) end
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
local head = '{"channel":' .. ARGV[5] .. ',"ts":' .. ARGV[1]
local left = 0
local hooked = 0
for _, conn in ipairs(expired) do
  local user = redis.call('HGET', KEYS[2], conn)
  redis.call('ZREM', KEYS[1], conn)
  redis.call('HDEL', KEYS[2], conn)
  if user and redis.call('HINCRBY', KEYS[3], user, -1) <= 0 then
    redis.call('HDEL', KEYS[3], user)
    redis.call('HDEL', KEYS[4], user)
    left = left + 1
    if ARGV[3] == '1' then
      redis.call(ARGV[2], KEYS[6], 'presence {"channel":' .. ARGV[5] .. ',"action":"leave","user":' .. cjson.encode(user) .. '}')
    end
    if ARGV[4] == '1' then
      hook(head .. ',"event":"member_removed","user":' .. cjson.encode(user) .. counts() .. '}')
      hooked = 1
    end
  end
end
local conns = redis.call('ZCARD', KEYS[1])
if #expired > 0 and conns == 0 and ARGV[4] == '1' then
  hook(head .. ',"event":"channel_vacated","users":0,"connections":0}')
  hooked = 1
end
return { left, redis.call('HLEN', KEYS[3]), conns, hooked, missing }
`;

/** KEYS: conns, users. Returns { users, connections }. */
const COUNTS_SCRIPT = `return { redis.call('HLEN', KEYS[2]), redis.call('ZCARD', KEYS[1]) }`;

/**
 * KEYS: conns, users, info. ARGV: max. Returns { users, connections, users flat [user, count, ...],
 * infos flat [user, member json, ...] }, the lists empty above max users: one consistent read.
 */
const MEMBERS_SCRIPT = `
local users = redis.call('HLEN', KEYS[2])
local conns = redis.call('ZCARD', KEYS[1])
if users > tonumber(ARGV[1]) then return { users, conns, {}, {} } end
return { users, conns, redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]) }
`;

/** Cuts a connection's lease to `ARGV[2]` (its debounce), never lengthens it. KEYS: conns. ARGV: conn, expiry ms. */
const LEAVE_SCRIPT = `return redis.call('ZADD', KEYS[1], 'XX', 'LT', ARGV[2], ARGV[1])`;

type PresenceRedis = RedisClient & {
  roomcastPresenceJoin(...args: (string | number)[]): Promise<ScriptReply>;
  roomcastPresenceSweep(...args: (string | number)[]): Promise<ScriptReply>;
  roomcastPresenceLeave(key: string, conn: string, expiry: number): Promise<number>;
  roomcastPresenceCounts(conns: string, users: string): Promise<[number, number]>;
  roomcastPresenceMembers(
    conns: string,
    users: string,
    info: string,
    max: number,
  ): Promise<[number, number, string[], string[]]>;
};

export interface PresenceKeys {
  conns: string;
  owners: string;
  users: string;
  info: string;
  hooks: string;
  feed: string;
}

export function presenceKeys(prefix: string, channel: string): PresenceKeys {
  const base = `${prefix}:{${channel}}:p`;
  return {
    conns: `${base}:conns`,
    owners: `${base}:owners`,
    users: `${base}:users`,
    info: `${base}:info`,
    hooks: `${base}:hooks`,
    feed: channelKeys(prefix, channel).feed,
  };
}

export interface PresenceStoreOptions {
  prefix: string;
  sharded: boolean;
  /** Webhooks are on: occupancy changes go to each channel's stream. */
  hooks: boolean;
}

/** What a join or a sweep changed, and the counts after it. */
export interface PresenceChange extends PresenceCounts {
  /** Users who joined (0 or 1) or left. */
  changed: number;
  /** Occupancy changes were added to the channel's webhook stream. */
  hooked: boolean;
}

type ScriptReply = [number, number, number, number, string[]?];

function change(reply: ScriptReply): PresenceChange {
  return {
    changed: Number(reply[0]),
    users: Number(reply[1]),
    connections: Number(reply[2]),
    hooked: Number(reply[3]) === 1,
  };
}

export class PresenceStore {
  private readonly redis: PresenceRedis;
  readonly indexKey: string;

  constructor(
    redis: RedisClient,
    private readonly options: PresenceStoreOptions,
  ) {
    redis.defineCommand("roomcastPresenceJoin", { numberOfKeys: 6, lua: JOIN_SCRIPT });
    redis.defineCommand("roomcastPresenceSweep", { numberOfKeys: 6, lua: SWEEP_SCRIPT });
    redis.defineCommand("roomcastPresenceLeave", { numberOfKeys: 1, lua: LEAVE_SCRIPT });
    redis.defineCommand("roomcastPresenceCounts", { numberOfKeys: 2, lua: COUNTS_SCRIPT });
    redis.defineCommand("roomcastPresenceMembers", { numberOfKeys: 3, lua: MEMBERS_SCRIPT });
    this.redis = redis as PresenceRedis;
    this.indexKey = `${options.prefix}:{presence}:index`;
  }

  private keys(channel: string): string[] {
    const k = presenceKeys(this.options.prefix, channel);
    return [k.conns, k.owners, k.users, k.info, k.hooks, k.feed];
  }

  private get publish(): string {
    return this.options.sharded ? "SPUBLISH" : "PUBLISH";
  }

  /** A connection of `user` on the channel until `expiry`; `joinEvent` is the `presence` join to announce, if any. */
  async join(
    channel: string,
    conn: string,
    user: string,
    member: string,
    expiry: number,
    joinEvent: string | undefined,
  ): Promise<PresenceChange> {
    const now = Date.now();
    const reply = await this.redis.roomcastPresenceJoin(
      ...this.keys(channel),
      conn,
      user,
      member,
      expiry,
      joinEvent ?? "",
      this.publish,
      this.options.hooks ? 1 : 0,
      now,
      JSON.stringify(channel),
    );
    return change(reply);
  }

  /** The connection left: present until `expiry` (the debounce), unless its user comes back meanwhile. */
  async leave(channel: string, conn: string, expiry: number): Promise<void> {
    await this.redis.roomcastPresenceLeave(presenceKeys(this.options.prefix, channel).conns, conn, expiry);
  }

  /**
   * Renews `renew` until `expiry`, then removes what expired and announces the leaves; `missing`
   * are the connections of `renew` that were not there to renew.
   */
  async sweep(
    channel: string,
    joinLeave: boolean,
    renew: readonly string[] = [],
    expiry = 0,
  ): Promise<PresenceChange & { missing: string[] }> {
    const reply = await this.redis.roomcastPresenceSweep(
      ...this.keys(channel),
      Date.now(),
      this.publish,
      joinLeave ? 1 : 0,
      this.options.hooks ? 1 : 0,
      JSON.stringify(channel),
      expiry,
      ...renew,
    );
    return { ...change(reply), missing: reply[4] ?? [] };
  }

  /** Users and connections: O(1) at any size (the sizes of two keys on the channel's shard). */
  async counts(channel: string): Promise<PresenceCounts> {
    const k = presenceKeys(this.options.prefix, channel);
    const [users, connections] = await this.redis.roomcastPresenceCounts(k.conns, k.users);
    return { users, connections };
  }

  /** The members, deduplicated by user, unless there are more than `max`: then none (the counts only). */
  async members(channel: string, max: number): Promise<{ members: PresenceMember[] | undefined } & PresenceCounts> {
    const k = presenceKeys(this.options.prefix, channel);
    const [users, connections, counts, infos] = await this.redis.roomcastPresenceMembers(k.conns, k.users, k.info, max);
    if (users > max) return { members: undefined, users, connections };
    const stored = new Map<string, string>();
    for (let i = 0; i < infos.length; i += 2) stored.set(infos[i]!, infos[i + 1]!);
    const members: PresenceMember[] = [];
    for (let i = 0; i < counts.length; i += 2) {
      const user = counts[i]!;
      const json = stored.get(user);
      const { joinedAt = 0, info } = json ? (JSON.parse(json) as { joinedAt?: number; info?: MemberInfo }) : {};
      members.push(
        info
          ? { user, connections: Number(counts[i + 1]), joinedAt, info }
          : { user, connections: Number(counts[i + 1]), joinedAt },
      );
    }
    members.sort((a, b) => a.joinedAt - b.joinedAt || (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
    return { members, users, connections };
  }

  /** The `presence` answer: members up to `max` users, the counts only above. */
  async presence(channel: string, max: number): Promise<PresenceOk> {
    const { members, users, connections } = await this.members(channel, max);
    return members ? { channel, members, count: users, connections } : { channel, count: users, connections };
  }

  /** The `presence_stats` answer. */
  async stats(channel: string): Promise<PresenceStatsOk> {
    return { channel, ...(await this.counts(channel)) };
  }

  /** Notes that these channels were renewed now (one call for all). */
  async touch(channels: readonly string[]): Promise<void> {
    const now = Date.now();
    await Promise.all(
      chunks(channels, TOUCH_BATCH).map((batch) => this.redis.zadd(this.indexKey, ...batch.flatMap((c) => [now, c]))),
    );
  }

  /** Channels nobody renewed since `before` (ms): their members were all on replicas that died. */
  async stale(before: number, limit = 500): Promise<string[]> {
    return this.redis.zrangebyscore(this.indexKey, "-inf", before, "LIMIT", 0, limit);
  }

  /** A channel with nobody left leaves the index. */
  async forget(channel: string): Promise<void> {
    await this.redis.zrem(this.indexKey, channel);
  }
}

/** Presence requests need a namespace with presence (4400 otherwise). */
export function requirePresence(target: ResolvedChannel): void {
  if (!target.settings.presence)
    throw new RoomcastError("bad_request", `namespace ${target.namespace} has no presence`, { field: "channel" });
}

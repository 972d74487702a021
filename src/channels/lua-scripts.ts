/**
 * The Lua scripts of the publish path and history. Each touches only one channel's keys and
 * its feed (one hash tag), so each runs on one Redis Cluster shard and stays atomic.
 */

/**
 * A channel's epoch names its history generation. A new one starts when the channel has
 * none (never published, or its history expired), and when the channel was last written
 * under another replication history: after a failover the promoted replica may lack the
 * newest events, so reusing their offsets under the old epoch would be a silent gap.
 */
const ENSURE_EPOCH = `
local function ensure_epoch(meta, history, candidate, ttl)
  local replid = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')
  local fields = redis.call('HMGET', meta, 'epoch', 'replid')
  if fields[1] and fields[2] == replid then return fields[1] end
  redis.call('DEL', history)
  redis.call('HSET', meta, 'epoch', candidate, 'top', 0, 'replid', replid)
  redis.call('EXPIRE', meta, ttl)
  return candidate
end
`;

/**
 * Assigns the next offset, appends to history, stores the snapshot and publishes the
 * delivery, all in one step: the order in history is the order on the wire everywhere.
 * KEYS: meta, history, snapshot, idempotency, feed
 * ARGV: candidate epoch, history size, ttl (s), json head, json tail, publish command
 *       ('PUBLISH' | 'SPUBLISH'), idempotency ttl (s, 0: none), snapshot json ('' : none), id
 * Returns { offset, epoch, id, duplicate (0|1) }.
 */
export const PUBLISH_SCRIPT = `${ENSURE_EPOCH}
local ttl = tonumber(ARGV[3])
if ARGV[7] ~= '0' then
  local prev = redis.call('GET', KEYS[4])
  if prev then
    local o, e, i = string.match(prev, '^(%d+) (%S+) (%S+)$')
    return { tonumber(o), e, i, 1 }
  end
end
local epoch = ensure_epoch(KEYS[1], KEYS[2], ARGV[1], ttl)
local offset = redis.call('HINCRBY', KEYS[1], 'top', 1)
local json = ARGV[4] .. ',"offset":' .. offset .. ',"epoch":"' .. epoch .. '"' .. ARGV[5]
local size = tonumber(ARGV[2])
if size > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', size, offset .. '-0', 'e', json)
  redis.call('EXPIRE', KEYS[2], ttl)
end
redis.call('EXPIRE', KEYS[1], ttl)
if ARGV[8] ~= '' then
  redis.call('SET', KEYS[3], ARGV[8], 'EX', ttl)
end
redis.call(ARGV[6], KEYS[5], offset .. ' ' .. epoch .. ' ' .. json)
if ARGV[7] ~= '0' then
  redis.call('SET', KEYS[4], offset .. ' ' .. epoch .. ' ' .. ARGV[9], 'EX', tonumber(ARGV[7]))
end
return { offset, epoch, ARGV[9], 0 }
`;

/**
 * Reads a channel's position and history in one consistent step. A channel without an
 * epoch gets one now, so that subscribers before the first event and the first event
 * agree on it.
 * KEYS: meta, history, snapshot
 * ARGV: candidate epoch, ttl (s), mode ('since' | 'last'), since offset or count, limit (0: all)
 * Returns { epoch, top, first offset held (0: none), entries (json strings), snapshot|false }.
 */
export const READ_SCRIPT = `${ENSURE_EPOCH}
local epoch = ensure_epoch(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))
local top = tonumber(redis.call('HGET', KEYS[1], 'top'))
local first = 0
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if head[1] then first = tonumber(string.match(head[1][1], '^(%d+)')) end
local raw
local n = tonumber(ARGV[4])
if ARGV[3] == 'since' and ARGV[5] == '0' then
  raw = redis.call('XRANGE', KEYS[2], (n + 1) .. '-0', '+')
elseif ARGV[3] == 'since' then
  raw = redis.call('XRANGE', KEYS[2], (n + 1) .. '-0', '+', 'COUNT', tonumber(ARGV[5]))
elseif n > 0 then
  raw = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', n)
else
  raw = {}
end
local entries = {}
for i, entry in ipairs(raw) do entries[i] = entry[2][2] end
return { epoch, top, first, entries, redis.call('GET', KEYS[3]) }
`;

/**
 * Ends a channel: deletes its keys (and any others of its hash tag passed along) and tells every
 * replica on its feed, which ends the local subscriptions with `unsubscribed`.
 * KEYS: feed, then the keys to delete
 * ARGV: publish command ('PUBLISH' | 'SPUBLISH'), message ('close <code> <reason>')
 */
export const CLOSE_SCRIPT = `
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call(ARGV[1], KEYS[1], ARGV[2])
return 1
`;

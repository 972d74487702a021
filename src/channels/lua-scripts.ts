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
 * Publishes events of one channel in order, each in one step: assigns the next offset, appends
 * to history, stores the snapshot and publishes the delivery, so the order in history is the
 * order on the wire everywhere. A single publish is a batch of one.
 * KEYS: meta, history, snapshot, feed, then each event's idempotency key (the channel's
 *       `-` key when it has none)
 * ARGV: candidate epoch, history size, ttl (s), json head, publish command ('PUBLISH' |
 *       'SPUBLISH'), idempotency ttl (s), then per event: json tail, snapshot json ('' : none),
 *       id, 1 if it has an idempotency key (else 0)
 * Returns per event { offset, epoch, id, duplicate (0|1) }, flattened.
 */
export const PUBLISH_SCRIPT = `${ENSURE_EPOCH}
local ttl = tonumber(ARGV[3])
local size = tonumber(ARGV[2])
local epoch = nil
local out = {}
for i = 1, #KEYS - 4 do
  local a = 6 + (i - 1) * 4
  local idem = KEYS[4 + i]
  local prev = nil
  if ARGV[a + 4] == '1' then prev = redis.call('GET', idem) end
  if prev then
    local o, e, id = string.match(prev, '^(%d+) (%S+) (%S+)$')
    table.insert(out, tonumber(o)); table.insert(out, e); table.insert(out, id); table.insert(out, 1)
  else
    if not epoch then epoch = ensure_epoch(KEYS[1], KEYS[2], ARGV[1], ttl) end
    local offset = redis.call('HINCRBY', KEYS[1], 'top', 1)
    local json = ARGV[4] .. ',"offset":' .. offset .. ',"epoch":"' .. epoch .. '"' .. ARGV[a + 1]
    if size > 0 then
      redis.call('XADD', KEYS[2], 'MAXLEN', size, offset .. '-0', 'e', json)
    end
    if ARGV[a + 2] ~= '' then
      redis.call('SET', KEYS[3], ARGV[a + 2], 'EX', ttl)
    end
    redis.call(ARGV[5], KEYS[4], offset .. ' ' .. epoch .. ' ' .. json)
    if ARGV[a + 4] == '1' then
      redis.call('SET', idem, offset .. ' ' .. epoch .. ' ' .. ARGV[a + 3], 'EX', tonumber(ARGV[6]))
    end
    table.insert(out, offset); table.insert(out, epoch); table.insert(out, ARGV[a + 3]); table.insert(out, 0)
  end
end
if epoch then
  if size > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
  redis.call('EXPIRE', KEYS[1], ttl)
end
return out
`;

/**
 * Reads a channel's position and history in one consistent step, bounded in bytes so that no
 * request can make Redis (or the gateway) carry a whole history at once. A channel without an
 * epoch gets one now, so that subscribers before the first event and the first event agree on it.
 * KEYS: meta, history, snapshot
 * ARGV: candidate epoch, ttl (s), mode ('since' | 'last'), since offset or count, limit (events,
 *       0: none), max bytes (0: none), expected epoch ('' : any), strict (since: '1' reads
 *       nothing unless every event after `since` is still held in the expected epoch, and
 *       then the last `fallback` events instead), fallback count
 * The epoch and the gap are checked before anything is read.
 * Returns { epoch, top, first offset held (0: none), entries (json strings, oldest first), snapshot|false,
 *           recovered (1: the events after since, complete), more (1: cut by the byte bound) }.
 */
export const READ_SCRIPT = `${ENSURE_EPOCH}
local epoch = ensure_epoch(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))
local top = tonumber(redis.call('HGET', KEYS[1], 'top'))
local first = 0
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if head[1] then first = tonumber(string.match(head[1][1], '^(%d+)')) end
local mode = ARGV[3]
local n = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local budget = tonumber(ARGV[6])
local recovered = 0
local more = 0
local entries = {}
local bytes = 0
local function take(json)
  if budget > 0 and #entries > 0 and bytes + #json > budget then more = 1; return false end
  bytes = bytes + #json
  entries[#entries + 1] = json
  return true
end
if mode == 'since' then
  local same = ARGV[7] == '' or ARGV[7] == epoch
  local held = n <= top and (n == top or (first > 0 and n >= first - 1))
  if same and held then recovered = 1 end
  if ARGV[8] == '1' and recovered == 0 then
    mode = 'last'
    n = tonumber(ARGV[9])
  elseif same then
    local from = n + 1
    while more == 0 and (limit == 0 or #entries < limit) do
      local count = 100
      if limit > 0 and limit - #entries < count then count = limit - #entries end
      local raw = redis.call('XRANGE', KEYS[2], from .. '-0', '+', 'COUNT', count)
      for _, entry in ipairs(raw) do
        if not take(entry[2][2]) then break end
        from = tonumber(string.match(entry[1], '^(%d+)')) + 1
      end
      if #raw < count then break end
    end
  end
end
if mode == 'last' and n > 0 then
  -- Newest first, so that the byte bound keeps the newest; handed back oldest first.
  local raw = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', n)
  for _, entry in ipairs(raw) do
    if not take(entry[2][2]) then break end
  end
  local count = #entries
  for i = 1, math.floor(count / 2) do entries[i], entries[count + 1 - i] = entries[count + 1 - i], entries[i] end
end
return { epoch, top, first, entries, redis.call('GET', KEYS[3]), recovered, more }
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

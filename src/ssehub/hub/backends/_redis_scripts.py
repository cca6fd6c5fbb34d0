"""The Lua scripts that make every write of :class:`RedisBackend` atomic.

Redis runs a script as one step: no other command sees it half done.  That is
what lets Redis, not a hub process, mint ``seq``: :data:`APPEND` increments the
counter and writes the event to its topic stream and to the global log in one
go, so ``seq`` is strictly increasing (and, in the log, contiguous) across all
topics and all nodes.

Key layout (``P`` is the backend's ``prefix``)::

    P:seq        string   the last seq minted (INCR)
    P:epoch      string   a random token naming this store's seq space
    P:t:{topic}  stream   the topic's history, entry id "{seq}-0"
    P:log        stream   every event of every topic, entry id "{seq}-0";
                          at most ``log_max_len`` entries and
                          ``log_max_bytes`` bytes (trimmed from its start,
                          in steps, when past either by 1/64)
    P:logbytes   string   the bytes of the entries in ``P:log`` (data +
                          event type, as ``P:bytes`` counts)
    P:topics     set      the topics that have a stream (for prune)
    P:trimmed    hash     topic -> the highest seq retention removed from it
                          (or ``P:forgotten`` when the topic was created)
    P:forgotten  string   the highest trim mark of any forgotten topic
    P:bytes      string   the bytes of the events held in topic streams
                          (data + event type, for the ``max_bytes`` quota)
    P:once:{tok} string   "{seq} {time} {fingerprint}" of the append with
                          one-time token ``tok`` (expires after 30 s; makes a
                          retried append a no-op)
    P:key:{key}  string   the same for a publisher's idempotency key
                          (expires after 24 h)
    P:keys       zset     the ``P:key:{key}`` names, scored by append time:
                          at most ``max_idempotency_keys``, oldest dropped

A topic whose stream retention emptied is forgotten: its stream, its member
of ``P:topics`` and its field of ``P:trimmed`` go, and ``P:forgotten`` is
raised to its trim mark (the gap convention of :mod:`._base`).  So per-topic
keys exist only for topics that have events.

Stream entries hold ``data``, ``time`` (float seconds, as text) and ``event``
(absent when the event has the default type); log entries add ``topic``.
Every script checks key types before the first write, so a stray key of the
wrong type fails the script before it changes anything.
"""

from __future__ import annotations

__all__ = ["APPEND", "PRUNE", "READ", "RESYNC"]

# Shared Lua helpers: trim a stream's oldest entries, recording the trim mark.
_TRIM_HELPERS = """
local function seq_of(id)
  return tonumber(string.match(id, '^(%d+)-'))
end

-- The bytes an entry counts for the quota: its data and event type (as _base.event_size).
local function entry_size(fields)
  local bytes = 0
  for f = 1, #fields, 2 do
    if fields[f] == 'data' or fields[f] == 'event' then bytes = bytes + #fields[f + 1] end
  end
  return bytes
end

-- The bytes of the oldest ``n`` entries of ``key``.
local function oldest_size(key, n)
  if n <= 0 then return 0 end
  local bytes = 0
  for _, entry in ipairs(redis.call('XRANGE', key, '-', '+', 'COUNT', n)) do
    bytes = bytes + entry_size(entry[2])
  end
  return bytes
end

-- Remove the oldest ``n`` entries of ``key``; record the last removed seq;
-- take their bytes off the ``stored`` counter.
local function drop_oldest(key, trimmed, topic, n, stored)
  if n <= 0 then return 0 end
  local old = redis.call('XRANGE', key, '-', '+', 'COUNT', n)
  if #old == 0 then return 0 end
  local freed = 0
  for _, entry in ipairs(old) do freed = freed + entry_size(entry[2]) end
  if redis.call('DECRBY', stored, freed) < 0 then redis.call('SET', stored, '0') end
  local last = seq_of(old[#old][1])
  redis.call('XTRIM', key, 'MINID', string.format('%d-0', last + 1))
  local mark = tonumber(redis.call('HGET', trimmed, topic) or '0')
  if last > mark then
    redis.call('HSET', trimmed, topic, string.format('%d', last))
  end
  return #old
end

-- Trim the live log from its start to at most ``max_len`` entries and ``max_bytes`` bytes
-- (``-1``: no byte bound), once it is past either by 1/64 (so most appends trim nothing).
local function trim_log(log, logbytes, max_len, max_bytes)
  local len = redis.call('XLEN', log)
  local bytes = tonumber(redis.call('GET', logbytes) or '0')
  local over_bytes = max_bytes >= 0 and bytes > max_bytes + math.floor(max_bytes / 64)
  if len <= max_len + math.floor(max_len / 64) and not over_bytes then return end
  local last = nil
  while len > max_len or (max_bytes >= 0 and bytes > max_bytes) do
    local start = last and string.format('(%s', last) or '-'
    local batch = redis.call('XRANGE', log, start, '+', 'COUNT', 256)
    if #batch == 0 then break end
    for _, entry in ipairs(batch) do
      if len <= max_len and (max_bytes < 0 or bytes <= max_bytes) then break end
      last = entry[1]
      len = len - 1
      bytes = bytes - entry_size(entry[2])
    end
  end
  if last then
    redis.call('XTRIM', log, 'MINID', string.format('%d-0', seq_of(last) + 1))
  end
  redis.call('SET', logbytes, string.format('%d', math.max(bytes, 0)))
end

-- How many of the oldest entries of ``key`` are older than ``cutoff``.
-- Only a leading run is counted: a stream can only be trimmed from its start.
local function count_expired(key, cutoff)
  local n = 0
  local start = '-'
  while true do
    local batch = redis.call('XRANGE', key, start, '+', 'COUNT', 256)
    for _, entry in ipairs(batch) do
      local fields = entry[2]
      local t = nil
      for i = 1, #fields, 2 do
        if fields[i] == 'time' then t = tonumber(fields[i + 1]) end
      end
      if t == nil or t >= cutoff then return n end
      n = n + 1
    end
    if #batch < 256 then return n end
    start = '(' .. batch[#batch][1]
  end
end

-- Forget an emptied topic: drop its stream, set member and trim mark, and
-- raise the store-wide ``forgotten`` mark to that trim mark.
local function forget(key, trimmed, topics, forgotten, topic)
  local mark = tonumber(redis.call('HGET', trimmed, topic) or '0')
  redis.call('DEL', key)
  redis.call('SREM', topics, topic)
  redis.call('HDEL', trimmed, topic)
  if mark > tonumber(redis.call('GET', forgotten) or '0') then
    redis.call('SET', forgotten, string.format('%d', mark))
  end
end

local function check_type(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('WRONGTYPE ssehub key ' .. key .. ' holds a ' .. t)
  end
  return nil
end
"""

#: Append one event, at most once per token.
#: KEYS: seq, epoch, topic stream, log, trimmed, topics, once (the append's
#: token or idempotency key), forgotten, bytes, held keys, log bytes.
#: ARGV: topic, data, event ('' when absent), has_event ('1'/'0'), time,
#: max_events ('-1': no bound), log_max_len, epoch candidate, token TTL (ms),
#: fingerprint of the event, private ('1'/'0': a private event's entries carry
#: the field ``private 1``, on the topic stream and on the live log),
#: max_topics and max_bytes (the store quotas, '-1': no bound), max_keys (the
#: idempotency keys held, '-1' for a one-time token, which is not listed),
#: log_max_bytes ('-1': no bound).
#: Returns ``{seq, epoch}``; the epoch is created from the candidate if missing.
#: If the token was seen (a retry of an append that did run), nothing is
#: written and ``{seq, epoch, record}`` is returned, ``record`` being the
#: token's value "{seq} {time} {fingerprint}".  If a quota is full, nothing is
#: written and ``{-1, epoch, kind}`` is returned (``topics`` or ``bytes``).
APPEND = (
    _TRIM_HELPERS
    + """
for _, check in ipairs({{KEYS[1], 'string'}, {KEYS[2], 'string'}, {KEYS[3], 'stream'},
                        {KEYS[4], 'stream'}, {KEYS[5], 'hash'}, {KEYS[6], 'set'},
                        {KEYS[8], 'string'}, {KEYS[9], 'string'}, {KEYS[10], 'zset'},
                        {KEYS[11], 'string'}}) do
  local err = check_type(check[1], check[2])
  if err then return err end
end
local done = redis.call('GET', KEYS[7])
local epoch = redis.call('GET', KEYS[2])
if done and epoch then
  return {tonumber(string.match(done, '^(%d+)')), epoch, done}
end
if not epoch then
  epoch = ARGV[8]
  redis.call('SET', KEYS[2], epoch)
end
local exists = redis.call('EXISTS', KEYS[3]) == 1
local max_events = tonumber(ARGV[6])
local max_topics = tonumber(ARGV[12])
if max_topics >= 0 and not exists and redis.call('SCARD', KEYS[6]) >= max_topics then
  return {-1, epoch, 'topics'}
end
local size = #ARGV[2]
if ARGV[4] == '1' then size = size + #ARGV[3] end
local max_bytes = tonumber(ARGV[13])
if max_bytes >= 0 then
  local after = tonumber(redis.call('GET', KEYS[9]) or '0') + size
  if after > max_bytes and exists and max_events >= 0 then
    after = after - oldest_size(KEYS[3], redis.call('XLEN', KEYS[3]) + 1 - max_events)
  end
  if after > max_bytes then return {-1, epoch, 'bytes'} end
end
local seq = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[7], string.format('%d %s %s', seq, ARGV[5], ARGV[10]), 'PX', ARGV[9])
local max_keys = tonumber(ARGV[14])
if max_keys >= 0 then
  local now = tonumber(ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now - tonumber(ARGV[9]) / 1000)
  redis.call('ZADD', KEYS[10], now, KEYS[7])
  local excess = redis.call('ZCARD', KEYS[10]) - max_keys
  if excess > 0 then
    local oldest = redis.call('ZPOPMIN', KEYS[10], excess)
    for i = 1, #oldest, 2 do redis.call('DEL', oldest[i]) end
  end
end
if not exists then
  local forgotten = tonumber(redis.call('GET', KEYS[8]) or '0')
  if forgotten > tonumber(redis.call('HGET', KEYS[5], ARGV[1]) or '0') then
    redis.call('HSET', KEYS[5], ARGV[1], string.format('%d', forgotten))
  end
end
local id = string.format('%d-0', seq)
local fields = {'data', ARGV[2], 'time', ARGV[5]}
if ARGV[4] == '1' then
  table.insert(fields, 'event')
  table.insert(fields, ARGV[3])
end
if ARGV[11] == '1' then
  table.insert(fields, 'private')
  table.insert(fields, '1')
end
redis.call('XADD', KEYS[3], id, unpack(fields))
redis.call('XADD', KEYS[4], id, 'topic', ARGV[1], unpack(fields))
redis.call('INCRBY', KEYS[11], size)
trim_log(KEYS[4], KEYS[11], tonumber(ARGV[7]), tonumber(ARGV[15]))
redis.call('SADD', KEYS[6], ARGV[1])
redis.call('INCRBY', KEYS[9], size)
if max_events >= 0 then
  drop_oldest(KEYS[3], KEYS[5], ARGV[1], redis.call('XLEN', KEYS[3]) - max_events, KEYS[9])
  if redis.call('XLEN', KEYS[3]) == 0 then
    forget(KEYS[3], KEYS[5], KEYS[6], KEYS[8], ARGV[1])
  end
end
return {seq, epoch}
"""
)

#: Apply retention to one topic.
#: KEYS: topic stream, trimmed, topics, forgotten, bytes.
#: ARGV: topic, cutoff time ('': no age bound), max_events ('-1': no bound).
#: Returns how many entries were removed.  An emptied topic is forgotten (its
#: trim mark moves into ``forgotten``, so old cursors still see the gap).
PRUNE = (
    _TRIM_HELPERS
    + """
for _, check in ipairs({{KEYS[1], 'stream'}, {KEYS[2], 'hash'}, {KEYS[3], 'set'},
                        {KEYS[4], 'string'}, {KEYS[5], 'string'}}) do
  local err = check_type(check[1], check[2])
  if err then return err end
end
local removed = 0
local max_events = tonumber(ARGV[3])
if max_events >= 0 then
  removed = removed + drop_oldest(KEYS[1], KEYS[2], ARGV[1],
                                  redis.call('XLEN', KEYS[1]) - max_events, KEYS[5])
end
if ARGV[2] ~= '' then
  local cutoff = tonumber(ARGV[2])
  removed = removed + drop_oldest(KEYS[1], KEYS[2], ARGV[1], count_expired(KEYS[1], cutoff),
                                  KEYS[5])
end
if redis.call('XLEN', KEYS[1]) == 0 then
  forget(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1])
end
return removed
"""
)

#: Read the events of several topics after a cursor, merged by seq, bounded by
#: count and bytes, with the gap flag, in one atomic step.
#: KEYS: trimmed, forgotten, then one stream per topic.
#: ARGV: after, limit, max_bytes ('-1': no bound), then the topic names.
#: Returns ``{gap, more, out}`` with ``gap``/``more`` 0 or 1 and ``out`` a flat
#: list of (topic index from 1, entry id, fields) triples in seq order.  Each
#: topic's stream is walked one entry at a time (a one-entry lookahead per
#: topic), so the script holds the result plus one entry per topic.  Size is
#: the byte length of ``data`` plus ``event``, as ``_base.event_size``.
READ = """
local after = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local max_bytes = tonumber(ARGV[3])
local n = #KEYS - 2
local forgotten = tonumber(redis.call('GET', KEYS[2]) or '0')
local gap = 0
local heads = {}
local function next_entry(i, from)
  local page = redis.call('XRANGE', KEYS[i + 2], string.format('%d-0', from), '+', 'COUNT', 1)
  if #page == 0 then return false end
  return {tonumber(string.match(page[1][1], '^(%d+)-')), page[1]}
end
for i = 1, n do
  if redis.call('EXISTS', KEYS[i + 2]) == 1 then
    if tonumber(redis.call('HGET', KEYS[1], ARGV[3 + i]) or '0') > after then gap = 1 end
    heads[i] = next_entry(i, after + 1)
  else
    if forgotten > after then gap = 1 end
    heads[i] = false
  end
end
local out = {}
local count, size, more = 0, 0, 0
while true do
  local best = nil
  for i = 1, n do
    if heads[i] and (best == nil or heads[i][1] < heads[best][1]) then best = i end
  end
  if best == nil then break end
  if count >= limit then more = 1 break end
  local entry = heads[best][2]
  local fields = entry[2]
  local bytes = 0
  for f = 1, #fields, 2 do
    if fields[f] == 'data' or fields[f] == 'event' then bytes = bytes + #fields[f + 1] end
  end
  if max_bytes >= 0 and count > 0 and size + bytes > max_bytes then more = 1 break end
  size = size + bytes
  count = count + 1
  out[#out + 1] = best
  out[#out + 1] = entry[1]
  out[#out + 1] = fields
  heads[best] = next_entry(best, heads[best][1] + 1)
end
return {gap, more, out}
"""

#: Read (and, if needed, create or replace) the epoch together with the head.
#: KEYS: seq, epoch.  ARGV: epoch candidate, epoch to replace ('' : none).
#: If the stored epoch equals ARGV[2] it is replaced by the candidate (the
#: store lost events and its seq space is no longer trustworthy); if there is
#: none, the candidate becomes the epoch.  Returns ``{epoch, head}``.
RESYNC = """
local epoch = redis.call('GET', KEYS[2])
if (not epoch) or (ARGV[2] ~= '' and epoch == ARGV[2]) then
  epoch = ARGV[1]
  redis.call('SET', KEYS[2], epoch)
end
return {epoch, tonumber(redis.call('GET', KEYS[1]) or '0')}
"""

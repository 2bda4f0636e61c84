"""The Lua scripts of the shared state: each runs atomically in Redis, so a check and the
write it allows cannot be split by another node (docs/cluster-state.md).

Time is Redis's own clock (``TIME``), so the nodes' clocks need not agree. A lease is
alive while its deadline in the ``nodes`` sorted set is later than now. What a node holds
is listed under its name (the usage hashes it has a field in, the uuids it claimed), so a
reaper releases it without scanning the keyspace. Those per-node key names are built in
the scripts: the state is one Redis (or a primary with replicas), not a Redis Cluster.
"""

from __future__ import annotations

_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function alive(nodes, node, now)
  local deadline = redis.call('ZSCORE', nodes, node)
  return deadline and tonumber(deadline) > now
end

-- Everything a node holds: its reservations and its uuid claims.
local function release_node(prefix, node)
  local domains = prefix .. ':node:' .. node .. ':domains'
  for _, usage in ipairs(redis.call('SMEMBERS', domains)) do
    redis.call('HDEL', usage, 'c:' .. node, 'p:' .. node)
  end
  local uuids = prefix .. ':node:' .. node .. ':uuids'
  local owners = prefix .. ':owners'
  for _, uuid in ipairs(redis.call('SMEMBERS', uuids)) do
    if redis.call('HGET', owners, uuid) == node then
      redis.call('HDEL', owners, uuid)
    end
  end
  redis.call('DEL', domains, uuids)
end
"""

# KEYS: a node's tracked calls. Their snapshots, removed: one caller gets them.
TAKE_CALLS = """
local calls = redis.call('HVALS', KEYS[1])
redis.call('DEL', KEYS[1])
return calls
"""

# KEYS: nodes. ARGV: prefix, node, lease ms. 1 when an earlier life was registered.
JOIN = (
    _COMMON
    + """
local had = redis.call('ZSCORE', KEYS[1], ARGV[2])
release_node(ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[3]), ARGV[2])
if had then return 1 end
return 0
"""
)

# KEYS: nodes. ARGV: node, lease ms. 0 when the lease lapsed: it is not renewed then.
HEARTBEAT = (
    _COMMON
    + """
local now = now_ms()
if not alive(KEYS[1], ARGV[1], now) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""
)

# KEYS: nodes. ARGV: prefix, most nodes to reap. The nodes reaped.
REAP = (
    _COMMON
    + """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, ARGV[2])
for _, node in ipairs(dead) do
  release_node(ARGV[1], node)
  redis.call('ZREM', KEYS[1], node)
end
return dead
"""
)

# KEYS: nodes. ARGV: prefix, node.
LEAVE = (
    _COMMON
    + """
release_node(ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[2])
return 1
"""
)

# KEYS: nodes, the domain's usage, the node's domains.
# ARGV: node, channels, pstn, channel limit, pstn limit.
# {-1} without a lease, else {1 taken | 0 refused, channels in use, pstn legs in use}.
TAKE = (
    _COMMON
    + """
local node = ARGV[1]
if not alive(KEYS[1], node, now_ms()) then return {-1, 0, 0} end
local channels, pstn = 0, 0
local fields = redis.call('HGETALL', KEYS[2])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'c:' then
    channels = channels + tonumber(fields[i + 1])
  else
    pstn = pstn + tonumber(fields[i + 1])
  end
end
local want_channels, want_pstn = tonumber(ARGV[2]), tonumber(ARGV[3])
if (want_channels > 0 and channels + want_channels > tonumber(ARGV[4]))
    or (want_pstn > 0 and pstn + want_pstn > tonumber(ARGV[5])) then
  return {0, channels, pstn}
end
if want_channels > 0 then redis.call('HINCRBY', KEYS[2], 'c:' .. node, want_channels) end
if want_pstn > 0 then redis.call('HINCRBY', KEYS[2], 'p:' .. node, want_pstn) end
redis.call('SADD', KEYS[3], KEYS[2])
return {1, channels, pstn}
"""
)

# KEYS: the domain's usage, the node's domains. ARGV: node, channels, pstn.
# A node's counts stop at 0, as the engine's did.
GIVE_BACK = """
local function lower(field, count)
  if count > 0 and redis.call('HINCRBY', KEYS[1], field, -count) <= 0 then
    redis.call('HDEL', KEYS[1], field)
  end
end
lower('c:' .. ARGV[1], tonumber(ARGV[2]))
lower('p:' .. ARGV[1], tonumber(ARGV[3]))
if redis.call('HEXISTS', KEYS[1], 'c:' .. ARGV[1]) == 0
    and redis.call('HEXISTS', KEYS[1], 'p:' .. ARGV[1]) == 0 then
  redis.call('SREM', KEYS[2], KEYS[1])
end
return 1
"""

# KEYS: nodes, owners, the node's uuids. ARGV: node, uuids… 0 without a lease.
CLAIM = (
    _COMMON
    + """
if not alive(KEYS[1], ARGV[1], now_ms()) then return 0 end
for i = 2, #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[1])
  redis.call('SADD', KEYS[3], ARGV[i])
end
return 1
"""
)

# KEYS: nodes, owners. ARGV: uuid. The owner while its lease lives, else nil.
OWNER = (
    _COMMON
    + """
local node = redis.call('HGET', KEYS[2], ARGV[1])
if node and alive(KEYS[1], node, now_ms()) then return node end
return false
"""
)

# KEYS: owners, the node's uuids. ARGV: node, uuids… Only the node's own claims.
RELEASE = """
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
  redis.call('SREM', KEYS[2], ARGV[i])
end
return 1
"""

# KEYS: nodes. ARGV: node, channel, message. -1 when the node's lease is not alive,
# else how many listeners got it (0: the node does not listen).
SEND = (
    _COMMON
    + """
if not alive(KEYS[1], ARGV[1], now_ms()) then return -1 end
return redis.call('PUBLISH', ARGV[2], ARGV[3])
"""
)

# KEYS: the domain's events, every domain's events.
# ARGV: domain history, all history, domain, event. The event's seq.
# Stream ids 0-<n>: XADD's auto sequence (0-*) is the counter, so the seq lives with the
# history it numbers; both streams are written in one step, in the same order.
PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '0-*', 'e', ARGV[4])
local seq = string.match(id, '^0%-(%d+)$')
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-*', 'd', ARGV[3], 's', seq, 'e', ARGV[4])
return tonumber(seq)
"""

# PUBLISH for several events in one step, in order (a busy node's events: one round trip
# for many). KEYS: every domain's events, then each event's domain's events.
# ARGV: domain history, all history, then domain and event for each. Their seqs.
PUBLISH_MANY = """
local seqs = {}
for i = 2, #KEYS do
  local domain, event = ARGV[2 * i - 1], ARGV[2 * i]
  local id = redis.call('XADD', KEYS[i], 'MAXLEN', ARGV[1], '0-*', 'e', event)
  local seq = string.match(id, '^0%-(%d+)$')
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], '0-*', 'd', domain, 's', seq, 'e', event)
  seqs[#seqs + 1] = tonumber(seq)
end
return seqs
"""

# KEYS: the source's failures, the throttle's blocked sources.
# ARGV: source, window ms, max failures, block ms, a unique member. 1 when a block starts.
# throttle.FailureThrottle's rules; a source's failures are kept at most max failures, the
# newest, and at most a window long; ended blocks are dropped on the way.
RECORD_FAILURE = (
    _COMMON
    + """
local now = now_ms()
local window, most, block = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(most + 1))
redis.call('PEXPIRE', KEYS[1], math.max(1, window))
if redis.call('ZCARD', KEYS[1]) >= most and not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], now + block, ARGV[1])
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[2], math.max(now + 1, tonumber(last[2])))
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
)

# KEYS: the throttle's blocked sources. ARGV: source. Milliseconds left of its block.
BLOCKED_FOR = (
    _COMMON
    + """
local ends = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not ends then return 0 end
return math.max(0, tonumber(ends) - now_ms())
"""
)

# KEYS: the throttle's blocked sources. How many are blocked now.
BLOCKED_SOURCES = (
    _COMMON
    + """
return redis.call('ZCOUNT', KEYS[1], '(' .. now_ms(), '+inf')
"""
)

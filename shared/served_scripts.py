"""Lua scripts of the served-list log (shared/served.py): each is one atomic Redis round trip.

Logging an answer used to be a MULTI of ~20 commands; redis-py packs and parses each of them in
Python, which cost the gateway ~0.5 ms of CPU per answer (benchmarks/loop_cost.py). One script
call with the list's values as arguments does the same writes server-side.
"""

from __future__ import annotations

# An arm's counters keep, besides totals, the per-user sums the experiment's test needs (users are
# its unit: shared/sequential.py `ratio`). Per user u of the arm (its per-user hash,
# fields "<user>\0<what>"): n = lists served, m = items shown, y:<kind> = lists with that kind of
# event, z = items clicked. The counters add sum(n^2), sum(m^2), sum(y^2), sum(z^2), sum(n y) and
# sum(m z), each updated by what the step adds to it.
#
# RECORD logs one served list. KEYS: 1 the served stream, 2 the list's attribution record, 3 the
# user's "last list that showed each product" hash, 4 the version's hourly counters, 5 the set of
# versions with counters, 6 the exploration draws; in an experiment also 7 the arm's counters,
# 8 its per-user hash, 9 its latencies. ARGV: 1 the full list (JSON, as the stream keeps it), 2
# the attribution record (JSON), 3 the rest as one JSON object (one argument rather than ~40:
# redis-py packs each argument in Python): id, version, products (in order), draws (the
# exploration draws' JSON), window (s), bound (the stream's), ttl (the counters'), positions
# (counted), explore_log (draws kept); in an experiment user, degraded (0/1), arm_ttl, ms (a
# string, "" if none), latencies (kept).
RECORD = """
local a = cjson.decode(ARGV[3])
local shown = #a.products
redis.call('XADD', KEYS[1], 'MAXLEN', '~', a.bound, '*', 'served', ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'EX', a.window)
if shown > 0 then
  local fields = {}
  for _, product in ipairs(a.products) do
    fields[#fields + 1] = product
    fields[#fields + 1] = a.id
  end
  redis.call('HSET', KEYS[3], unpack(fields))
  redis.call('EXPIRE', KEYS[3], a.window)
end
redis.call('HINCRBY', KEYS[4], 'lists', 1)
redis.call('HINCRBY', KEYS[4], 'items', shown)
for i = 1, math.min(shown, a.positions) do
  redis.call('HINCRBY', KEYS[4], 'shown@' .. i, 1)
end
redis.call('EXPIRE', KEYS[4], a.ttl)
redis.call('SADD', KEYS[5], a.version)
for _, draw in ipairs(a.draws) do
  redis.call('LPUSH', KEYS[6], draw)
  redis.call('LTRIM', KEYS[6], 0, a.explore_log - 1)
end
if #KEYS > 6 then
  local c, h, u, L = KEYS[7], KEYS[8], a.user, shown
  local n = redis.call('HINCRBY', h, u .. '\0n', 1)
  if n == 1 then redis.call('HINCRBY', c, 'users', 1) end
  redis.call('HINCRBY', c, 'lists', 1)
  redis.call('HINCRBY', c, 'n2', 2 * n - 1)
  local m = redis.call('HINCRBY', h, u .. '\0m', L)
  redis.call('HINCRBY', c, 'items', L)
  redis.call('HINCRBY', c, 'm2', 2 * (m - L) * L + L * L)
  for _, k in ipairs({'click', 'add_to_cart', 'purchase'}) do
    local y = tonumber(redis.call('HGET', h, u .. '\0y:' .. k) or '0')
    if y > 0 then redis.call('HINCRBY', c, 'ny:' .. k, y) end
  end
  local z = tonumber(redis.call('HGET', h, u .. '\0z') or '0')
  if z > 0 then redis.call('HINCRBY', c, 'mz', z * L) end
  if a.degraded == 1 then redis.call('HINCRBY', c, 'degraded', 1) end
  redis.call('EXPIRE', c, a.arm_ttl)
  redis.call('EXPIRE', h, a.arm_ttl)
  if a.ms ~= '' then
    redis.call('LPUSH', KEYS[9], a.ms)
    redis.call('LTRIM', KEYS[9], 0, a.latencies - 1)
    redis.call('EXPIRE', KEYS[9], a.arm_ttl)
  end
end
return shown
"""
# KEYS: the arm's counters, its set of lists with this kind of event, its set of clicked items,
# its per-user hash; ARGV: kind, list id, "<list id>\0<product>" (or ""), revenue (or ""), ttl,
# user.
COUNT_ARM = """
local c, h, u = KEYS[1], KEYS[4], ARGV[6]
redis.call('HINCRBY', c, ARGV[1], 1)
if redis.call('SADD', KEYS[2], ARGV[2]) == 1 then
  redis.call('HINCRBY', c, ARGV[1] .. '_lists', 1)
  local y = redis.call('HINCRBY', h, u .. '\0y:' .. ARGV[1], 1)
  redis.call('HINCRBY', c, 'y2:' .. ARGV[1], 2 * y - 1)
  redis.call('HINCRBY', c, 'ny:' .. ARGV[1], tonumber(redis.call('HGET', h, u .. '\0n') or '0'))
end
if ARGV[1] == 'click' and ARGV[3] ~= '' and redis.call('SADD', KEYS[3], ARGV[3]) == 1 then
  redis.call('HINCRBY', c, 'click_items', 1)
  local z = redis.call('HINCRBY', h, u .. '\0z', 1)
  redis.call('HINCRBY', c, 'z2', 2 * z - 1)
  redis.call('HINCRBY', c, 'mz', tonumber(redis.call('HGET', h, u .. '\0m') or '0'))
end
if ARGV[4] ~= '' then redis.call('HINCRBYFLOAT', KEYS[1], 'revenue', ARGV[4]) end
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[5]) end
return 1
"""

"""The Lua scripts' text: each check-and-write runs atomically inside Redis (`scripts`
registers them).

Conventions shared by every script that touches entries:
- KEYS[1] is the epoch key of the slot the script works in and ARGV[1] the epoch the process
  believes in. A missing epoch (an empty restart) is re-created above every value it had: the
  server's clock in milliseconds, and above the caller's belief. An epoch below the caller's
  belief (a promoted replica that missed the last bump) moves past it. If the two differ, the
  script changes nothing and returns a one-element array holding the current epoch, so the
  caller adopts it in the same round trip. Epoch keys have no TTL: no `volatile-*` eviction
  policy can take them, so a missing one means that Redis lost its data.
- Generation counters (views) take their values from the slot's sequence (`<epoch key>:seq`,
  no TTL): a counter that is missing (never bumped, or evicted) is re-created with the next
  number of the sequence, never read as 0 and never given a number it or any other counter of
  its slot had (`_GENERATION`).
- Entries are `<version>|<body>`; an empty body is a tombstone. `version_of` reads the version.
- A write never replaces an entry of a higher version (rule 2: no stale overwrite).
- Leases: a miss leases in the same round trip; a fill lands with its lease only (`_LEASE`).
- Every key a script touches is in one slot (`layout`): declared, or built with a declared key's
  hash tag (a view's entry and lease). LOOKUP_VIEW builds its members' keys on one node, and on
  a cluster only when every member's id carries the view's own slot (a client's orders).
"""

from orderflow.cache.lua_epochs import FRESH

_PRELUDE = (
    FRESH
    + """
local epoch = tonumber(redis.call('GET', KEYS[1]))
local believed = tonumber(ARGV[1])
if not epoch or epoch < believed then
  epoch = epoch and believed + 1 or math.max(fresh(), believed + 1)
  redis.call('SET', KEYS[1], string.format('%d', epoch))
end
if epoch ~= believed then return {epoch} end
"""
    + """local function version_of(raw)
  return tonumber(string.sub(raw, 1, string.find(raw, '|', 1, true) - 1))
end
"""
)

# A view family's generation counter (KEYS[1] is its slot's epoch key). Every number a counter
# ever holds comes from the slot's sequence, which has no TTL: a counter that went missing (never
# bumped, expired, evicted) comes back with a number no counter of the slot ever had, so no view
# cached under an earlier number is found again. A missing sequence (not under a `volatile-*`
# policy) restarts at the server's clock in microseconds: above every number counted before.
_GENERATION = """
local function next_number()
  local seq = KEYS[1] .. ':seq'
  if redis.call('EXISTS', seq) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', seq, string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2])))
  end
  return redis.call('INCR', seq)
end
local function generation(key, ttl_ms)
  local gen = redis.call('GET', key)
  if gen then return gen end
  gen = string.format('%d', next_number())
  redis.call('SET', key, gen, 'PX', ttl_ms)
  return gen
end
"""

# Leases (the memcache design, NSDI '13): a lookup that misses grants a lease to load the value,
# in the same round trip; a fill lands only with its own live lease, and releases it; every
# write (put, invalidate, delete) revokes the entry's lease. So a reader whose database read may
# predate a write can never fill, even after the write's tombstone expired or was evicted.
_LEASE = """
local function lease(key, token)
  if redis.call('SET', key, token, 'NX', 'PX', ARGV[3]) then return 1 end
  local holder = redis.call('GET', key)
  if holder == token then return 1 end  -- ours already (a batch run again after NOSCRIPT)
  return holder or 0
end
local function data(raw) return raw and string.find(raw, '|', 1, true) < #raw and raw end
"""

# KEYS: epoch, entry, lease. ARGV: epoch, token, lease_ms.
# A data entry -> its bytes. Missing or a tombstone -> 1 if this caller now holds the lease,
# {0, holder} if another caller does (the holder's token, so a caller of the same process can
# wait on that load instead of polling).
LOOKUP = (
    _PRELUDE
    + _LEASE
    + """
local raw = data(redis.call('GET', KEYS[2]))
if raw then return raw end
local holder = lease(KEYS[3], ARGV[2])
if holder == 1 then return 1 end
return {0, holder}
"""
)

# KEYS: epoch, entries..., their leases... ARGV: epoch, token, lease_ms.
# {0, one element per entry}: its bytes if it holds data, 1 if this caller now holds its lease,
# 0 if another caller does. A moved epoch is the one-element {epoch}.
LOOKUP_MANY = (
    _PRELUDE
    + _LEASE
    + """
local n = (#KEYS - 1) / 2
local found = {0}
for i = 2, n + 1 do
  local raw = data(redis.call('GET', KEYS[i]))
  if raw then found[i] = raw
  elseif lease(KEYS[i + n], ARGV[2]) == 1 then found[i] = 1
  else found[i] = 0 end
end
return found
"""
)

# KEYS: epoch, leases... ARGV: epoch, token, lease_ms. {0, per lease: 1 if this caller now
# holds it, 0 if another caller does}: a refresh (the quiet window's warm-up) loads under leases
# like a miss does, whether the entries are stored or not, so a write meanwhile wins.
LEASE_MANY = (
    _PRELUDE
    + _LEASE
    + """
local got = {0}
for i = 2, #KEYS do got[i] = lease(KEYS[i], ARGV[2]) == 1 and 1 or 0 end
return got
"""
)

# KEYS: epoch, generation counters... ARGV: epoch, token, lease_ms, view key head, view key
# tail, member key head, counter ttl_ms, members' token, member slot tag, its slot.
# A view's generations, its entry and (for a listing) its members, in one round trip. The entry
# key is head .. 'g' .. gens joined by '.' .. tail (see KeySpace.view_entry); a missing counter
# is re-created (`_GENERATION`). A member head ('' = not a listing) makes a hit also look up the
# entries at head .. {id} for every id in the view body's "ids" array, leasing the missing ones
# to the members' token as LOOKUP_MANY does (not to the view's: nobody may wait on a view's
# token for a member's load). With a member slot tag (a cluster), the members are at
# head .. {tag}:id, and only if every id carries that slot (id % 16384): else none is read.
# A data entry -> {entry bytes, per member: bytes, 1 or 0}, or {entry bytes, -1} if the members
# are in other slots. Missing or a tombstone -> {0, key, 1 or holder}: the key to load into
# (the generations may move before the fill) and its lease.
LOOKUP_VIEW = (
    _PRELUDE
    + _GENERATION
    + _LEASE
    + """
local gens = {}
for i = 2, #KEYS do gens[i - 1] = generation(KEYS[i], ARGV[7]) end
local key = ARGV[4] .. 'g' .. table.concat(gens, '.') .. ARGV[5]
local raw = data(redis.call('GET', key))
if not raw then return {0, key, lease('lease:' .. key, ARGV[2])} end
local found = {raw}
if ARGV[6] ~= '' then
  local body = string.sub(raw, string.find(raw, '|', 1, true) + 1)
  local ids = cjson.decode(body)['ids']
  local tag, slot = ARGV[9], tonumber(ARGV[10])
  if tag ~= '' then
    for _, id in ipairs(ids) do if id % 16384 ~= slot then return {raw, -1} end end
  end
  for i, id in ipairs(ids) do
    local n = string.format('%d', id)  -- ids are integers
    local member = tag == '' and ARGV[6] .. '{' .. n .. '}' or ARGV[6] .. '{' .. tag .. '}:' .. n
    local got = data(redis.call('GET', member))
    if got then found[i + 1] = got elseif lease('lease:' .. member, ARGV[8]) == 1 then
      found[i + 1] = 1 else found[i + 1] = 0 end
  end
end
return found
"""
)

# KEYS: epoch, entry, lease. ARGV: epoch, version, stored entry, ttl_ms, token.
# A fill after a miss: 1 stored, 0 refused because the entry (data or tombstone) is newer, 2
# refused because this caller's lease is gone (a write revoked it, or it expired). Equal
# versions are allowed: the value a tombstone announced may be filled. Releases the lease.
FILL = (
    _PRELUDE
    + """
if redis.call('GET', KEYS[3]) ~= ARGV[5] then return 2 end
redis.call('DEL', KEYS[3])
local raw = redis.call('GET', KEYS[2])
if raw and version_of(raw) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1
"""
)

# KEYS: epoch, entry, lease. ARGV: epoch, version, stored entry, ttl_ms.
# Write-through after a commit: 1 stored, 0 refused because the entry is newer. Revokes the
# lease: a reader that loaded before the commit must not fill.
PUT = (
    _PRELUDE
    + """
redis.call('DEL', KEYS[3])
local raw = redis.call('GET', KEYS[2])
if raw and version_of(raw) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1
"""
)

# KEYS: epoch, entry, lease. ARGV: epoch, committed version, tombstone, ttl_ms.
# 1 tombstone written, lease revoked; 0 the entry holds this version or newer (no older fill can
# land then: a repeat, e.g. a repair, leaves a reader's lease). FILL refuses older versions.
INVALIDATE = (
    _PRELUDE
    + """
local raw = redis.call('GET', KEYS[2])
if raw and version_of(raw) >= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1
"""
)

# KEYS: epoch, entry. ARGV: epoch, committed version, tombstone, ttl_ms.
# The writer's second look (`recheck`): 1 if the entry held an older version (an older put that
# landed after Redis evicted this one) and now holds a tombstone at this version; 0 otherwise. A
# missing entry holds nothing stale and a lease held now was granted after this write revoked
# the earlier ones: both are left alone, so no reader's fill is refused for nothing.
RECHECK = (
    _PRELUDE
    + """
local raw = redis.call('GET', KEYS[2])
if raw and version_of(raw) < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  return 1
end
return 0
"""
)

# KEYS: epoch, entry, lease. ARGV: epoch. Removes the entry, revokes its lease.
DELETE = _PRELUDE + "\nredis.call('DEL', KEYS[2], KEYS[3])\nreturn 1\n"

# KEYS: epoch, generation counters... ARGV: epoch, counter ttl_ms. Gives every counter the
# next number of its slot's sequence (`_GENERATION`), so no view entry cached under an earlier
# number becomes reachable again, whether the counter was there or not. Counters expire
# `ttl_ms` after their last bump: a counter that expired comes back with a new number.
BUMP = (
    _PRELUDE
    + _GENERATION
    + """
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], string.format('%d', next_number()), 'PX', ARGV[2])
end
return 1
"""
)

# KEYS: epoch, counters... ARGV: epoch, counter ttl_ms. {0, each counter}, a missing one
# re-created (`_GENERATION`), or {epoch}: a view whose counters are in several slots (a
# cluster) reads them first.
GENERATIONS = (
    _PRELUDE
    + _GENERATION
    + """
local gens = {0}
for i = 2, #KEYS do gens[i] = generation(KEYS[i], ARGV[2]) end
return gens
"""
)

# KEYS: lease. ARGV: token. Releases the lease only if it is still this caller's.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

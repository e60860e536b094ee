"""The Lua scripts: each check-and-write runs atomically inside Redis.

Conventions shared by every script that touches entries:
- KEYS[1] is the epoch key of the slot the script works in and ARGV[1] the epoch the process
  believes in. A missing epoch (an empty restart, an eviction) starts from a value never used
  before: the server's clock in milliseconds, above every epoch counted up since an earlier
  start. An epoch below the caller's belief (a promoted replica that missed the last bump) moves
  past it. If the two differ, the script changes nothing and returns a one-element array
  holding the current epoch, so the caller adopts it in the same round trip.
- Entries are `<version>|<body>`; an empty body is a tombstone. `version_of` reads the version.
- A write never replaces an entry of a higher version (rule 2: no stale overwrite).
- Leases: a miss leases in the same round trip; a fill lands with its lease only (`_LEASE`).
- Every key a script touches is in one slot (`layout`): declared, or built with a declared key's
  hash tag (a view's entry and lease); only on one node does LOOKUP_VIEW build its members' keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT

Call = tuple[AsyncScript, Sequence[KeyT], Sequence[EncodableT]]  # one script run in a pipeline

# A counter that went missing restarts here, never at a number it may have had before.
FRESH = """
local function fresh()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

_PRELUDE = (
    FRESH
    + """
local epoch = tonumber(redis.call('GET', KEYS[1]))
local believed = tonumber(ARGV[1])
if not epoch or epoch < believed then
  epoch = epoch and believed + 1 or fresh()
  redis.call('SET', KEYS[1], string.format('%d', epoch))
end
if epoch ~= believed then return {epoch} end
"""
    + """local function version_of(raw)
  return tonumber(string.sub(raw, 1, string.find(raw, '|', 1, true) - 1))
end
"""
)

# Leases (the memcache design, NSDI '13): a lookup that misses grants a lease to load the value,
# in the same round trip; a fill lands only with its own live lease, and releases it; every
# write (put, invalidate, delete) revokes the entry's lease. So a reader whose database read may
# predate a write can never fill, even after the write's tombstone expired or was evicted.
_LEASE = """
local function lease(key)
  if redis.call('SET', key, ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
  local holder = redis.call('GET', key)
  if holder == ARGV[2] then return 1 end  -- ours already (a batch run again after NOSCRIPT)
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
local holder = lease(KEYS[3])
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
  if raw then found[i] = raw elseif lease(KEYS[i + n]) == 1 then found[i] = 1 else found[i] = 0 end
end
return found
"""
)

# KEYS: epoch, generation counters... ARGV: epoch, token, lease_ms, view key head, view key
# tail, member key head.
# A view's generations, its entry and (for a listing) its members, in one round trip. The entry
# key is head .. 'g' .. gens joined by '.' .. tail (see KeySpace.view_entry). A member head
# ('' = not a listing) makes a hit also look up the entries at head .. {id} for every id in the
# view body's "ids" array, leasing the missing ones as LOOKUP_MANY does.
# A data entry -> {entry bytes, per member: bytes, 1 or 0}. Missing or a tombstone -> {0, key,
# 1 or holder}: the key to load into (the generations may move before the fill) and its lease.
LOOKUP_VIEW = (
    _PRELUDE
    + _LEASE
    + """
local gens = {}
for i = 2, #KEYS do gens[i - 1] = redis.call('GET', KEYS[i]) or '0' end
local key = ARGV[4] .. 'g' .. table.concat(gens, '.') .. ARGV[5]
local raw = data(redis.call('GET', key))
if not raw then return {0, key, lease('lease:' .. key)} end
local found = {raw}
if ARGV[6] ~= '' then
  local body = string.sub(raw, string.find(raw, '|', 1, true) + 1)
  for i, id in ipairs(cjson.decode(body)['ids']) do
    local member = ARGV[6] .. '{' .. string.format('%d', id) .. '}'  -- ids are integers
    local got = data(redis.call('GET', member))
    if got then found[i + 1] = got elseif lease('lease:' .. member) == 1 then
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

# KEYS: epoch, entry, lease. ARGV: epoch. Removes the entry, revokes its lease.
DELETE = _PRELUDE + "\nredis.call('DEL', KEYS[2], KEYS[3])\nreturn 1\n"

# KEYS: epoch, generation counters... ARGV: epoch, counter ttl_ms. Bumps every counter; one that
# is missing (never bumped, or expired) starts from a fresh value, so that no view entry cached
# under an earlier life of the counter becomes reachable again. Counters expire `ttl_ms` after
# their last bump, which must outlast every view entry (see `generations.GENERATION_TTL_MS`).
BUMP = (
    _PRELUDE
    + """
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCR', KEYS[i])
  else
    redis.call('SET', KEYS[i], string.format('%d', fresh()))
  end
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return 1
"""
)

# KEYS: epoch. The current epoch, started on a fresh value if there is none.
CURRENT_EPOCH = (
    FRESH
    + """
local epoch = tonumber(redis.call('GET', KEYS[1]))
if epoch then return epoch end
epoch = fresh()
redis.call('SET', KEYS[1], string.format('%d', epoch))
return epoch
"""
)

# KEYS: epoch. ARGV: the caller's belief. A new epoch: one above the current and the belief (a
# promoted replica may lag), or a fresh one if it went missing.
NEW_EPOCH = (
    FRESH
    + """
local epoch = tonumber(redis.call('GET', KEYS[1]))
if epoch then epoch = math.max(epoch, tonumber(ARGV[1]) or 0) + 1 else epoch = fresh() end
redis.call('SET', KEYS[1], string.format('%d', epoch))
return epoch
"""
)

# KEYS: epoch, counters... ARGV: epoch. {0, each counter or '0'}, or {epoch}: a view whose
# counters are in several slots (a cluster) reads them first.
GENERATIONS = (
    _PRELUDE
    + """
local gens = {0}
for i = 2, #KEYS do gens[i] = redis.call('GET', KEYS[i]) or '0' end
return gens
"""
)

# KEYS: lease. ARGV: token. Releases the lease only if it is still this caller's.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Scripts:
    """The scripts registered on one client (EVALSHA, reloaded by redis-py if Redis forgot)."""

    redis: Redis | RedisCluster
    lookup: AsyncScript
    lookup_many: AsyncScript
    lookup_view: AsyncScript
    fill: AsyncScript
    put: AsyncScript
    invalidate: AsyncScript
    delete: AsyncScript
    bump: AsyncScript
    release: AsyncScript
    generations: AsyncScript

    @classmethod
    def register(cls, redis: Redis | RedisCluster) -> Scripts:
        return cls(
            redis=redis,
            lookup=redis.register_script(LOOKUP),
            lookup_many=redis.register_script(LOOKUP_MANY),
            lookup_view=redis.register_script(LOOKUP_VIEW),
            fill=redis.register_script(FILL),
            put=redis.register_script(PUT),
            invalidate=redis.register_script(INVALIDATE),
            delete=redis.register_script(DELETE),
            bump=redis.register_script(BUMP),
            release=redis.register_script(RELEASE),
            generations=redis.register_script(GENERATIONS),
        )

    async def pipelined(self, calls: Sequence[Call]) -> list[Any]:
        """Run every `(script, keys, args)` call, all in one round trip (no MULTI).

        redis-py's pipelined scripts ask SCRIPT EXISTS first, a round trip of its own. Instead,
        the calls answered NOSCRIPT (Redis restarted or flushed its scripts) load their script
        and run once more. Raises redis errors.
        """
        replies = await self._pipeline(calls)
        if forgotten := [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]:
            for script in {calls[i][0].script for i in forgotten}:
                await self.redis.script_load(script)
            retried = await self._pipeline([calls[i] for i in forgotten])
            for i, reply in zip(forgotten, retried, strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for script, keys, args in calls:
                # Not `pipe.evalsha`, which a cluster pipeline refuses: one slot per call is
                # fine there, and redis-py routes each call to its slot's node.
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

"""The Lua scripts: each check-and-write runs atomically inside Redis.

Conventions shared by every script that touches entries:
- KEYS[1] is the epoch key and ARGV[1] the epoch the process believes in. A missing epoch (an
  empty restart, an eviction) starts from a value never used before: the server's clock in
  milliseconds, above every epoch counted up since an earlier start. If the two differ, the
  script changes nothing and returns a one-element array holding the current epoch, so the
  caller adopts it in the same round trip.
- Entries are `<version>|<body>`; an empty body is a tombstone. `version_of` reads the version.
- A write never replaces an entry of a higher version (rule 2: no stale overwrite).

The scripts touch the epoch key and an entry key together, which assumes a single Redis node.
So does LOOKUP_VIEW, which also builds keys it was not given (a view's entry from its
generations, a listing's members from its ids) to save round trips on the hit path.
On Redis Cluster every slot would need its own copy of the epoch (a per-slot hash tag in the
epoch key); that is noted, not built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT

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
if not epoch then
  epoch = fresh()
  redis.call('SET', KEYS[1], string.format('%d', epoch))
end
if epoch ~= tonumber(ARGV[1]) then return {epoch} end
"""
    + """local function version_of(raw)
  return tonumber(string.sub(raw, 1, string.find(raw, '|', 1, true) - 1))
end
"""
)

# KEYS: epoch, entry, lease. ARGV: epoch, token ('' = do not claim), lease_ms.
# A data entry -> its bytes. Otherwise (missing or tombstone) -> 1 if this caller now holds the
# lease to load it, 0 if not (another caller holds it, or no token was given).
LOOKUP = (
    _PRELUDE
    + """
local raw = redis.call('GET', KEYS[2])
if raw and string.find(raw, '|', 1, true) < #raw then return raw end
if ARGV[2] ~= '' and redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
return 0
"""
)

# KEYS: epoch, entries... ARGV: epoch. No leases (see `Reader.read_many`).
# One element per entry: its bytes if it holds data, false (a nil reply) if missing or a
# tombstone. The epoch reply {epoch} is told apart by its integer: entries are strings or nil.
LOOKUP_MANY = (
    _PRELUDE
    + """
local found = {}
for i = 2, #KEYS do
  local raw = redis.call('GET', KEYS[i])
  found[i - 1] = raw and string.find(raw, '|', 1, true) < #raw and raw
end
return found
"""
)

# KEYS: epoch, generation counters... ARGV: epoch, view key head, view key tail, member key head.
# A view's generations, its entry and (for a listing) its members, in one round trip. The entry
# key is head .. 'g' .. gens joined by '.' .. tail (see KeySpace.view_entry). A member head
# ('' = not a listing) makes a hit also look up the entries at head .. id for every id in the
# view body's "ids" array.
# A data entry -> {entry bytes, member bytes or false...}. Missing or a tombstone -> {0, key}:
# the key to load into under the lease, since the generations may move before the fill.
LOOKUP_VIEW = (
    _PRELUDE
    + """
local gens = {}
for i = 2, #KEYS do gens[i - 1] = redis.call('GET', KEYS[i]) or '0' end
local key = ARGV[2] .. 'g' .. table.concat(gens, '.') .. ARGV[3]
local raw = redis.call('GET', key)
if not (raw and string.find(raw, '|', 1, true) < #raw) then return {0, key} end
local found = {raw}
if ARGV[4] ~= '' then
  local body = string.sub(raw, string.find(raw, '|', 1, true) + 1)
  for i, id in ipairs(cjson.decode(body)['ids']) do
    local member = redis.call('GET', ARGV[4] .. string.format('%d', id))  -- ids are integers
    found[i + 1] = member and string.find(member, '|', 1, true) < #member and member
  end
end
return found
"""
)

# KEYS: epoch, entry. ARGV: epoch, version, stored entry, ttl_ms.
# Compare-and-set: 1 stored, 0 refused because the entry (data or tombstone) is newer.
# Equal versions are allowed: the value a tombstone announced may be filled.
FILL = (
    _PRELUDE
    + """
local raw = redis.call('GET', KEYS[2])
if raw and version_of(raw) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1
"""
)

# KEYS: epoch, entry. ARGV: epoch, committed version, tombstone, ttl_ms.
# 1 tombstone written, 0 the entry already holds this version or a newer one.
# The tombstone outlives any fill racing with the commit, and FILL refuses older versions.
INVALIDATE = (
    _PRELUDE
    + """
local raw = redis.call('GET', KEYS[2])
if raw and version_of(raw) >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1
"""
)

# KEYS: epoch, entry. ARGV: epoch. Removes the entry under the current epoch.
DELETE = _PRELUDE + "\nredis.call('DEL', KEYS[2])\nreturn 1\n"

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

# KEYS: epoch. Starts a new epoch: one above the current, or a fresh one if it went missing.
NEW_EPOCH = (
    FRESH
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCR', KEYS[1]) end
local epoch = fresh()
redis.call('SET', KEYS[1], string.format('%d', epoch))
return epoch
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

    redis: Redis
    lookup: AsyncScript
    lookup_many: AsyncScript
    lookup_view: AsyncScript
    fill: AsyncScript
    invalidate: AsyncScript
    delete: AsyncScript
    bump: AsyncScript
    release: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        return cls(
            redis=redis,
            lookup=redis.register_script(LOOKUP),
            lookup_many=redis.register_script(LOOKUP_MANY),
            lookup_view=redis.register_script(LOOKUP_VIEW),
            fill=redis.register_script(FILL),
            invalidate=redis.register_script(INVALIDATE),
            delete=redis.register_script(DELETE),
            bump=redis.register_script(BUMP),
            release=redis.register_script(RELEASE),
        )

    async def pipelined(
        self, script: AsyncScript, calls: Sequence[tuple[Sequence[KeyT], Sequence[EncodableT]]]
    ) -> list[Any]:
        """Run `script` once per `(keys, args)` call, all in one round trip (no MULTI).

        redis-py's pipelined scripts ask SCRIPT EXISTS first, a round trip of its own. Instead,
        a NOSCRIPT reply (Redis restarted or flushed its scripts) loads the script and runs the
        batch once more, which is harmless for compare-and-set scripts. Raises redis errors.
        """
        replies = await self._pipeline(script, calls)
        if any(isinstance(reply, NoScriptError) for reply in replies):
            await self.redis.script_load(script.script)
            replies = await self._pipeline(script, calls)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _pipeline(
        self, script: AsyncScript, calls: Sequence[tuple[Sequence[KeyT], Sequence[EncodableT]]]
    ) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

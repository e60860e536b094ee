"""The Lua scripts: each check-and-write runs atomically inside Redis.

Conventions shared by every script that touches entries:
- KEYS[1] is the epoch key and ARGV[1] the epoch the process believes in. A missing epoch counts
  as 0. If the two differ, the script changes nothing and returns a one-element array holding
  the current epoch, so the caller adopts it in the same round trip.
- Entries are `<version>|<body>`; an empty body is a tombstone. `version_of` reads the version.
- A write never replaces an entry of a higher version (rule 2: no stale overwrite).

The scripts touch the epoch key and an entry key together, which assumes a single Redis node.
On Redis Cluster every slot would need its own copy of the epoch (a per-slot hash tag in the
epoch key); that is noted, not built.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

_PRELUDE = """
local epoch = tonumber(redis.call('GET', KEYS[1]) or '0')
if epoch ~= tonumber(ARGV[1]) then return {epoch} end
local function version_of(raw)
  return tonumber(string.sub(raw, 1, string.find(raw, '|', 1, true) - 1))
end
"""

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

# KEYS: epoch, generation counters... ARGV: epoch. Bumps every counter.
BUMP = _PRELUDE + "\nfor i = 2, #KEYS do redis.call('INCR', KEYS[i]) end\nreturn 1\n"

# KEYS: lease. ARGV: token. Releases the lease only if it is still this caller's.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Scripts:
    """The scripts registered on one client (EVALSHA, reloaded by redis-py if Redis forgot)."""

    lookup: AsyncScript
    fill: AsyncScript
    invalidate: AsyncScript
    delete: AsyncScript
    bump: AsyncScript
    release: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        return cls(
            lookup=redis.register_script(LOOKUP),
            fill=redis.register_script(FILL),
            invalidate=redis.register_script(INVALIDATE),
            delete=redis.register_script(DELETE),
            bump=redis.register_script(BUMP),
            release=redis.register_script(RELEASE),
        )

"""The Lua scripts of epochs (`epoch`): learn one, start one, check the server holding it."""

# A counter that went missing restarts here, never at a number it may have had before.
FRESH = """
local function fresh()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

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

# KEYS: epoch, server mark. ARGV: the caller's belief. The epoch now.
# Whether this slot's data may be lost, decided from the server itself: the script reads the run
# id of the server it runs on (the one holding the slot now; no other round trip, no other node
# asked), and the mark names the server that held the slot when it was last checked. Another
# server (a restart that kept a snapshot, a promoted replica) may lack writes it acknowledged, so
# the epoch moves past every value it had. The first caller to see the new server moves it and
# marks it: every other process, checking the same event, finds the mark set and moves nothing.
# A missing epoch (an empty restart) is re-created above every value it had, as `_PRELUDE` does.
# An epoch below the caller's belief also moves past it, whatever the mark says: the caller saw
# this slot at a later epoch on some server, so this one lacks writes the caller made (on a
# cluster: a restarted old master that took writes before it learnt it was demoted).
CHECK_SERVER = (
    FRESH
    + """
local server = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
local epoch = tonumber(redis.call('GET', KEYS[1]))
local believed = tonumber(ARGV[1])
local mark = redis.call('GET', KEYS[2])
if not epoch then
  epoch = math.max(fresh(), believed + 1)
elseif (mark and mark ~= server) or epoch < believed then
  epoch = math.max(epoch, believed) + 1
else
  if not mark then redis.call('SET', KEYS[2], server) end
  return epoch
end
redis.call('SET', KEYS[1], string.format('%d', epoch))
redis.call('SET', KEYS[2], server)
return epoch
"""
)

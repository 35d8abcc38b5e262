-- tick: claims one tick of a schedule entry. KEYS[1] is the base of the pseudo-queue
-- `scheduler`. ARGV me, entry, tick_ms, mode ('claim' or 'init').
-- claim: returns -1 if `me` is not the leader (it lost the lease: fire nothing), 0 if the
--   entry's last fired tick is at or after tick_ms (already fired), 1 after recording tick_ms
--   as the last tick: the caller fires it. One compare-and-set, so no tick fires twice even if
--   two workers believe they lead.
-- init: records tick_ms as the last tick if the entry has none (a new schedule starts from
--   now instead of replaying the past); returns the entry's last tick (ms).
local me, entry, tick, mode = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local last_key = base .. 'last:' .. entry
if mode == 'init' then
  local last = redis.call('GET', last_key)
  if last then
    return tonumber(last)
  end
  redis.call('SET', last_key, tick)
  return tick
end
if redis.call('GET', base .. 'leader') ~= me then
  return -1
end
local last = tonumber(redis.call('GET', last_key) or '-1')
if last >= tick then
  return 0
end
redis.call('SET', last_key, tick)
return 1

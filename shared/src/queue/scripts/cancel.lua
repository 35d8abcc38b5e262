-- cancel: ARGV id. Returns {status, state}: status ok | notfound | wrong; state after the
-- call (ok) or the state that forbids it (wrong).
local id = ARGV[1]
local jk = jkey(id)
local st = redis.call('HGET', jk, 'state')
if not st then
  return { 'notfound', '' }
end
if st == 'waiting' or st == 'scheduled' then
  -- A waiting id stays in the list (no O(n) LREM): fetch skips it.
  redis.call('ZREM', K_SCHEDULED, id)
  finish(jk, id, 'cancelled', now_ms())
  return { 'ok', 'cancelled' }
elseif st == 'running' then
  redis.call('HSET', jk, 'cancel', 1)
  return { 'ok', 'running' }
end
return { 'wrong', st }

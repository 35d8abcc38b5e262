-- report: ARGV worker, id, outcome (succeeded | failed | cancelled), data (result JSON or
-- error record JSON), retry_in_ms (-1 = permanent)
-- Returns succeeded | retrying | dead | cancelled | stale.
local worker, id, outcome = ARGV[1], ARGV[2], ARGV[3]
if redis.call('LREM', inflight_key(worker), 1, id) == 0 then
  return 'stale'
end
local jk = jkey(id)
if redis.call('EXISTS', jk) == 0 then
  return 'stale'
end
local now = now_ms()
redis.call('ZREM', K_RUNNING, id)
if outcome == 'succeeded' then
  redis.call('HSET', jk, 'result', ARGV[4])
  finish(jk, id, 'succeeded', now)
  return 'succeeded'
elseif outcome == 'cancelled' then
  finish(jk, id, 'cancelled', now)
  return 'cancelled'
end
push_error(jk, ARGV[4])
local attempts = redis.call('HINCRBY', jk, 'attempts', 1)
redis.call('HINCRBY', K_STATS, 'failed', 1)
local retry_in = tonumber(ARGV[5])
local f = redis.call('HMGET', jk, 'max_attempts', 'cancel')
local max = tonumber(f[1]) or 1
if retry_in >= 0 and attempts < max and f[2] ~= '1' then
  local at = now + retry_in
  redis.call('HSET', jk, 'state', 'scheduled', 'run_at', at)
  redis.call('ZADD', K_SCHEDULED, at, id)
  redis.call('HINCRBY', K_STATS, 'retried', 1)
  return 'retrying'
end
finish(jk, id, 'dead', now)
return 'dead'

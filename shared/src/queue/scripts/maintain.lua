-- maintain: ARGV max_starts, retention_ms, dead_retention_ms, batch (≤ ids per step),
-- max_workers (expired leases handled per call), lost_marker_ms, late_move_ms
-- One bounded pass: promote due retries, recover expired leases, clean up old jobs.
-- Returns {promoted, recovered, poisoned, cleaned}.
local max_starts = tonumber(ARGV[1])
local retention, dead_retention = tonumber(ARGV[2]), tonumber(ARGV[3])
local batch, max_workers, lost_ms = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local late_ms = tonumber(ARGV[7])
local K_TOMBS = base .. 'tombs'
local now = now_ms()

-- 1. promote: due scheduled → waiting (back of the line)
local promoted = 0
local due = redis.call('ZRANGEBYSCORE', K_SCHEDULED, '-inf', now, 'LIMIT', 0, batch)
for _, id in ipairs(due) do
  redis.call('ZREM', K_SCHEDULED, id)
  local jk = jkey(id)
  if redis.call('HGET', jk, 'state') == 'scheduled' then
    redis.call('HSET', jk, 'state', 'waiting', 'enqueued_at', now, 'queued', 1)
    redis.call('LPUSH', K_WAITING, id)
    promoted = promoted + 1
  end
end

-- 2. recover: workers whose lease expired
local recovered, poisoned = 0, 0
local gone = redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', '(' .. now, 'LIMIT', 0, max_workers)
for _, worker in ipairs(gone) do
  local inflight = inflight_key(worker)
  for _, id in ipairs(redis.call('LRANGE', inflight, 0, -1)) do
    local jk = jkey(id)
    local f = redis.call('HMGET', jk, 'state', 'starts', 'attempts', 'cancel')
    if f[1] == 'running' and f[4] == '1' then
      -- Someone asked to cancel it and its worker died before stopping it: cancelled, not
      -- started again.
      redis.call('ZREM', K_RUNNING, id)
      finish(jk, id, 'cancelled', now)
    elseif f[1] == 'running' then
      -- Poison = starts without an end. A start that ended in a reported failure is counted in
      -- `attempts` (and a released start is uncounted), so the crashes are starts - attempts:
      -- a job that failed twice and then lost its worker once crashed once, not three times.
      local attempts = tonumber(f[3]) or 0
      local crashes = (tonumber(f[2]) or 0) - attempts
      redis.call('ZREM', K_RUNNING, id)
      if crashes >= max_starts then
        push_error(jk, cjson.encode({
          attempt = attempts + 1,
          at_ms = now,
          class = 'permanent',
          message = 'the worker running it died ' .. crashes .. ' times (poison job?)',
          worker = worker,
        }))
        finish(jk, id, 'dead', now)
        poisoned = poisoned + 1
      else
        redis.call('HSET', jk, 'state', 'waiting', 'queued', 1, 'enqueued_at', now)
        redis.call('HINCRBY', jk, 'recovered', 1)
        redis.call('HINCRBY', K_STATS, 'recovered', 1)
        redis.call('RPUSH', K_WAITING, id)
        recovered = recovered + 1
      end
    else
      give_back(id, now, false)
    end
  end
  redis.call('DEL', inflight)
  redis.call('ZREM', K_LEASES, worker)
  redis.call('SET', base .. 'lost:' .. worker, now, 'PX', lost_ms)
  redis.call('ZADD', K_TOMBS, now + late_ms, worker)
end

-- 2b. late moves: a BLMOVE the worker sent before its lease was taken back may still move an id
-- into its inflight list (it blocks up to a second, see client.rs MAX_BLOCK). If the worker then
-- dies before `start`, nothing would ever look at that list again: once that time has passed,
-- give back whatever landed there, unless the worker holds a lease again (alive: it runs them).
local late = redis.call('ZRANGEBYSCORE', K_TOMBS, '-inf', now, 'LIMIT', 0, max_workers)
for _, worker in ipairs(late) do
  redis.call('ZREM', K_TOMBS, worker)
  if not redis.call('ZSCORE', K_LEASES, worker) then
    local inflight = inflight_key(worker)
    for _, id in ipairs(redis.call('LRANGE', inflight, 0, -1)) do
      if give_back(id, now, false) == 'requeued' then
        recovered = recovered + 1
      end
    end
    redis.call('DEL', inflight)
  end
end

-- 3. cleanup: finished / dead past retention
local cleaned = 0
local function clean(zkey, older_than)
  local ids = redis.call('ZRANGEBYSCORE', zkey, '-inf', older_than, 'LIMIT', 0, batch)
  for _, id in ipairs(ids) do
    redis.call('DEL', jkey(id))
    redis.call('ZREM', zkey, id)
  end
  cleaned = cleaned + #ids
end
clean(K_FINISHED, now - retention)
clean(K_DEAD, now - dead_retention)

return { promoted, recovered, poisoned, cleaned }

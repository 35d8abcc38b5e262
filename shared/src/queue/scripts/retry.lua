-- retry: ARGV mode ('one' | 'dead'), then for 'one': id; for 'dead': offset, batch.
-- 'one' returns {status, state}: ok | notfound | wrong | unique.
-- 'dead' retries up to `batch` dead jobs from rank `offset` and returns {retried, skipped, seen}.
local now = now_ms()

local function retry_one(id)
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'state', 'unique', 'queued')
  if not f[1] then
    return 'notfound', ''
  end
  if f[1] ~= 'dead' and f[1] ~= 'failed' and f[1] ~= 'cancelled' then
    return 'wrong', f[1]
  end
  if f[2] and f[2] ~= '' then
    local uk = base .. 'unique:' .. f[2]
    local holder = redis.call('GET', uk)
    if holder and holder ~= id then
      local hs = redis.call('HGET', jkey(holder), 'state')
      if hs and not is_terminal(hs) then
        return 'unique', f[1]
      end
    end
    redis.call('SET', uk, id)
  end
  redis.call('ZREM', K_DEAD, id)
  redis.call('ZREM', K_FINISHED, id)
  redis.call('HDEL', jk, 'finished_at', 'run_at', 'result', 'worker', 'started_at', 'cancel',
    'progress_done', 'progress_total', 'progress_msg')
  redis.call('HSET', jk, 'state', 'waiting', 'attempts', 0, 'starts', 0, 'enqueued_at', now)
  if f[3] ~= '1' then
    -- Not in the waiting list any more (a cancelled waiting id still is: no second entry).
    redis.call('HSET', jk, 'queued', 1)
    redis.call('LPUSH', K_WAITING, id)
  end
  redis.call('HINCRBY', K_STATS, 'requeued', 1)
  return 'ok', 'waiting'
end

if ARGV[1] == 'one' then
  local status, state = retry_one(ARGV[2])
  return { status, state }
end
local offset, batch = tonumber(ARGV[2]), tonumber(ARGV[3])
local ids = redis.call('ZRANGE', K_DEAD, offset, offset + batch - 1)
local retried, skipped = 0, 0
for _, id in ipairs(ids) do
  if retry_one(id) == 'ok' then
    retried = retried + 1
  else
    skipped = skipped + 1
  end
end
return { retried, skipped, #ids }

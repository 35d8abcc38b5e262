-- stats: no ARGV. Returns {waiting, scheduled, running, finished, dead, oldest waiting age ms
-- or -1}. `waiting` counts list entries (a cancelled id stays in the list until fetched).
local age = -1
local tail = redis.call('LRANGE', K_WAITING, -20, -1)
for i = #tail, 1, -1 do
  local f = redis.call('HMGET', jkey(tail[i]), 'state', 'enqueued_at')
  if f[1] == 'waiting' then
    age = math.max(0, now_ms() - (tonumber(f[2]) or 0))
    break
  end
end
return {
  redis.call('LLEN', K_WAITING),
  redis.call('ZCARD', K_SCHEDULED),
  redis.call('ZCARD', K_RUNNING),
  redis.call('ZCARD', K_FINISHED),
  redis.call('ZCARD', K_DEAD),
  age,
}

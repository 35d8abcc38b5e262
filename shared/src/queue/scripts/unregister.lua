-- unregister: ARGV worker. A worker stopping cleanly: gives back whatever is still in its
-- inflight list (e.g. an id a cancelled BLMOVE moved), drops its lease. Returns the count given
-- back.
local worker = ARGV[1]
local inflight = inflight_key(worker)
local now = now_ms()
local n = 0
for _, id in ipairs(redis.call('LRANGE', inflight, 0, -1)) do
  if give_back(id, now, true) == 'requeued' then
    n = n + 1
  end
end
redis.call('DEL', inflight, base .. 'lost:' .. worker)
redis.call('ZREM', K_LEASES, worker)
return n

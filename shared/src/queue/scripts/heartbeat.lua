-- heartbeat: ARGV worker, lease_ms, registering ('1' when the worker announces itself)
-- Renews the worker's lease. Returns {lost, {ids asked to cancel}}; lost = 1 when the lease
-- had expired and `recover` took the worker's jobs back (fencing).
local worker, lease, registering = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local now = now_ms()
local lost = 0
if redis.call('DEL', base .. 'lost:' .. worker) == 1 then
  lost = 1
end
if not registering and not redis.call('ZSCORE', K_LEASES, worker) then
  lost = 1
end
if registering then
  lost = 0
end
redis.call('ZADD', K_LEASES, now + lease, worker)
local cancel = {}
for _, id in ipairs(redis.call('LRANGE', inflight_key(worker), 0, -1)) do
  if redis.call('HGET', jkey(id), 'cancel') == '1' then
    cancel[#cancel + 1] = id
  end
end
return { lost, cancel }
